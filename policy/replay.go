package policy

import (
	"fmt"
	"strings"

	"github.com/repram/handover/fsm"
)

// Strategy names a migration strategy Replay can run.
type Strategy string

// The strategies.
const (
	// Hysteresis is the policy of this package, run by [New].
	Hysteresis Strategy = "hysteresis"
	// Naive migrates whenever a candidate is faster this cycle: the baseline
	// run by [NewNaive].
	Naive Strategy = "naive"
)

// ParseStrategy returns the strategy named s ("hysteresis" or "naive").
func ParseStrategy(s string) (Strategy, error) {
	switch Strategy(s) {
	case Hysteresis, Naive:
		return Strategy(s), nil
	}
	return "", fmt.Errorf("policy: unknown strategy %q: want %q or %q", s, Hysteresis, Naive)
}

// NewStrategy returns an Evaluator running s; cfg applies to Hysteresis
// (it is validated either way, since its PingPongWindow also defines
// ping-pongs in a [Report]).
func NewStrategy(s Strategy, cfg Config) (*Evaluator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch s {
	case Hysteresis:
		return New(cfg)
	case Naive:
		return NewNaive(), nil
	}
	_, err := ParseStrategy(string(s))
	return nil, err
}

// Move is one change of attachment during a replay.
type Move struct {
	Cycle    int // the cycle at whose end (policy) or during which (forced) it happened
	From, To string
	Forced   bool   // the current substrate was gone: not a policy decision
	PingPong bool   // a return to the substrate left by the previous move, within PingPongWindow cycles
	Reason   string // the decision's reason, or why it was forced
}

// Report is the outcome of replaying a trace against a strategy.
type Report struct {
	Strategy Strategy
	Config   Config // with defaults filled in
	Cycles   int
	// Migrations counts the migrations the strategy decided (candidate_better).
	Migrations int
	// Forced counts moves off a substrate marked gone (not decided by policy).
	Forced int
	// PingPongs counts policy migrations back to the substrate the previous
	// policy migration left, within Config.PingPongWindow cycles.
	PingPongs int
	// ReactionCycles has one entry per Trace.Steps: how many cycles of the
	// new situation were observed up to and including the one whose decision
	// migrated (1 = reacted to the very first observation), or -1 when no
	// policy migration followed before the next step or the trace's end. The
	// real step changes are ground truth declared by the trace's author with
	// @step, not inferred from the (noisy) latencies.
	ReactionCycles []int
	// CyclesOnNonBest counts cycles spent attached to a substrate other than
	// the best one observed in that cycle: the node's enclave first, then the
	// lowest measured latency. Cycles without a measurement of the current
	// substrate are not counted. Noise makes the best substrate change from cycle to cycle, so
	// compare strategies on the same trace rather than reading it alone.
	CyclesOnNonBest int
	Moves           []Move
	Final           string // the attachment at the end
}

// Label names the strategy and, for Hysteresis, the filter it compared:
// "hysteresis/robust", "hysteresis/none" or "naive".
func (r Report) Label() string {
	if r.Strategy == Hysteresis {
		return string(r.Strategy) + "/" + string(r.Config.Filter)
	}
	return string(r.Strategy)
}

// String summarises the report on one line.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d migrations, %d ping-pongs, %d forced, %d/%d cycles on a non-best substrate",
		r.Label(), r.Migrations, r.PingPongs, r.Forced, r.CyclesOnNonBest, r.Cycles)
	if len(r.ReactionCycles) > 0 {
		fmt.Fprintf(&b, ", reaction %v cycles", r.ReactionCycles)
	}
	fmt.Fprintf(&b, ", ends on %s", r.Final)
	return b.String()
}

