package policy

import (
	"fmt"
	"math"
	"time"
)

// Filter names the measurement filter the hysteresis policy compares.
type Filter string

// The filters.
const (
	// FilterRobust is the default: per substrate, on the logarithm of the
	// round-trip time, a running mean since the last detected change (a
	// 3GPP layer-3 filter F = (1-a)·F + a·M once it has 1/a samples), an
	// RFC 6298 style mean deviation of the samples, a two-sided CUSUM change
	// detector that restarts the mean when the level moves, and outlier
	// handling: a far faster sample is believed at once, a slower one only
	// after 4 in a row. A candidate then needs the seed's 25% plus
	// NoiseMargin standard errors of the two estimates, and MinDifference.
	// Why this and not a windowed minimum or a plain EWMA:
	// docs/policy-filter.md.
	FilterRobust Filter = "robust"
	// FilterNone compares this cycle's raw samples, as the seed's rule did.
	FilterNone Filter = "none"
)

// ParseFilter returns the filter named s ("robust" or "none").
func ParseFilter(s string) (Filter, error) {
	switch Filter(s) {
	case FilterRobust, FilterNone:
		return Filter(s), nil
	}
	return "", fmt.Errorf("policy: unknown filter %q: want %q or %q", s, FilterRobust, FilterNone)
}

// Fixed parts of the robust filter. They are constants rather than Config
// fields because they describe the shape of the noise (what an outlier is,
// what a change is), not a trade-off a deployment tunes;
// docs/policy-filter.md explains them and how they were measured.
const (
	// devMinGain is the least gain of the mean deviation: a running mean of
	// |error| for the first 32 samples of a substrate, then an exponential
	// filter that follows a change of the noise within about 32 samples.
	// RFC 6298's β = 1/4 left the deviation, and so the noise margin, 30%
	// noisy; 1/32 leaves 10%.
	devMinGain = 1.0 / 32
	// outlierDevs: a sample more than this many mean deviations from the
	// level is an outlier; it does not move the level.
	outlierDevs = 3
	// jumpDevs: a sample this many mean deviations faster than the level
	// is a new level, believed at once (queueing only ever adds delay);
	// so is any fast outlier while the level rests on fewer than youngN
	// samples (its first sample may have been a stall). Between outlierDevs
	// and jumpDevs a fast sample is left to the change detector: in heavy
	// noise it is mostly noise, and starting a level at it biases it.
	jumpDevs = 6
	youngN   = 4
	// minRelDev floors the deviation used to call a sample an outlier (1%),
	// so a substrate with no noise yet is not thrown off by every sample.
	minRelDev = 0.01
	// confirmUp is how many consecutive slow outliers it takes to believe a
	// substrate got slower: one or a few are a queue, a spike or a
	// retransmission.
	confirmUp = 4
	// cusumRef and cusumLimit are the two-sided CUSUM change detector, in
	// standard deviations of a sample: each sample adds its standardised
	// error (an outlier counted as cusumClip) less cusumRef, and a sum past
	// cusumLimit restarts the level with the next sample. Reference 0.5
	// is the textbook choice for shifts of one standard deviation or more;
	// limit 6.5 (measured against 5 and 8) makes a false restart rare and
	// still detects a 50% step at σ 0.4 within about 5 samples.
	cusumRef   = 0.5
	cusumLimit = 6.5
	cusumClip  = outlierDevs
	// resolution is the standard error below which a level stops
	// accumulating evidence, 0.5% (the gap between a 70% and a 75% step
	// is 6.9%): the least gain of the level is 2·resolution²/σ², at most
	// 1/2, at least 1/2^(FilterK/4). On a quiet path (σ 1%) the level is
	// then an exponential filter that keeps up with a drifting path; on a
	// noisy one a long running mean.
	resolution = 0.005
	// freshDev is the deviation the first estimate of an evaluator starts
	// with, 0.15 (about 19% standard deviation, a busy path): until the noise
	// is known, assume some. RFC 6298's R/2 delayed the first migration on
	// a quiet path by about 4 cycles in the tuning runs; 0.15 made no
	// startup flap over 200 seeds of every noise class, 0.05 did (with
	// this filter: none over 300 seeds).
	// Substrates measured later start with the current attachment's
	// deviation.
	freshDev = 0.15
	// sigmaPerDev turns a mean absolute deviation into a standard deviation
	// (√(π/2) for normal noise).
	sigmaPerDev = 1.2533
	// trimmed corrects the standard error for the outliers the level
	// leaves out: they are judged against the level itself, so a level
	// off by chance keeps more samples on its own side, and its errors
	// are larger than √w·σ. Over 2,000 runs of log-normal σ 0.3 noise the
	// errors were 1.12 (100 samples) and 1.09 (400) times √w·σ; the limit
	// for a cut at 2.4σ is 1.07. TestFilterAccumulatesEvidence checks it.
	trimmed = 1.1
)

