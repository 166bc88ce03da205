package fsm_test

import (
	"strings"
	"testing"

	"github.com/repram/handover/fsm"
)

func TestDeclarationIsTotal(t *testing.T) {
	c := fsm.Declaration()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := len(c.Transitions)+len(c.Ignores), len(c.States)*len(c.Events); got != want {
		t.Errorf("%d transitions + ignores, want one per (state, event) pair: %d", got, want)
	}
	for _, s := range c.States {
		for _, e := range c.Events {
			cell, ok := c.Cell(s, e)
			switch {
			case !ok:
				t.Errorf("(%s, %s): no decision", s, e)
			case (cell.Transition == nil) == (cell.Ignore == nil):
				t.Errorf("(%s, %s): cell must hold exactly one of a transition and an ignore: %+v", s, e, cell)
			}
		}
	}
}

func TestDeclarationIsDocumented(t *testing.T) {
	c := fsm.Declaration()
	for _, tr := range c.Transitions {
		if tr.Path == "" || tr.Meaning == "" {
			t.Errorf("%s --%s--> %s: path %q and meaning %q must both be set", tr.From, tr.Event, tr.To, tr.Path, tr.Meaning)
		}
	}
	for _, ig := range c.Ignores {
		if ig.Reason == "" {
			t.Errorf("ignore (%s, %s) has no reason", ig.State, ig.Event)
		}
	}
}

func TestDeclarationIsAFreshCopy(t *testing.T) {
	c := fsm.Declaration()
	c.Transitions[0].To = fsm.Closed
	c.Transitions[0].Actions[0] = fsm.CloseAll
	c.Ignores[0].Reason = "changed"
	if d := fsm.Declaration(); d.Transitions[0].To == fsm.Closed || d.Transitions[0].Actions[0] == fsm.CloseAll ||
		d.Ignores[0].Reason == "changed" {
		t.Fatal("changing one Declaration changed the next one")
	}
	st, err := fsm.New().Fire(fsm.Attach)
	if err != nil || st.To != fsm.Joining || st.Actions[0] != fsm.DialCandidate {
		t.Fatalf("changing a Declaration changed the machine: %+v, %v", st, err)
	}
}

func TestCellUndeclared(t *testing.T) {
	c := fsm.Declaration()
	if _, ok := c.Cell("nowhere", fsm.Attach); ok {
		t.Error("Cell found a decision for an undeclared state")
	}
	if _, ok := c.Cell(fsm.Attached, "nothing"); ok {
		t.Error("Cell found a decision for an undeclared event")
	}
}

// TestValidateRejects shows Validate, and so TestDeclarationIsTotal, can fail.
func TestValidateRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*fsm.Chart)
		want   string
	}{
		{"extra state without decisions", func(c *fsm.Chart) {
			c.States = append(c.States, "limbo")
		}, `(limbo, attach) is undecided`},
		{"extra event without decisions", func(c *fsm.Chart) {
			c.Events = append(c.Events, "ping")
		}, `(detached, ping) is undecided`},
		{"missing ignore", func(c *fsm.Chart) {
			c.Ignores = c.Ignores[1:]
		}, `(detached, candidate_better) is undecided`},
		{"transition and ignore for one pair", func(c *fsm.Chart) {
			c.Ignores = append(c.Ignores, fsm.Ignore{State: fsm.Detached, Event: fsm.Attach, Reason: "twice"})
		}, `(detached, attach) decided twice`},
		{"two ignores for one pair", func(c *fsm.Chart) {
			c.Ignores = append(c.Ignores, c.Ignores[0])
		}, `decided twice: ignore and ignore`},
		{"two transitions for one pair", func(c *fsm.Chart) {
			c.Transitions = append(c.Transitions, c.Transitions[0])
		}, `decided twice`},
		{"undeclared target", func(c *fsm.Chart) {
			c.Transitions[0].To = "nowhere"
		}, `targets an undeclared state`},
		{"undeclared source", func(c *fsm.Chart) {
			c.Transitions[0].From = "nowhere"
		}, `undeclared state "nowhere"`},
		{"undeclared event", func(c *fsm.Chart) {
			c.Ignores[0].Event = "ping"
		}, `undeclared event "ping"`},
		{"undeclared initial state", func(c *fsm.Chart) {
			c.Initial = "nowhere"
		}, `initial state "nowhere" is not declared`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fsm.Declaration()
			tc.change(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate accepted the broken chart")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}
