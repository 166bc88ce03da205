package fsm_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/repram/handover/fsm"
)

// exhaustiveDepth is the length of the longest input sequence explored. Each
// input is an event and, where the pair is guarded by has_alternative,
// whether an alternative is queued; depth 6 explores about 6.4 million steps
// (3 to 10 s with -race on 2 cores, depending on what else runs).
const exhaustiveDepth = 6

// input is one choice of the exhaustive search: an event, and whether
// has_alternative holds when it fires.
type input struct {
	event int
	alt   bool
}

// explorer walks every input sequence up to a length from the initial state
// of a model, checking the link invariants on every step. has_alternative is
// an input: both values are explored wherever a branch of the pair is guarded
// by it (elsewhere both values take the same branch, so one is explored).
// others_racing is evaluated from the link model of the sequence so far.
// Nothing is memoised: each sequence is its own path, so an invariant that
// depends on history (link identities) is checked along every history.
type explorer struct {
	m       *model
	seq     []input // the current sequence
	steps   int     // sequences explored: one per step taken
	reached []bool
	taken   []bool // by branch id
	err     error
}

func explore(m *model, depth int) *explorer {
	x := &explorer{m: m, seq: make([]input, 0, depth), reached: make([]bool, len(m.cells)), taken: make([]bool, m.branches)}
	x.reached[m.initial] = true
	x.walk(m.initial, fsm.Links{}, depth)
	return x
}

func (x *explorer) walk(s int, links fsm.Links, depth int) {
	for e := range x.m.cells[s] {
		for _, alt := range [2]bool{false, true} {
			if x.err != nil {
				return
			}
			if alt && !x.m.asksAlt[s][e] {
				continue
			}
			x.seq = append(x.seq, input{e, alt})
			b := x.decide(s, e, links, alt)
			x.taken[b.id] = true
			x.steps++
			next := links
			if !b.step.Ignored {
				next.Apply(b.step.Actions)
			}
			if err := next.CheckStep(links, b.step); err != nil {
				x.err = fmt.Errorf("after %s: %w", x.sequence(), err)
				return
			}
			x.reached[b.next] = true
			if depth > 1 {
				x.walk(b.next, next, depth-1)
			}
			x.seq = x.seq[:len(x.seq)-1]
		}
	}
}

// decide is model.decide without a closure per step.
func (x *explorer) decide(s, e int, links fsm.Links, alt bool) *branch {
	bs := x.m.cells[s][e]
	for i := range len(bs) - 1 {
		if links.Holds(bs[i].guard, alt) {
			return &bs[i]
		}
	}
	return &bs[len(bs)-1]
}

func (x *explorer) sequence() string {
	names := make([]string, len(x.seq))
	for i, in := range x.seq {
		names[i] = string(x.m.chart.Events[in.event])
		if in.alt {
			names[i] += "[" + string(fsm.HasAlternative) + "]"
		}
	}
	return strings.Join(names, " → ")
}

// TestExhaustiveSequences checks the invariants of fsm.Links.CheckStep along
// every input sequence of length up to exhaustiveDepth from the initial
// state, and that the search reaches every state and takes every declared
// branch (each guarded transition, each fallback).
func TestExhaustiveSequences(t *testing.T) {
	m := declaredModel(t)
	x := explore(m, exhaustiveDepth)
	if x.err != nil {
		t.Fatal(x.err)
	}
	// Without has_alternative choices the search would explore exactly
	// sum(13^k); the choices can only add sequences.
	plain, n := 0, 1
	for range exhaustiveDepth {
		n *= len(m.chart.Events)
		plain += n
	}
	if x.steps <= plain {
		t.Fatalf("explored %d sequences, want more than the %d without has_alternative choices", x.steps, plain)
	}
	for i, ok := range x.reached {
		if !ok {
			t.Errorf("state %s is not reached within %d events", m.chart.States[i], exhaustiveDepth)
		}
	}
	for s := range m.cells {
		for e := range m.cells[s] {
			for i := range m.cells[s][e] {
				if b := &m.cells[s][e][i]; !x.taken[b.id] {
					t.Errorf("the search never took (%s, %s) with guard %s within %d events",
						m.chart.States[s], m.chart.Events[e], guardName(b.guard), exhaustiveDepth)
				}
			}
		}
	}
	t.Logf("explored %d input sequences of length 1 to %d (%d without has_alternative choices)", x.steps, exhaustiveDepth, plain)
}

// brokenDepth is the search depth for broken charts: each breaks within a few
// steps, and a search that fails to see it runs in full.
const brokenDepth = 5

