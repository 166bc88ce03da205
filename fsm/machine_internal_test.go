package fsm

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	lfsm "github.com/looplab/fsm"
)

// lfEdge is one transition of a looplab machine: its source state, the
// looplab event name and the destination state.
type lfEdge struct{ src, event, dst string }

// looplabEdges lists every transition looplab holds, read from its own
// Graphviz rendering of the machine (looplab exposes no other enumeration).
func looplabEdges(t *testing.T, f *lfsm.FSM) map[lfEdge]bool {
	t.Helper()
	re := regexp.MustCompile(`^\s*"([^"]+)" -> "([^"]+)" \[ label = "([^"]+)" \];$`)
	edges := map[lfEdge]bool{}
	for _, line := range strings.Split(lfsm.Visualize(f), "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			edges[lfEdge{src: m[1], event: m[3], dst: m[2]}] = true
		} else if strings.Contains(line, "->") {
			t.Fatalf("cannot read looplab's edge %q", line)
		}
	}
	return edges
}

// TestLooplabHoldsTheDeclaration checks that the looplab machine behind a
// Machine holds exactly the declared transitions: one looplab event per
// declared branch, named "event" when unguarded and "event[guard]" when
// guarded, from the branch's state to its target, and nothing else.
func TestLooplabHoldsTheDeclaration(t *testing.T) {
	c := Declaration()
	want := map[lfEdge]bool{}
	for _, tr := range c.Transitions {
		name := string(tr.Event)
		if tr.Guard != "" {
			name += "[" + string(tr.Guard) + "]"
		}
		want[lfEdge{string(tr.From), name, string(tr.To)}] = true
	}
	m, err := NewIn(Attached)
	if err != nil {
		t.Fatal(err)
	}
	got := looplabEdges(t, m.lf)
	for e := range want {
		if !got[e] {
			t.Errorf("looplab lacks the declared %s --%s--> %s", e.src, e.event, e.dst)
		}
	}
	for e := range got {
		if !want[e] {
			t.Errorf("looplab holds the undeclared %s --%s--> %s", e.src, e.event, e.dst)
		}
	}
	if len(got) != len(c.Transitions) {
		t.Errorf("looplab holds %d transitions, the chart declares %d", len(got), len(c.Transitions))
	}
	// Looplab answers for its current state too.
	var avail []string
	for e := range got {
		if e.src == string(Attached) {
			avail = append(avail, e.event)
		}
	}
	slices.Sort(avail)
	lfAvail := m.lf.AvailableTransitions()
	slices.Sort(lfAvail)
	if !slices.Equal(avail, lfAvail) {
		t.Errorf("looplab offers %v in attached, its table says %v", lfAvail, avail)
	}
}

// TestStateIsLooplabs checks that the machine's state is looplab's: moving
// looplab moves the Machine, and Fire decides from looplab's state.
func TestStateIsLooplabs(t *testing.T) {
	m := New()
	m.lf.SetState(string(Cooldown))
	if m.State() != Cooldown {
		t.Fatalf("looplab in cooldown, Machine.State() = %s", m.State())
	}
	st, err := m.Fire(CooldownElapsed, nil)
	if err != nil || st.From != Cooldown || st.To != Attached || m.lf.Current() != string(Attached) {
		t.Fatalf("cooldown_elapsed after looplab moved to cooldown: %+v, %v (looplab in %s)", st, err, m.lf.Current())
	}
}

// TestTargetComesFromLooplab swaps in a looplab machine whose table sends
// candidate_better elsewhere than the declaration: Fire must report the
// disagreement instead of reporting the declared target, which shows the
// target is looplab's and is checked against the declaration.
func TestTargetComesFromLooplab(t *testing.T) {
	m, err := NewIn(Attached)
	if err != nil {
		t.Fatal(err)
	}
	m.lf = lfsm.NewFSM(string(Attached), lfsm.Events{
		{Name: string(CandidateBetter), Src: []string{string(Attached)}, Dst: string(Cooldown)},
	}, nil)
	_, err = m.Fire(CandidateBetter, nil)
	if err == nil || !strings.Contains(err.Error(), "looplab moved attached --candidate_better--> cooldown, the declaration says handshaking") {
		t.Fatalf("Fire on a looplab table that disagrees: %v, want the disagreement reported", err)
	}
	// A looplab table without the declared event is reported, not ignored.
	m.lf = lfsm.NewFSM(string(Attached), lfsm.Events{}, nil)
	_, err = m.Fire(CandidateBetter, nil)
	if err == nil || !strings.Contains(err.Error(), "looplab rejected declared transition attached --candidate_better--> handshaking") {
		t.Fatalf("Fire on a looplab table without the event: %v, want it reported", err)
	}
}

// TestGuardCancelsLooplabEvent fires a guarded looplab event directly: when
// the guard does not hold its before-event callback cancels it and looplab
// stays where it was; when it holds, looplab moves.
func TestGuardCancelsLooplabEvent(t *testing.T) {
	m, err := NewIn(Attached)
	if err != nil {
		t.Fatal(err)
	}
	name := string(Goodbye) + "[" + string(HasAlternative) + "]"
	m.guard = func(Guard) bool { return false }
	var cancelled lfsm.CanceledError
	if err := m.lf.Event(context.Background(), name); !errors.As(err, &cancelled) || m.lf.Current() != string(Attached) {
		t.Fatalf("%s with the guard not holding: error %v, looplab in %s; want cancelled in attached", name, err, m.lf.Current())
	}
	m.guard = nil
	if err := m.lf.Event(context.Background(), name); !errors.As(err, &cancelled) || m.lf.Current() != string(Attached) {
		t.Fatalf("%s with no GuardFunc: error %v, looplab in %s; want cancelled in attached", name, err, m.lf.Current())
	}
	m.guard = func(g Guard) bool { return g == HasAlternative }
	if err := m.lf.Event(context.Background(), name); err != nil || m.lf.Current() != string(Handshaking) {
		t.Fatalf("%s with the guard holding: error %v, looplab in %s; want handshaking", name, err, m.lf.Current())
	}
}
