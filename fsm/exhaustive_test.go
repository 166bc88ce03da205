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
// whether an alternative is queued; depth 10 is about 2.4·10¹¹ sequences,
// checked in milliseconds because histories that differ only in link names
// are explored once (see canonical).
const exhaustiveDepth = 10

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
//
// Every sequence is checked, but not every one is walked: after each step
// the links are renamed to a canonical form (see canonical), and a node
// already explored to the same remaining depth stands for all the histories
// that lead to it.
type explorer struct {
	m       *model
	seq     []input // the current sequence
	steps   int     // sequences checked: one per step taken
	reached []bool
	taken   []bool // by branch id
	done    map[node]int
	err     error
}

// node is one point of the search: a state, the canonical links (which are
// told by whether there is a primary and how many candidates race) and the
// number of inputs still to explore from it.
type node struct {
	state, candidates, depth int
	primary                  bool
}

// canonicalBase is the first canonical link id: far above the ids a literal
// Links hands to the links one step dials (1, 2, ...), so a fresh link never
// takes a canonical id.
const canonicalBase = 100

// canonical renames l's links: the primary becomes canonicalBase, the
// candidates canonicalBase+1, +2, ... in order. CheckStep compares link ids
// only with each other and with 0, and Apply gives every dialled link an id
// no other link has, so a renamed history passes or fails every check
// exactly as the original does: the search may merge the histories that
// reach the same node.
func canonical(l fsm.Links) fsm.Links {
	c := fsm.Links{}
	if l.Primary != 0 {
		c.Primary = canonicalBase
	}
	for i := range l.Candidates {
		c.Candidates = append(c.Candidates, canonicalBase+1+i)
	}
	return c
}

func explore(m *model, depth int) *explorer {
	x := &explorer{m: m, seq: make([]input, 0, depth), reached: make([]bool, len(m.cells)), taken: make([]bool, m.branches),
		done: map[node]int{}}
	x.reached[m.initial] = true
	// Deepening one input at a time makes the first failure a shortest one;
	// each round reuses the nodes the one before explored.
	for d := 1; d <= depth && x.err == nil; d++ {
		x.steps = x.walk(m.initial, fsm.Links{}, d)
	}
	return x
}

// walk checks every sequence of 1 to depth inputs from state s with links,
// and returns how many there are.
func (x *explorer) walk(s int, links fsm.Links, depth int) int {
	at := node{state: s, candidates: len(links.Candidates), depth: depth, primary: links.Primary != 0}
	if n, ok := x.done[at]; ok {
		return n
	}
	n := 0
	for e := range x.m.cells[s] {
		for _, alt := range [2]bool{false, true} {
			if x.err != nil {
				return n
			}
			if alt && !x.m.asksAlt[s][e] {
				continue
			}
			x.seq = append(x.seq, input{e, alt})
			b := x.decide(s, e, links, alt)
			x.taken[b.id] = true
			n++
			next := links
			if !b.step.Ignored {
				next.Apply(b.step.Actions)
			}
			if err := next.CheckStep(links, b.step); err != nil {
				x.err = fmt.Errorf("after %s: %w", x.sequence(), err)
				return n
			}
			x.reached[b.next] = true
			if depth > 1 {
				n += x.walk(b.next, canonical(next), depth-1)
			}
			x.seq = x.seq[:len(x.seq)-1]
		}
	}
	x.done[at] = n
	return n
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
			x := explore(m, exhaustiveDepth)
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

// TestMachineAgreesAlongEverySequence walks every input sequence up to
// exhaustiveDepth with real Machines, merging histories as the exhaustive
// search does: at each node a Machine in the node's state fires each event
// with each has_alternative outcome that matters (and others_racing from the
// links so far), and must return the declared step and end in its state.
// Building a looplab machine is slow under -race, so the Machines are pooled
// by state: each fire takes one in the node's state, whatever history
// brought it there, which also checks that a Machine's behaviour depends on
// its state alone.
func TestMachineAgreesAlongEverySequence(t *testing.T) {
	m := declaredModel(t)
	var (
		fired, built int
		pool         = map[fsm.State][]*fsm.Machine{}
		done         = map[node]int{}
		walk         func(s fsm.State, links fsm.Links, depth int, seq []string) int
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
	// walk returns how many sequences of 1 to depth inputs from s it covered.
	walk = func(s fsm.State, links fsm.Links, depth int, seq []string) int {
		si := m.index[s]
		at := node{state: si, candidates: len(links.Candidates), depth: depth, primary: links.Primary != 0}
		if n, ok := done[at]; ok {
			return n
		}
		n := 0
		for ei, e := range m.chart.Events {
			for _, alt := range []bool{false, true} {
				if t.Failed() {
					return n
				}
				if alt && !m.asksAlt[si][ei] {
					continue
				}
				mach := machineIn(s)
				holds := guardsOf(links, alt)
				got, err := mach.Fire(e, holds)
				fired++
				n++
				want, _ := m.step(s, e, holds)
				seq := append(seq, fmt.Sprintf("%s(alt=%t)", e, alt))
				if err != nil {
					t.Errorf("after %v: %v", seq, err)
					return n
				}
				if d := diffStep(got, want); d != "" {
					t.Errorf("after %v: %s", seq, d)
				}
				if mach.State() != want.To {
					t.Errorf("after %v: machine in %s, want %s", seq, mach.State(), want.To)
					return n
				}
				pool[want.To] = append(pool[want.To], mach)
				next, err := advance(links, got)
				if err != nil {
					t.Errorf("after %v: %v", seq, err)
					return n
				}
				if depth > 1 {
					n += walk(want.To, canonical(next), depth-1, seq)
				}
			}
		}
		done[at] = n
		return n
	}
	covered := walk(m.chart.Initial, fsm.Links{}, exhaustiveDepth, nil)
	if want := explore(m, exhaustiveDepth).steps; covered != want {
		t.Errorf("covered %d input sequences, want every one the exhaustive search checks: %d", covered, want)
	}
	t.Logf("fired %d events on %d pooled Machines, covering %d input sequences of length 1 to %d", fired, built, covered, exhaustiveDepth)
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
