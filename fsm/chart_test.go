package fsm_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/repram/handover/fsm"
)

func TestDeclarationIsTotal(t *testing.T) {
	c := fsm.Declaration()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	guarded := 0
	for _, tr := range c.Transitions {
		if tr.Guard != "" {
			guarded++
		}
	}
	if got, want := len(c.Transitions)+len(c.Ignores)-guarded, len(c.States)*len(c.Events); got != want {
		t.Errorf("%d unguarded transitions + ignores, want one fallback per (state, event) pair: %d", got, want)
	}
	inCells := 0
	for _, s := range c.States {
		for _, e := range c.Events {
			cell, ok := c.Cell(s, e)
			switch {
			case !ok:
				t.Errorf("(%s, %s): no decision", s, e)
				continue
			case (cell.Transition == nil) == (cell.Ignore == nil):
				t.Errorf("(%s, %s): cell must hold exactly one fallback, a transition or an ignore: %+v", s, e, cell)
			}
			seen := map[fsm.Guard]bool{}
			for _, tr := range cell.Guarded {
				if tr.Guard == "" || seen[tr.Guard] || tr.From != s || tr.Event != e {
					t.Errorf("(%s, %s): guarded branch %+v is unguarded, repeats a guard or belongs to another pair", s, e, tr)
				}
				seen[tr.Guard] = true
			}
			inCells += len(cell.Guarded)
		}
	}
	if inCells != guarded {
		t.Errorf("the cells hold %d guarded transitions, the chart declares %d", inCells, guarded)
	}
}

// TestCellKeepsDeclaredOrder checks that Cell lists the guarded transitions of
// a pair in the order they are declared, the order Fire tries them.
func TestCellKeepsDeclaredOrder(t *testing.T) {
	c := fsm.Declaration()
	cell, _ := c.Cell(fsm.Handshaking, fsm.NewFailed)
	var got []fsm.Guard
	for _, tr := range cell.Guarded {
		got = append(got, tr.Guard)
	}
	if want := []fsm.Guard{fsm.HasAlternative, fsm.OthersRacing}; !slices.Equal(got, want) {
		t.Fatalf("Cell(handshaking, new_failed).Guarded = %v, want %v", got, want)
	}
	if cell.Transition == nil || cell.Transition.To != fsm.Attached || cell.Ignore != nil {
		t.Fatalf("Cell(handshaking, new_failed) fallback = %+v / %+v, want the cancel to attached", cell.Transition, cell.Ignore)
	}
	cell, _ = c.Cell(fsm.Cooldown, fsm.Goodbye)
	if len(cell.Guarded) != 1 || cell.Guarded[0].Guard != fsm.HasAlternative || cell.Ignore == nil || cell.Transition != nil {
		t.Fatalf("Cell(cooldown, goodbye) = %+v, want one has_alternative branch and an ignore", cell)
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
	used := map[fsm.Guard]bool{}
	for _, tr := range c.Transitions {
		used[tr.Guard] = true
	}
	for _, g := range c.Guards {
		if m, ok := c.GuardMeaning(g.Guard); !ok || m == "" || m != g.Meaning {
			t.Errorf("guard %s: GuardMeaning = %q, %t; want its declared meaning", g.Guard, m, ok)
		}
		if !used[g.Guard] {
			t.Errorf("guard %s is declared but guards no transition", g.Guard)
		}
	}
	if _, ok := c.GuardMeaning("sunny"); ok {
		t.Error("GuardMeaning found an undeclared guard")
	}
}

func TestDeclarationIsAFreshCopy(t *testing.T) {
	c := fsm.Declaration()
	c.Transitions[0].To = fsm.Closed
	c.Transitions[0].Actions[0] = fsm.CloseAll
	c.Ignores[0].Reason = "changed"
	c.Guards[0].Guard = "sunny"
	if d := fsm.Declaration(); d.Transitions[0].To == fsm.Closed || d.Transitions[0].Actions[0] == fsm.CloseAll ||
		d.Ignores[0].Reason == "changed" || d.Guards[0].Guard != fsm.HasAlternative {
		t.Fatal("changing one Declaration changed the next one")
	}
	st, err := fsm.New().Fire(fsm.Attach, nil)
	if err != nil || st.To != fsm.Joining || st.Actions[0] != fsm.DialAlternative {
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
		}, `(limbo, attach) has no fallback`},
		{"extra event without decisions", func(c *fsm.Chart) {
			c.Events = append(c.Events, "ping")
		}, `(detached, ping) has no fallback`},
		{"missing ignore", func(c *fsm.Chart) {
			c.Ignores = c.Ignores[1:]
		}, `(detached, candidate_better) has no fallback`},
		{"guarded transition without a fallback", func(c *fsm.Chart) {
			c.Ignores = slices.DeleteFunc(c.Ignores, func(ig fsm.Ignore) bool {
				return ig.State == fsm.Attached && ig.Event == fsm.Goodbye
			})
		}, `(attached, goodbye) has no fallback`},
		{"two transitions with one guard", func(c *fsm.Chart) {
			i := slices.IndexFunc(c.Transitions, func(tr fsm.Edge) bool { return tr.Guard == fsm.OthersRacing })
			c.Transitions = append(c.Transitions, c.Transitions[i])
		}, `[others_racing] decided twice`},
		{"undeclared guard", func(c *fsm.Chart) {
			i := slices.IndexFunc(c.Transitions, func(tr fsm.Edge) bool { return tr.Guard != "" })
			c.Transitions[i].Guard = "sunny"
		}, `undeclared guard "sunny"`},
		{"guard declared twice", func(c *fsm.Chart) {
			c.Guards = append(c.Guards, c.Guards[0])
		}, `guard "has_alternative" is empty or declared twice`},
		{"empty guard declared", func(c *fsm.Chart) {
			c.Guards = append(c.Guards, fsm.GuardInfo{Meaning: "nothing"})
		}, `guard "" is empty or declared twice`},
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
