package fsm_test

import (
	"slices"
	"testing"

	"github.com/repram/handover/fsm"
)

// TestBreakBeforeMakeVariant: the baseline's chart is valid, never holds two
// links (handshaking and overlapping are unreachable, and so is cooldown,
// which only a make-before-break switch enters; the policy keeps its own
// cooldown), lets the primary go first on every move, and keeps the link
// invariants along every sequence.
func TestBreakBeforeMakeVariant(t *testing.T) {
	c := fsm.BreakBeforeMake(fsm.Declaration())
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	moves := 0
	for _, tr := range c.Transitions {
		if tr.To == fsm.Handshaking || tr.To == fsm.Overlapping {
			if tr.From != fsm.Handshaking && tr.From != fsm.Overlapping {
				t.Errorf("%s --%s--> %s: break-before-make must never reach a state with two links", tr.From, tr.Event, tr.To)
			}
		}
		if (tr.From == fsm.Attached || tr.From == fsm.Cooldown) && tr.To == fsm.Joining {
			moves++
			if a := tr.Actions[0]; a != fsm.CloseOld && a != fsm.DropOld {
				t.Errorf("%s --%s--> %s starts with %s, want the primary let go first", tr.From, tr.Event, tr.To, a)
			}
		}
	}
	if moves < 5 { // candidate_better, goodbye and old_suspected from attached; goodbye and old_suspected from cooldown
		t.Errorf("only %d moves go through joining", moves)
	}
	m, err := newModel(c)
	if err != nil {
		t.Fatal(err)
	}
	x := explore(m, exhaustiveDepth)
	if x.err != nil {
		t.Fatal(x.err)
	}
	for i, ok := range x.reached {
		s := c.States[i]
		if unreachable := s == fsm.Handshaking || s == fsm.Overlapping || s == fsm.Cooldown; ok == unreachable {
			t.Errorf("state %s reached=%t", s, ok)
		}
	}
	mach, err := fsm.NewFor(c, fsm.Attached)
	if err != nil {
		t.Fatal(err)
	}
	st, err := mach.Fire(fsm.CandidateBetter, nil)
	if err != nil || st.To != fsm.Joining || !slices.Equal(st.Actions, []fsm.Action{fsm.CloseOld, fsm.DialCandidate, fsm.SendHello}) {
		t.Fatalf("candidate_better on the baseline: %+v, %v", st, err)
	}
	// The declaration itself is untouched.
	if d, _ := fsm.Declaration().Cell(fsm.Attached, fsm.CandidateBetter); d.Transition.To != fsm.Handshaking {
		t.Fatal("BreakBeforeMake changed the declaration")
	}
}

func TestNewForRejectsInvalidCharts(t *testing.T) {
	c := fsm.Declaration()
	c.Ignores = c.Ignores[1:]
	if _, err := fsm.NewFor(c, fsm.Detached); err == nil {
		t.Fatal("NewFor accepted a chart with an undecided pair")
	}
	if _, err := fsm.NewFor(fsm.Declaration(), "nowhere"); err == nil {
		t.Fatal("NewFor accepted an undeclared state")
	}
}