// TestExhaustiveCatchesBrokenCharts shows the exhaustive search fails for
// charts that break each invariant, including breaks only one guard outcome
// reaches.
func TestExhaustiveCatchesBrokenCharts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tr    fsm.Edge
		wants string
	}{
		{"switch closes the promoted link", fsm.Edge{From: fsm.Overlapping, Event: fsm.OverlapDone, To: fsm.Cooldown,
			Path: fsm.PathMigrate, Actions: []fsm.Action{fsm.PromoteCandidate, fsm.CloseOld}}, "do not fit the state"},
		{"cancel drops the old link", fsm.Edge{From: fsm.Handshaking, Event: fsm.NewFailed, To: fsm.Attached,
			Path: fsm.PathCancel, Actions: []fsm.Action{fsm.DropOld, fsm.PromoteCandidate}}, "did not keep the old primary"},
		{"accelerate keeps the old link", fsm.Edge{From: fsm.Overlapping, Event: fsm.OldDied, To: fsm.Cooldown,
			Path: fsm.PathAccelerate, Actions: []fsm.Action{fsm.DropCandidate}}, "did not promote the candidate"},
		{"closed is left", fsm.Edge{From: fsm.Closed, Event: fsm.Attach, To: fsm.Joining,
			Path: fsm.PathJoin, Actions: []fsm.Action{fsm.DialCandidate, fsm.SendHello}}, "left closed"},
		{"close leaks a link", fsm.Edge{From: fsm.Overlapping, Event: fsm.Close, To: fsm.Closed,
			Path: fsm.PathClose, Actions: []fsm.Action{fsm.CloseOld}}, "do not fit the state"},
		{"welcome keeps the rivals", fsm.Edge{From: fsm.Handshaking, Event: fsm.HandshakeOK, To: fsm.Overlapping,
			Path: fsm.PathMigrate, Actions: []fsm.Action{fsm.StartOverlap}}, "do not fit the state"},
		// Only the has_alternative=true outcome reaches this branch.
		{"next alternative is not dialled", fsm.Edge{From: fsm.Handshaking, Event: fsm.NewFailed,
			Guard: fsm.HasAlternative, To: fsm.Handshaking, Path: fsm.PathRace,
			Actions: []fsm.Action{fsm.DropCandidate}}, "do not fit the state"},
		// Only others_racing=false (one candidate, from the link model)
		// reaches the fallback.
		{"lone racer's failure keeps joining", fsm.Edge{From: fsm.Joining, Event: fsm.HandshakeTimeout,
			To: fsm.Joining, Path: fsm.PathRace, Actions: []fsm.Action{fsm.DropCandidate}}, "do not fit the state"},
		// Only others_racing=true (two candidates) reaches this branch.
		{"race goes on as a cancel", fsm.Edge{From: fsm.Handshaking, Event: fsm.HandshakeTimeout,
			Guard: fsm.OthersRacing, To: fsm.Attached, Path: fsm.PathCancel,
			Actions: []fsm.Action{fsm.DropCandidate}}, "do not fit the state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fsm.Declaration()
			tc.tr.Meaning = "broken"
			setBranch(&c, tc.tr)
			if err := c.Validate(); err != nil {
				t.Fatalf("the broken chart must still be valid: %v", err)
			}
			m, err := newModel(c)
			if err != nil {
				t.Fatal(err)
			}
			x := explore(m, brokenDepth)
			if x.err == nil || !strings.Contains(x.err.Error(), tc.wants) {
				t.Fatalf("explore = %v, want an error containing %q", x.err, tc.wants)
			}
			t.Log(x.err)
		})
	}
}

// setBranch replaces the branch of (t.From, t.Event) with t's guard by t:
// for an unguarded t, the pair's fallback (transition or ignore); for a
// guarded one, the transition with that guard, in its place.
func setBranch(c *fsm.Chart, t fsm.Edge) {
	for i, old := range c.Transitions {
		if old.From == t.From && old.Event == t.Event && old.Guard == t.Guard {
			c.Transitions[i] = t
			return
		}
	}
	var igs []fsm.Ignore
	for _, ig := range c.Ignores {
		if t.Guard != "" || ig.State != t.From || ig.Event != t.Event {
			igs = append(igs, ig)
		}
	}
	c.Transitions, c.Ignores = append(c.Transitions, t), igs
}

// machineDepth bounds the sequences replayed on real Machines.
const machineDepth = 4