// level is a substrate's filtered log latency: mean, the n samples it rests
// on since it (re)started, and w, the sum of the squared weights of those
// samples, so that the variance of mean is w·σ² for independent samples
// of deviation σ (1/n for a running mean, a/(2−a) for an exponential
// filter in steady state). hi and lo are its change detector's sums.
type level struct {
	n      int
	mean   float64
	w      float64
	hi, lo float64
}

// fold moves the level by err, the deviation of a sample from the mean,
// with gain max(1/n, floor).
func (l *level) fold(err, floor float64) {
	l.n++
	g := max(1/float64(l.n), floor)
	l.mean += g * err
	l.w = (1-g)*(1-g)*l.w + g*g
}

// estimate is the filter state of one substrate. Values are natural
// logarithms of nanoseconds: the noise of round-trip times is
// multiplicative, so a ratio threshold is a difference here. An estimate
// with n == 0 is restarting: its next sample starts the level.
type estimate struct {
	level
	dev   float64 // mean absolute deviation of the samples around the level
	devN  int     // samples the deviation rests on
	seen  int     // the evaluation cycle of the last sample
	up    int     // consecutive slow outliers
	upMin float64 // the fastest of them

	jumped bool  // the last sample was a fast jump to a new level
	before level // the level before it
}

// filterParams are the resolved filter settings.
type filterParams struct {
	on        bool
	gain      float64 // the least gain of the level, a = 1/2^(k/4)
	lnRatio   float64 // ln(1 - Improvement)
	margin    float64 // noise margin in standard errors
	floor     time.Duration
	maxMissed int
}

// restartAt restarts the level at the sample x.
func (e *estimate) restartAt(x float64) {
	e.level = level{n: 1, mean: x, w: 1}
	e.up = 0
}

// add folds the sample x (a log latency) observed in cycle into e; prior is
// the deviation a fresh estimate starts with.
func (e *estimate) add(x float64, cycle int, prior float64, p filterParams) {
	e.seen = cycle
	if e.n == 0 {
		if e.devN == 0 { // new, not restarted: the noise is not known yet
			e.dev, e.devN = prior, 1
		}
		e.restartAt(x)
		e.jumped = false
		return
	}
	dev := max(e.dev, minRelDev)
	if e.jumped {
		// The sample after a fast jump decides it: back at the old level,
		// the jump was one fast glitch and is undone; anything else keeps it.
		e.jumped = false
		if math.Abs(x-e.before.mean) <= outlierDevs*dev*math.Sqrt(1+e.before.w) {
			e.level = e.before
		}
	}
	err := x - e.mean
	// err's deviation is the sample's and the level's: √(1+w) times the
	// sample's alone. An outlier is one far off by that measure: judged
	// by the sample's deviation alone, a level that is off by chance would
	// reject the samples that would correct it.
	spread := math.Sqrt(1 + e.w)
	lim := outlierDevs * dev * spread
	// An outlier counts as lim toward the deviation: a noisier path is
	// learnt within a few samples, one spike barely moves it. That holds
	// for a fast jump too: in heavy noise most of them are noise.
	e.devN++
	e.dev += max(1/float64(e.devN), devMinGain) * (min(math.Abs(err), lim)/spread - e.dev)
	// The change detector sees every sample, an outlier as cusumClip
	// standard deviations: a run of spikes restarts the level as surely
	// as a shift does, and a restart only costs evidence.
	z := max(-cusumClip, min(cusumClip, err/(sigmaPerDev*dev*spread)))
	e.hi = max(0, e.hi+z-cusumRef)
	e.lo = max(0, e.lo-z-cusumRef)
	if e.hi > cusumLimit || e.lo > cusumLimit {
		// The level moved: start again with the next sample, not this one
		// (chosen for being far off, it would bias the new level).
		e.n = 0
		return
	}
	switch {
	case err < -lim && (e.n < youngN || err < -jumpDevs*dev*spread):
		// Far faster than the noise explains: a new level, believed at once.
		e.jumped, e.before = true, e.level
		e.restartAt(x)
		return
	case err < -lim:
		e.up = 0
		return // a fast outlier: left to the change detector
	case err > lim:
		if e.up == 0 || x < e.upMin {
			e.upMin = x
		}
		e.up++
		if e.up >= confirmUp { // slower for good: restart at the fastest of the run
			e.restartAt(e.upMin)
		}
		return // until confirmed, a slow outlier does not move the level
	}
	e.up = 0
	sd := sigmaPerDev * dev
	e.fold(err, min(0.5, max(p.gain, 2*resolution*resolution/(sd*sd))))
}

