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
	// FilterRobust is the default: per substrate, a 3GPP layer-3 filter
	// (F = (1-a)·F + a·M) on the logarithm of the round-trip time, an
	// RFC 6298 style mean deviation of the samples, and outlier handling: a
	// fast jump is believed at once, a slow one only after 4 samples in a
	// row. A candidate then needs the seed's 25% plus NoiseMargin standard
	// errors of the two estimates, and MinDifference. Why this and not a
	// windowed minimum or a plain EWMA: docs/policy-filter.md.
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
// fields because they describe the shape of the noise (what an outlier is),
// not a trade-off a deployment tunes; docs/policy-filter.md explains them.
const (
	// devGain is the RTTVAR gain β of RFC 6298 (1/4): how fast the mean
	// deviation follows the noise.
	devGain = 0.25
	// outlierDevs: a sample more than this many mean deviations from the
	// estimate is an outlier.
	outlierDevs = 3
	// minRelDev floors the deviation used to call a sample an outlier (1%),
	// so a substrate with no noise yet is not thrown off by every sample.
	minRelDev = 0.01
	// confirmUp is how many consecutive slow outliers it takes to believe a
	// substrate got slower: one or a few are a queue, a spike or a
	// retransmission. A fast outlier is believed at once, since queueing
	// only ever adds delay, and undone if the next sample is back at the
	// old level (a glitch).
	confirmUp = 4
	// freshDev is the deviation the first estimate of an evaluator starts
	// with, 0.15 (about 19% standard deviation, a busy path): until the noise
	// is known, assume some. RFC 6298's R/2 delayed the first migration on
	// a quiet path by about 4 cycles in the tuning runs; 0.15 made no
	// startup flap over 200 seeds of every noise class, 0.05 did.
	// Substrates measured later start with the current attachment's
	// deviation.
	freshDev = 0.15
	// sigmaPerDev turns a mean absolute deviation into a standard deviation
	// (√(π/2) for normal noise).
	sigmaPerDev = 1.2533
)

// estimate is the filter state of one substrate. Values are natural
// logarithms of nanoseconds: the noise of round-trip times is
// multiplicative, so a ratio threshold is a difference here.
type estimate struct {
	n     int     // samples since the estimate (re)started
	mean  float64 // the filtered log latency
	dev   float64 // mean absolute deviation of the samples around mean
	seen  int     // the evaluation cycle of the last sample
	up    int     // consecutive slow outliers
	upMin float64 // the fastest of them

	jumped  bool    // the last sample was a fast jump to a new level
	before  float64 // the level before it
	beforeN int     // and its n
}

// filterParams are the resolved filter settings.
type filterParams struct {
	on        bool
	gain      float64 // a = 1/2^(k/4)
	lnRatio   float64 // ln(1 - Improvement)
	margin    float64 // noise margin in standard errors
	floor     time.Duration
	maxMissed int
}

// add folds the sample x (a log latency) observed in cycle into e; prior is
// the deviation a fresh estimate starts with.
func (e *estimate) add(x float64, cycle int, prior float64, p filterParams) {
	e.seen = cycle
	if e.n == 0 {
		if e.dev == 0 { // new, not restarted
			e.dev = prior
		}
		e.n, e.mean, e.up, e.jumped = 1, x, 0, false
		return
	}
	lim := outlierDevs * max(e.dev, minRelDev)
	if e.jumped {
		// The sample after a fast jump decides it: back at the old level,
		// the jump was one fast glitch and is undone; anything else keeps it.
		e.jumped = false
		if math.Abs(x-e.before) <= lim {
			e.mean, e.n = e.before, e.beforeN
		}
	}
	err := x - e.mean
	// An outlier counts as lim toward the deviation: a noisier path is
	// learnt within a few samples, one spike barely moves it. That holds
	// for a fast jump too: in heavy noise most of them are noise.
	e.dev += devGain * (min(math.Abs(err), lim) - e.dev)
	switch {
	case err < -lim: // faster than the noise explains: a new level, believed at once
		e.jumped, e.before, e.beforeN = true, e.mean, e.n
		e.mean, e.n, e.up = x, 1, 0
		return
	case err > lim:
		if e.up == 0 || x < e.upMin {
			e.upMin = x
		}
		e.up++
		if e.up >= confirmUp { // slower for good: restart at the fastest of the run
			e.mean, e.n, e.up = e.upMin, 1, 0
			return
		}
		err = lim // a slow outlier moves the estimate by at most lim
	default:
		e.up = 0
	}
	e.n++
	e.mean += max(p.gain, 1/float64(e.n)) * err
}

// stderr is the standard error of e.mean: the noise of the samples shrunk by
// what the filter averages (a running mean of n samples at first, then the
// exponential filter's a/(2-a) of the variance).
func (e *estimate) stderr(gain float64) float64 {
	return sigmaPerDev * e.dev * math.Sqrt(max(gain/(2-gain), 1/float64(e.n)))
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
	return Estimate{Latency: time.Duration(lat), Noise: time.Duration(lat * est.stderr(e.f.gain)),
		Samples: est.n}, true
}

// observe feeds this cycle's measurements to the filters and forgets the
// estimates of substrates not measured for more than maxMissed cycles.
func (e *Evaluator) observe(obs Snapshot) {
	if !e.f.on {
		return
	}
	prior := freshDev // a fresh substrate is taken to be as noisy as the current one
	if cur := e.est[obs.Current.ID]; cur != nil && obs.Current.ID != "" {
		prior = cur.dev
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
	if u == nil || c == nil {
		return false
	}
	gain := u.mean + e.f.lnRatio - c.mean
	if gain <= 0 {
		return false
	}
	noise := math.Hypot(u.stderr(e.f.gain), c.stderr(e.f.gain))
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