// Replay runs strategy s with cfg over tr and reports what it did. The node
// starts attached to tr.Start (reported to the evaluator with Attached, so
// the first cycles are cooldown). Each cycle the evaluator sees the current
// substrate's sample (latency unknown when it has none) and every other
// sample as a candidate. A candidate_better migration is assumed to complete
// at the end of its cycle. A current substrate marked gone forces a move,
// during that cycle, to the best substrate observed in it, as a goodbye would.
// Replay is deterministic.
func Replay(tr Trace, cfg Config, s Strategy) (Report, error) {
	ev, err := NewStrategy(s, cfg)
	if err != nil {
		return Report{}, err
	}
	r := Report{Strategy: s, Config: cfg.WithDefaults(), Cycles: len(tr.Cycles), Final: tr.Start}
	current := Measurement{ID: tr.Start}
	ev.Attached(current.ID)
	move := func(m Move) {
		if !m.Forced {
			r.Migrations++
			if n := len(r.Moves); n > 0 {
				p := r.Moves[n-1]
				m.PingPong = !p.Forced && p.From == m.To && m.Cycle-p.Cycle <= r.Config.PingPongWindow
			}
			if m.PingPong {
				r.PingPongs++
			}
		} else {
			r.Forced++
		}
		r.Moves = append(r.Moves, m)
	}
	cands := make([]Measurement, 0, 8)
	for _, c := range tr.Cycles {
		cur, gone := sampleOf(c, current.ID)
		if gone {
			if to, ok := bestSample(tr.Enclave, c, current.ID); ok {
				ev.Forced()
				move(Move{Cycle: c.N, From: current.ID, To: to.ID, Forced: true,
					Reason: current.ID + " is gone"})
				ev.Attached(to.ID)
				current = to
				cur, _ = sampleOf(c, to.ID)
			}
		}
		if cur.ID != "" {
			current.Enclave = cur.Enclave // a substrate keeps its last known enclave
		}
		obs := Snapshot{Enclave: tr.Enclave,
			Current: Measurement{ID: current.ID, Address: current.ID, Enclave: current.Enclave, Latency: cur.Latency}}
		cands = cands[:0]
		for _, smp := range c.Samples {
			if smp.Substrate != current.ID && !smp.Gone {
				cands = append(cands, substrateOf(smp))
			}
		}
		obs.Candidates = cands
		if b, ok := bestSample(tr.Enclave, c, ""); ok && cur.Latency > 0 && b.ID != current.ID {
			r.CyclesOnNonBest++
		}
		if d := ev.Evaluate(obs); d.Event == fsm.CandidateBetter {
			move(Move{Cycle: c.N, From: current.ID, To: d.Candidate.ID, Reason: d.Reason})
			ev.Attached(d.Candidate.ID)
			current = d.Candidate
		}
	}
	r.Final = current.ID
	r.ReactionCycles = reactions(tr.Steps, r.Moves)
	return r, nil
}

func substrateOf(s Sample) Measurement {
	return Measurement{ID: s.Substrate, Address: s.Substrate, Enclave: s.Enclave, Latency: s.Latency}
}

// sampleOf returns id's sample in c as a Substrate (zero when not listed or
// gone) and whether it is marked gone.
func sampleOf(c Cycle, id string) (Measurement, bool) {
	for _, s := range c.Samples {
		if s.Substrate == id {
			if s.Gone {
				return Measurement{}, true
			}
			return substrateOf(s), false
		}
	}
	return Measurement{}, false
}

// bestSample returns the best measured substrate of c other than except.
func bestSample(node string, c Cycle, except string) (Measurement, bool) {
	var best Measurement
	found := false
	for _, s := range c.Samples {
		if s.Gone || s.Latency <= 0 || s.Substrate == except {
			continue
		}
		if sub := substrateOf(s); !found || better(node, sub, best) {
			best, found = sub, true
		}
	}
	return best, found
}

func reactions(steps []int, moves []Move) []int {
	out := make([]int, 0, len(steps))
	for i, s := range steps {
		end := -1
		if i+1 < len(steps) {
			end = steps[i+1]
		}
		n := -1
		for _, m := range moves {
			if !m.Forced && m.Cycle >= s && (end < 0 || m.Cycle < end) {
				n = m.Cycle - s + 1
				break
			}
		}
		out = append(out, n)
	}
	return out
}