// stderr is the standard error of e.mean: the deviation of the samples
// times the root of the sum of their squared weights.
func (e *estimate) stderr() float64 {
	return trimmed * sigmaPerDev * e.dev * math.Sqrt(e.w)
}

// Estimate is a substrate's filtered latency, for logs and replay.
type Estimate struct {
	Latency time.Duration // the filtered round-trip time
	// Noise is the standard error of Latency, as a duration at Latency: the
	// margin a comparison needs is NoiseMargin times the two substrates'
	// combined noise.
	Noise   time.Duration
	Samples int // samples since the estimate (re)started
}

// Estimate returns the filtered latency of substrate id, and false when the
// evaluator has none: the filter is off, id was never measured, or not for
// more than MaxMissedCycles cycles.
func (e *Evaluator) Estimate(id string) (Estimate, bool) {
	est := e.est[id]
	if est == nil {
		return Estimate{}, false
	}
	lat := math.Exp(est.mean)
	return Estimate{Latency: time.Duration(lat), Noise: time.Duration(lat * est.stderr()),
		Samples: est.n}, true
}

// observe feeds this cycle's measurements to the filters and forgets the
// estimates of substrates not measured for more than maxMissed cycles.
func (e *Evaluator) observe(obs Snapshot) {
	if !e.f.on {
		return
	}
	// A fresh substrate is taken to be as noisy as the current one, and never
	// less than minRelDev: a current path so steady that its deviation has
	// decayed to nothing must not give a one-sample candidate no margin.
	prior := freshDev
	if cur := e.est[obs.Current.ID]; cur != nil && obs.Current.ID != "" {
		prior = max(cur.dev, minRelDev)
	}
	feed := func(s Measurement) {
		if s.ID == "" || s.Latency <= 0 {
			return
		}
		est := e.est[s.ID]
		if est == nil {
			est = &estimate{}
			e.est[s.ID] = est
		}
		if est.seen == e.cycle {
			return // listed twice: one sample per cycle
		}
		est.add(math.Log(float64(s.Latency)), e.cycle, prior, e.f)
	}
	feed(obs.Current)
	for _, c := range obs.Candidates {
		feed(c)
	}
	for id, est := range e.est {
		if e.cycle-est.seen > e.f.maxMissed {
			delete(e.est, id)
		}
	}
}

// qualifiesFiltered is qualifies on filtered values: the candidate must be
// measured this cycle; a latency comparison then needs its filtered latency
// below ratio × the current's by more than margin standard errors of the
// two estimates, and faster by more than floor.
func (e *Evaluator) qualifiesFiltered(node string, cur, cand Measurement) bool {
	if q, decided := byEnclave(node, cur, cand); decided {
		return q
	}
	u, c := e.est[cur.ID], e.est[cand.ID]
	if u == nil || c == nil || u.n == 0 || c.n == 0 {
		return false
	}
	gain := u.mean + e.f.lnRatio - c.mean
	if gain <= 0 {
		return false
	}
	noise := math.Hypot(u.stderr(), c.stderr())
	return gain > e.f.margin*noise && math.Exp(u.mean)-math.Exp(c.mean) > float64(e.f.floor)
}

// restart makes the next sample of id start its estimate afresh, keeping
// the deviation learnt so far. A substrate that becomes or stops being the
// current attachment is measured another way (heartbeat round trips on the
// primary link, probes as a candidate): the level may differ, the noise
// hardly.
func (e *Evaluator) restart(id string) {
	if est := e.est[id]; est != nil {
		est.n = 0
	}
}

// filtered returns s with its filtered latency, when it has one.
func (e *Evaluator) filtered(s Measurement) Measurement {
	if est := e.est[s.ID]; est != nil && e.f.on {
		s.Latency = time.Duration(math.Exp(est.mean))
	}
	return s
}
