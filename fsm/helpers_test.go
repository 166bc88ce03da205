package fsm_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/repram/handover/fsm"
)

// model is the declaration indexed for cheap stepping: the exhaustive search
// and the fuzzer take millions of steps and must not build a looplab machine
// for each. It is built from a Chart so that tests can also run it on broken
// charts and see the invariants fail.
type model struct {
	chart   fsm.Chart
	initial int
	index   map[fsm.State]int
	// cells[state][event] are the pair's branches in the order they are
	// tried: the guarded transitions, then the fallback (guard "").
	cells [][][]branch
	// asksAlt[state][event] says whether a branch of the pair is guarded by
	// has_alternative, the one guard the model cannot evaluate itself.
	asksAlt [][]bool
	// branches counts the branches; each has an id below it.
	branches int
}

// branch is one way a (state, event) pair can go.
type branch struct {
	id    int       // 0 to model.branches-1
	guard fsm.Guard // "" for the fallback
	step  fsm.Step  // what firing the event does on this branch
	next  int       // the state index afterwards
}

func newModel(c fsm.Chart) (*model, error) {
	m := &model{chart: c, index: make(map[fsm.State]int, len(c.States))}
	for i, s := range c.States {
		m.index[s] = i
	}
	initial, ok := m.index[c.Initial]
	if !ok {
		return nil, fmt.Errorf("initial state %q is not declared", c.Initial)
	}
	m.initial = initial
	for _, s := range c.States {
		cells := make([][]branch, len(c.Events))
		asks := make([]bool, len(c.Events))
		for j, e := range c.Events {
			cell, ok := c.Cell(s, e)
			if !ok || (cell.Transition == nil) == (cell.Ignore == nil) {
				return nil, fmt.Errorf("(%s, %s) has no single fallback", s, e)
			}
			for _, st := range branchSteps(s, e, cell) {
				next, ok := m.index[st.To]
				if !ok {
					return nil, fmt.Errorf("(%s, %s) leads to undeclared state %q", s, e, st.To)
				}
				cells[j] = append(cells[j], branch{id: m.branches, guard: st.Guard, step: st, next: next})
				m.branches++
				asks[j] = asks[j] || st.Guard == fsm.HasAlternative
			}
		}
		m.cells = append(m.cells, cells)
		m.asksAlt = append(m.asksAlt, asks)
	}
	return m, nil
}

// branchSteps lists the Steps the declaration says firing e in s can
// produce, one per branch, in the order the branches are tried: the guarded
// transitions, then the fallback.
func branchSteps(s fsm.State, e fsm.Event, c fsm.Cell) []fsm.Step {
	var out []fsm.Step
	for _, t := range c.Guarded {
		out = append(out, transitionStep(t))
	}
	if c.Ignore != nil {
		return append(out, fsm.Step{From: s, Event: e, To: s, Ignored: true, Reason: c.Ignore.Reason})
	}
	return append(out, transitionStep(c.Transition))
}

func transitionStep(t *fsm.Edge) fsm.Step {
	return fsm.Step{From: t.From, Event: t.Event, Guard: t.Guard, To: t.To, Actions: t.Actions, Path: t.Path}
}

// decide returns the branch firing event e in state s takes when holds says
// which guards hold: the first guarded branch whose guard holds, else the
// fallback.
func (m *model) decide(s, e int, holds fsm.GuardFunc) *branch {
	bs := m.cells[s][e]
	for i := range len(bs) - 1 {
		if holds != nil && holds(bs[i].guard) {
			return &bs[i]
		}
	}
	return &bs[len(bs)-1]
}

// step returns the declared step for (state, event) by name when holds says
// which guards hold.
func (m *model) step(s fsm.State, e fsm.Event, holds fsm.GuardFunc) (fsm.Step, bool) {
	i, ok := m.index[s]
	if !ok {
		return fsm.Step{}, false
	}
	j := slices.Index(m.chart.Events, e)
	if j < 0 {
		return fsm.Step{}, false
	}
	return m.decide(i, j, holds).step, true
}

// guardsOf returns the GuardFunc of a moment: others_racing from the link
// model, has_alternative as given.
func guardsOf(links fsm.Links, alternativeQueued bool) fsm.GuardFunc {
	return func(g fsm.Guard) bool { return links.Holds(g, alternativeQueued) }
}

// only returns a GuardFunc under which exactly the guards gs hold.
func only(gs ...fsm.Guard) fsm.GuardFunc {
	return func(g fsm.Guard) bool { return slices.Contains(gs, g) }
}

// advance applies st to the link model and checks the chart's invariants for
// the step. An ignored step must not move, must ask for nothing and names no
// guard.
func advance(prev fsm.Links, st fsm.Step) (fsm.Links, error) {
	next := prev
	if st.Ignored {
		if st.To != st.From || len(st.Actions) != 0 || st.Path != "" || st.Guard != "" {
			return prev, fmt.Errorf("ignored %s in %s moved to %s, asked for %v or named a guard (path %q, guard %q)",
				st.Event, st.From, st.To, st.Actions, st.Path, st.Guard)
		}
	} else {
		next.Apply(st.Actions)
	}
	if err := next.CheckStep(prev, st); err != nil {
		return prev, err
	}
	return next, nil
}

// diffStep describes how got differs from want, or returns "" when they agree.
func diffStep(got, want fsm.Step) string {
	var d []string
	if got.From != want.From || got.Event != want.Event {
		d = append(d, fmt.Sprintf("fired (%s, %s), want (%s, %s)", got.From, got.Event, want.From, want.Event))
	}
	if got.Guard != want.Guard {
		d = append(d, fmt.Sprintf("guard %s, want %s", guardName(got.Guard), guardName(want.Guard)))
	}
	if got.Ignored != want.Ignored {
		d = append(d, fmt.Sprintf("ignored=%t, want %t", got.Ignored, want.Ignored))
	}
	if got.To != want.To {
		d = append(d, fmt.Sprintf("to %s, want %s", got.To, want.To))
	}
	if !slices.Equal(got.Actions, want.Actions) {
		d = append(d, fmt.Sprintf("actions %s, want %s", actionList(got.Actions), actionList(want.Actions)))
	}
	if got.Path != want.Path {
		d = append(d, fmt.Sprintf("path %q, want %q", got.Path, want.Path))
	}
	if got.Reason != want.Reason {
		d = append(d, fmt.Sprintf("reason %q, want %q", got.Reason, want.Reason))
	}
	return strings.Join(d, "; ")
}

// guardName renders a guard the way testdata/fsm/transitions.txt spells it:
// "-" for none.
func guardName(g fsm.Guard) string {
	if g == "" {
		return "-"
	}
	return string(g)
}

// actionList renders actions the way testdata/fsm/transitions.txt spells them.
func actionList(as []fsm.Action) string {
	if len(as) == 0 {
		return "none"
	}
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = string(a)
	}
	return strings.Join(s, ",")
}

// declaredModel returns the model of the package's own declaration.
func declaredModel(tb testing.TB) *model {
	tb.Helper()
	m, err := newModel(fsm.Declaration())
	if err != nil {
		tb.Fatalf("declaration: %v", err)
	}
	return m
}
