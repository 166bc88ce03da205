package policy

import (
	"fmt"
	"math"
	"time"

	"github.com/repram/handover/fsm"
)

// Measurement is one substrate as seen in an evaluation cycle.
type Measurement struct {
	ID      string
	Address string
	Enclave string
	// Latency is the round-trip time measured this cycle. Zero or negative
	// means unknown: no measurement arrived this cycle.
	Latency time.Duration
}

// Snapshot is what the node saw during one evaluation cycle.
type Snapshot struct {
	Enclave    string        // this node's enclave
	Current    Measurement   // the current attachment; an empty ID means none
	Candidates []Measurement // the other substrates it could migrate to
}

// Decision is the outcome of one evaluation cycle: at most one event.
type Decision struct {
	// Event is empty (nothing to do), fsm.CandidateBetter or fsm.CooldownElapsed.
	Event fsm.Event
	// Candidate is the substrate to migrate to when Event is fsm.CandidateBetter.
	Candidate Measurement
	// Reason explains a non-empty Event, for logs.
	Reason string
}

// params are the resolved thresholds an Evaluator runs with.
type params struct {
	ratio       float64 // qualifies when new < ratio × current
	streak      int
	cooldown    int // full cycles after the partial one
	backoff     int // 0 disables backoff
	backoffMax  int
	damping     bool
	window      int
	maxStreak   int
	relaxCycles int
	strategy    Strategy
}

// pair is an unordered pair of substrate ids, lowest first.
type pair struct{ a, b string }

func pairOf(x, y string) pair {
	if y < x {
		x, y = y, x
	}
	return pair{x, y}
}

// damped is the raised streak of a pair after ping-pongs.
type damped struct {
	streak int
	since  int // cycle of the last ping-pong or relaxation
}

// backedOff is the backoff state of a candidate whose migrations failed.
type backedOff struct {
	failures int
	until    int // not proposed in cycles up to and including this one
}

// departure remembers the substrate the node last left.
type departure struct {
	id     string
	cycle  int
	forced bool
}

// Evaluator turns one observation per evaluation cycle into decisions. It is
// not safe for concurrent use: the transport driver's event loop owns it.
type Evaluator struct {
	p params
	f filterParams

	est map[string]*estimate // substrate id → filtered latency (filter on)

	cycle    int // evaluation cycles ended so far
	current  string
	cooldown int // Evaluate calls left that count nothing; the last of them returns cooldown_elapsed

	streakBase string         // the current attachment the streaks were counted against
	streaks    map[string]int // candidate id → consecutive qualifying cycles
	next       map[string]int // scratch for the next cycle's streaks

	backoff map[string]*backedOff
	pairs   map[pair]*damped
	left    *departure
	forced  bool // the next Attached ends a forced migration
}

// New returns an Evaluator running the hysteresis policy with cfg (zero
// fields take their defaults). It fails, wrapping [ErrInvalidConfig], when
// cfg is invalid.
func New(cfg Config) (*Evaluator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.WithDefaults()
	e := newEvaluator(params{
		ratio:       1 - c.Improvement,
		streak:      c.Streak,
		cooldown:    c.CooldownCycles,
		backoff:     c.BackoffCycles,
		backoffMax:  c.BackoffMaxCycles,
		damping:     true,
		window:      c.PingPongWindow,
		maxStreak:   c.PingPongMaxStreak,
		relaxCycles: c.PingPongRelaxCycles,
		strategy:    Hysteresis,
	})
	e.f = filterParams{
		on:        c.Filter == FilterRobust,
		gain:      math.Pow(2, -float64(c.FilterK)/4),
		lnRatio:   math.Log(1 - c.Improvement),
		margin:    c.NoiseMargin,
		floor:     c.MinDifference,
		maxMissed: c.MaxMissedCycles,
	}
	return e, nil
}

// NewNaive returns the baseline Evaluator: it proposes any candidate that is
// faster than the current attachment in this cycle (same enclave rules, no
// improvement margin, streak of one, no backoff, no ping-pong damping). Its
// cooldown is the shortest the state machine allows: the Evaluate after
// Attached returns cooldown_elapsed straight away.
func NewNaive() *Evaluator {
	return newEvaluator(params{ratio: 1, streak: 1, strategy: Naive})
}

