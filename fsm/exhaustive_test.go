package fsm_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/repram/handover/fsm"
)

// exhaustiveDepth is the length of the longest event sequence explored.
const exhaustiveDepth = 6

// explorer walks every event sequence up to a length from the initial state
// of a model, checking the link invariants on every step. Nothing is
// memoised: each sequence is its own path, so an invariant that depends on
// history (link identities) is checked along every history.
type explorer struct {
	m       *model
	seq     []int // event indices of the current sequence
	steps   int   // sequences explored: one per step taken
	reached []bool
	err     error
}

func explore(m *model, depth int) *explorer {
	x := &explorer{m: m, seq: make([]int, 0, depth), reached: make([]bool, len(m.steps))}
	x.reached[m.initial] = true
	x.walk(m.initial, fsm.Links{}, depth)
	return x
}

func (x *explorer) walk(s int, links fsm.Links, depth int) {
	for e := range x.m.steps[s] {
		if x.err != nil {
			return
		}
		st := &x.m.steps[s][e]
		x.steps++
		next := links
		if !st.Ignored {
			next.Apply(st.Actions)
		}
		if err := next.CheckStep(links, *st); err != nil {
			x.seq = append(x.seq, e)
			x.err = fmt.Errorf("after %s: %w", x.sequence(), err)
			return
		}
		to := x.m.next[s][e]
		x.reached[to] = true
		if depth > 1 {
			x.seq = append(x.seq, e)
			x.walk(to, next, depth-1)
			x.seq = x.seq[:len(x.seq)-1]
		}
	}
}

func (x *explorer) sequence() string {
	names := make([]string, len(x.seq))
	for i, e := range x.seq {
		names[i] = string(x.m.chart.Events[e])
	}
	return strings.Join(names, " → ")
}

// TestExhaustiveSequences checks the invariants of fsm.Links.CheckStep along
// every event sequence of length up to exhaustiveDepth from the initial state.
func TestExhaustiveSequences(t *testing.T) {
	m := declaredModel(t)
	x := explore(m, exhaustiveDepth)
	if x.err != nil {
		t.Fatal(x.err)
	}
	want, n := 0, 1
	for range exhaustiveDepth {
		n *= len(m.chart.Events)
		want += n
	}
	if x.steps != want {
		t.Fatalf("explored %d sequences, want %d", x.steps, want)
	}
	for i, ok := range x.reached {
		if !ok {
			t.Errorf("state %s is not reached within %d events", m.chart.States[i], exhaustiveDepth)
		}
	}
	t.Logf("explored %d event sequences of length 1 to %d (%d of length %d)", x.steps, exhaustiveDepth, n, exhaustiveDepth)
}

// TestExhaustiveCatchesBrokenCharts shows the exhaustive search fails for
// charts that break each invariant.
func TestExhaustiveCatchesBrokenCharts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		s     fsm.State
		e     fsm.Event
		to    fsm.State
		path  fsm.Path
		acts  []fsm.Action
		wants string
	}{
		{"switch closes the promoted link", fsm.Overlapping, fsm.OverlapDone, fsm.Cooldown, fsm.PathMigrate,
			[]fsm.Action{fsm.PromoteCandidate, fsm.CloseOld}, "do not fit the state"},
		{"cancel drops the old link", fsm.Handshaking, fsm.NewFailed, fsm.Attached, fsm.PathCancel,
			[]fsm.Action{fsm.DropOld, fsm.PromoteCandidate}, "did not keep the old primary"},
		{"accelerate keeps the old link", fsm.Overlapping, fsm.OldDied, fsm.Cooldown, fsm.PathAccelerate,
			[]fsm.Action{fsm.DropCandidate}, "did not promote candidate"},
		{"closed is left", fsm.Closed, fsm.Attach, fsm.Joining, fsm.PathJoin,
			[]fsm.Action{fsm.DialCandidate, fsm.SendHello}, "left closed"},
		{"close leaks a link", fsm.Overlapping, fsm.Close, fsm.Closed, fsm.PathClose,
			[]fsm.Action{fsm.CloseOld}, "do not fit the state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fsm.Declaration()
			setTransition(&c, fsm.Transition{From: tc.s, Event: tc.e, To: tc.to, Actions: tc.acts, Path: tc.path, Meaning: "broken"})
			if err := c.Validate(); err != nil {
				t.Fatalf("the broken chart must still be valid: %v", err)
			}
			m, err := newModel(c)
			if err != nil {
				t.Fatal(err)
			}
			x := explore(m, exhaustiveDepth)
			if x.err == nil || !strings.Contains(x.err.Error(), tc.wants) {
				t.Fatalf("explore = %v, want an error containing %q", x.err, tc.wants)
			}
		})
	}
}