// TestMachineAgreesOnShortSequences walks every input sequence up to
// machineDepth with real Machines: at each node a Machine in the node's state
// fires each event with each has_alternative outcome that matters (and
// others_racing from the links so far), and must return the declared step and
// end in its state. Building a looplab machine is slow under -race, so the
// Machines are pooled by state: each fire takes one in the node's state,
// whatever history brought it there, which also checks that a Machine's
// behaviour depends on its state alone.
func TestMachineAgreesOnShortSequences(t *testing.T) {
	m := declaredModel(t)
	var (
		fired, built int
		pool         = map[fsm.State][]*fsm.Machine{}
		walk         func(s fsm.State, links fsm.Links, depth int, seq []string)
	)
	machineIn := func(s fsm.State) *fsm.Machine {
		if ms := pool[s]; len(ms) > 0 {
			pool[s] = ms[:len(ms)-1]
			return ms[len(ms)-1]
		}
		mach, err := fsm.NewIn(s)
		if err != nil {
			t.Fatal(err)
		}
		built++
		return mach
	}
	walk = func(s fsm.State, links fsm.Links, depth int, seq []string) {
		si := m.index[s]
		for ei, e := range m.chart.Events {
			for _, alt := range []bool{false, true} {
				if t.Failed() {
					return
				}
				if alt && !m.asksAlt[si][ei] {
					continue
				}
				mach := machineIn(s)
				holds := guardsOf(links, alt)
				got, err := mach.Fire(e, holds)
				fired++
				want, _ := m.step(s, e, holds)
				seq := append(seq, fmt.Sprintf("%s(alt=%t)", e, alt))
				if err != nil {
					t.Errorf("after %v: %v", seq, err)
					return
				}
				if d := diffStep(got, want); d != "" {
					t.Errorf("after %v: %s", seq, d)
				}
				if mach.State() != want.To {
					t.Errorf("after %v: machine in %s, want %s", seq, mach.State(), want.To)
					return
				}
				pool[want.To] = append(pool[want.To], mach)
				next, err := advance(links, got)
				if err != nil {
					t.Errorf("after %v: %v", seq, err)
					return
				}
				if depth > 1 {
					walk(want.To, next, depth-1, seq)
				}
			}
		}
	}
	walk(m.chart.Initial, fsm.Links{}, machineDepth, nil)
	if want := explore(m, machineDepth).steps; fired != want {
		t.Errorf("fired %d events, want one per input sequence the exhaustive search explores: %d", fired, want)
	}
	t.Logf("fired %d events on %d pooled Machines (sequences up to length %d)", fired, built, machineDepth)
}

// TestMachineLongWalk drives one Machine through a long pseudo-random input
// sequence (fixed seed: events, and has_alternative holding half the time)
// and checks every step against the declaration and the link invariants, so
// the looplab state never drifts from the model over a long history. After
// close it starts a new Machine.
func TestMachineLongWalk(t *testing.T) {
	const steps = 50_000
	m := declaredModel(t)
	rng := rand.New(rand.NewPCG(1, 2))
	type key struct {
		s fsm.State
		e fsm.Event
		g fsm.Guard
	}
	var (
		mach     = fsm.New()
		links    fsm.Links
		restarts int
		taken    = map[fsm.Path]int{}
		branches = map[key]bool{}
	)
	for i := range steps {
		e := m.chart.Events[rng.IntN(len(m.chart.Events))]
		holds := guardsOf(links, rng.IntN(2) == 0)
		from := mach.State()
		got, err := mach.Fire(e, holds)
		if err != nil {
			t.Fatalf("step %d: %s in %s: %v", i, e, from, err)
		}
		want, _ := m.step(from, e, holds)
		if d := diffStep(got, want); d != "" {
			t.Fatalf("step %d: %s in %s: %s", i, e, from, d)
		}
		if mach.State() != want.To {
			t.Fatalf("step %d: %s in %s: machine in %s, want %s", i, e, from, mach.State(), want.To)
		}
		if links, err = advance(links, got); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		taken[got.Path]++
		branches[key{from, e, got.Guard}] = true
		if mach.State() == fsm.Closed {
			mach, links = fsm.New(), fsm.Links{}
			restarts++
		}
	}
	for _, tr := range m.chart.Transitions {
		if !branches[key{tr.From, tr.Event, tr.Guard}] {
			t.Errorf("the walk never took %s --%s[%s]--> %s: raise steps or change the seed",
				tr.From, tr.Event, guardName(tr.Guard), tr.To)
		}
	}
	t.Logf("%d events on one Machine at a time, %d restarts after close, paths taken: %v", steps, restarts, taken)
}