func newEvaluator(p params) *Evaluator {
	return &Evaluator{
		p:       p,
		streaks: map[string]int{},
		next:    map[string]int{},
		backoff: map[string]*backedOff{},
		pairs:   map[pair]*damped{},
		est:     map[string]*estimate{},
	}
}

// Evaluate ends one evaluation cycle with what was observed during it and
// returns at most one decision. Call it exactly once per cycle.
func (e *Evaluator) Evaluate(obs Snapshot) Decision {
	e.cycle++
	e.relax()
	e.observe(obs)
	if obs.Current.ID != e.streakBase {
		// The attachment changed without Attached (or before it): streaks
		// counted against another substrate mean nothing here.
		clear(e.streaks)
		e.streakBase = obs.Current.ID
	}
	if e.cooldown > 0 {
		clear(e.streaks)
		e.cooldown--
		if e.cooldown == 0 {
			return Decision{Event: fsm.CooldownElapsed,
				Reason: fmt.Sprintf("cooldown over after attaching to %s", e.current)}
		}
		return Decision{}
	}
	if obs.Current.ID == "" {
		clear(e.streaks) // nothing to improve on
		return Decision{}
	}

	var best, bestF Measurement // bestF: with its filtered latency
	found := false
	clear(e.next)
	for _, c := range obs.Candidates {
		if c.ID == "" || c.ID == obs.Current.ID || e.backedOff(c.ID) {
			continue
		}
		if _, dup := e.next[c.ID]; dup {
			continue // listed twice: count it once
		}
		var ok bool
		if e.f.on {
			ok = e.qualifiesFiltered(obs.Enclave, obs.Current, c)
		} else {
			ok = qualifies(obs.Enclave, obs.Current, c, e.p.ratio)
		}
		if !ok {
			continue
		}
		n := e.streaks[c.ID] + 1
		e.next[c.ID] = n
		cf := e.filtered(c)
		if n >= e.required(obs.Current.ID, c.ID) && (!found || better(obs.Enclave, cf, bestF)) {
			best, bestF, found = c, cf, true
		}
	}
	e.streaks, e.next = e.next, e.streaks
	if !found {
		return Decision{}
	}
	kind := ""
	cur := obs.Current
	if e.f.on {
		kind, cur = "filtered ", e.filtered(cur)
		cur.Latency = cur.Latency.Round(time.Microsecond)
		bestF.Latency = bestF.Latency.Round(time.Microsecond)
	}
	return Decision{Event: fsm.CandidateBetter, Candidate: best,
		Reason: fmt.Sprintf("%s (enclave %q, %s%s) beat %s (enclave %q, %s%s) for %d consecutive cycles",
			best.ID, best.Enclave, kind, latency(bestF.Latency), cur.ID, cur.Enclave,
			kind, latency(cur.Latency), e.streaks[best.ID])}
}

// Attached tells the evaluator the attachment changed to id: first join,
// completed migration, accelerated migration or rejoin. It may be called in
// the middle of a cycle. It starts the cooldown: the next Evaluate ends that
// partial cycle and counts nothing, then CooldownCycles full cycles count
// nothing, and the Evaluate ending the last of them returns cooldown_elapsed.
// Counting resumes at the following Evaluate. It also detects a ping-pong
// (a return to the substrate left within PingPongWindow cycles, unless that
// departure was forced) and clears the backoff of id. With the filter, the
// estimates of id and of the substrate left start again from their next
// sample (keeping their noise): they are now measured another way.
func (e *Evaluator) Attached(id string) {
	prev := e.current
	if prev != "" && prev != id {
		if e.p.damping && e.left != nil && !e.left.forced && e.left.id == id && e.cycle-e.left.cycle <= e.p.window {
			e.pingPong(prev, id)
		}
		e.left = &departure{id: prev, cycle: e.cycle, forced: e.forced}
	}
	e.forced = false
	if prev != id {
		e.restart(prev)
		e.restart(id)
	}
	e.current = id
	e.cooldown = e.p.cooldown + 1
	clear(e.streaks)
	delete(e.backoff, id)
}