// setTransition replaces the decision for (t.From, t.Event) with t.
func setTransition(c *fsm.Chart, t fsm.Transition) {
	var ts []fsm.Transition
	for _, old := range c.Transitions {
		if old.From != t.From || old.Event != t.Event {
			ts = append(ts, old)
		}
	}
	var igs []fsm.Ignore
	for _, ig := range c.Ignores {
		if ig.State != t.From || ig.Event != t.Event {
			igs = append(igs, ig)
		}
	}
	c.Transitions, c.Ignores = append(ts, t), igs
}

// machineDepth bounds the sequences replayed on real Machines. Building a
// looplab machine costs tens of microseconds under -race, so the depth is
// lower than exhaustiveDepth; TestMachineLongWalk covers long histories.
const machineDepth = 4

// TestMachineAgreesOnShortSequences walks every sequence up to machineDepth
// with real Machines: at each node a fresh Machine started in the node's state
// fires each event, and must return the declared step and end in its state.
func TestMachineAgreesOnShortSequences(t *testing.T) {
	m := declaredModel(t)
	var (
		fired int
		walk  func(s fsm.State, depth int, seq []fsm.Event)
	)
	walk = func(s fsm.State, depth int, seq []fsm.Event) {
		for _, e := range m.chart.Events {
			if t.Failed() {
				return
			}
			mach, err := fsm.NewIn(s)
			if err != nil {
				t.Fatal(err)
			}
			got, err := mach.Fire(e)
			fired++
			want, _ := m.step(s, e)
			seq := append(seq, e)
			if err != nil {
				t.Errorf("after %v: %v", seq, err)
				return
			}
			if d := diffStep(got, want); d != "" {
				t.Errorf("after %v: %s", seq, d)
			}
			if mach.State() != want.To {
				t.Errorf("after %v: machine in %s, want %s", seq, mach.State(), want.To)
			}
			if depth > 1 {
				walk(want.To, depth-1, seq)
			}
		}
	}
	walk(m.chart.Initial, machineDepth, nil)
	t.Logf("fired %d events on fresh Machines (sequences up to length %d)", fired, machineDepth)
}

// TestMachineLongWalk drives one Machine through a long pseudo-random event
// sequence (fixed seed) and checks every step against the declaration and
// the link invariants, so the looplab state never drifts from the model over
// a long history. After close it starts a new Machine.
func TestMachineLongWalk(t *testing.T) {
	const steps = 50_000
	m := declaredModel(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var (
		mach     = fsm.New()
		links    fsm.Links
		restarts int
		taken    = map[fsm.Path]int{}
		cells    = map[[2]string]bool{}
	)
	for i := range steps {
		e := m.chart.Events[rng.IntN(len(m.chart.Events))]
		from := mach.State()
		got, err := mach.Fire(e)
		if err != nil {
			t.Fatalf("step %d: %s in %s: %v", i, e, from, err)
		}
		want, _ := m.step(from, e)
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
		cells[[2]string{string(from), string(e)}] = true
		if mach.State() == fsm.Closed {
			mach, links = fsm.New(), fsm.Links{}
			restarts++
		}
	}
	for _, tr := range m.chart.Transitions {
		if !cells[[2]string{string(tr.From), string(tr.Event)}] {
			t.Errorf("the walk never took %s --%s--> %s: raise steps or change the seed", tr.From, tr.Event, tr.To)
		}
	}
	t.Logf("%d events on one Machine at a time, %d restarts after close, paths taken: %v", steps, restarts, taken)
}