// MigrationFailed tells the evaluator that the migration to id was cancelled
// (handshake timeout, refusal, new link failed or never caught up). The
// candidate is not proposed for BackoffCycles cycles, doubled for each
// consecutive failure up to BackoffMaxCycles; a successful Attached(id)
// resets it.
func (e *Evaluator) MigrationFailed(id string) {
	delete(e.streaks, id)
	if e.p.backoff == 0 {
		return
	}
	b := e.backoff[id]
	if b == nil {
		b = &backedOff{}
		e.backoff[id] = b
	}
	b.failures++
	n := e.p.backoff
	for i := 1; i < b.failures && n < e.p.backoffMax; i++ {
		n *= 2
	}
	b.until = e.cycle + min(n, e.p.backoffMax)
}

// Forced tells the evaluator that a forced migration started (the current
// substrate said goodbye). The machine migrates without hysteresis or
// cooldown; the evaluator drops its streaks, and the departure it ends is
// not counted toward ping-pong damping. Call Attached when it completes.
func (e *Evaluator) Forced() {
	clear(e.streaks)
	e.forced = true
}

// Strategy returns the name of the strategy e runs.
func (e *Evaluator) Strategy() Strategy { return e.p.strategy }

// RequiredStreak returns the consecutive qualifying cycles a migration
// between a and b currently requires: Streak, raised by ping-pong damping.
func (e *Evaluator) RequiredStreak(a, b string) int { return e.required(a, b) }

func (e *Evaluator) required(a, b string) int {
	if d := e.pairs[pairOf(a, b)]; d != nil {
		return max(d.streak, e.p.streak)
	}
	return e.p.streak
}

func (e *Evaluator) backedOff(id string) bool {
	b := e.backoff[id]
	return b != nil && e.cycle <= b.until
}

func (e *Evaluator) pingPong(a, b string) {
	k := pairOf(a, b)
	d := e.pairs[k]
	if d == nil {
		d = &damped{streak: e.p.streak}
		e.pairs[k] = d
	}
	d.streak = min(d.streak*2, e.p.maxStreak)
	d.since = e.cycle
}

// relax halves the raised streak of every pair that had no ping-pong for
// PingPongRelaxCycles cycles.
func (e *Evaluator) relax() {
	for k, d := range e.pairs {
		if e.cycle-d.since < e.p.relaxCycles {
			continue
		}
		d.streak /= 2
		d.since = e.cycle
		if d.streak <= e.p.streak {
			delete(e.pairs, k)
		}
	}
}

// qualifies reports whether cand beats cur for a node in enclave node. A
// candidate in the node's enclave beats a current attachment outside it; a
// move out of the node's enclave never qualifies; otherwise the candidate
// must be faster than ratio × current. The candidate's latency must be known;
// the current's only when latencies are compared.
func qualifies(node string, cur, cand Measurement, ratio float64) bool {
	if q, decided := byEnclave(node, cur, cand); decided {
		return q
	}
	return cur.Latency > 0 && float64(cand.Latency) < ratio*float64(cur.Latency)
}

// byEnclave is the part of qualifying that latencies do not decide: an
// unmeasured candidate never qualifies, one in the node's enclave beats a
// current attachment outside it, and a move out of the node's enclave never
// qualifies. decided is false when the latencies must be compared.
func byEnclave(node string, cur, cand Measurement) (qualifies, decided bool) {
	if cand.Latency <= 0 {
		return false, true
	}
	switch curIn, candIn := cur.Enclave == node, cand.Enclave == node; {
	case curIn && !candIn:
		return false, true
	case candIn && !curIn:
		return true, true
	}
	return false, false
}

// better ranks a before b: in the node's enclave first, then lower latency
// (unknown last), then lower id.
func better(node string, a, b Measurement) bool {
	if ai, bi := a.Enclave == node, b.Enclave == node; ai != bi {
		return ai
	}
	al, bl := a.Latency, b.Latency
	if (al > 0) != (bl > 0) {
		return al > 0
	}
	if al > 0 && al != bl {
		return al < bl
	}
	return a.ID < b.ID
}

func latency(d time.Duration) string {
	if d <= 0 {
		return "unknown"
	}
	return d.String()
}
