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
	steps   [][]fsm.Step // steps[state][event]: what firing the event does
	next    [][]int      // next[state][event]: the state index afterwards
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
		steps := make([]fsm.Step, len(c.Events))
		next := make([]int, len(c.Events))
		for j, e := range c.Events {
			cell, ok := c.Cell(s, e)
			if !ok {
				return nil, fmt.Errorf("(%s, %s) is undecided", s, e)
			}
			steps[j] = stepOf(s, e, cell)
			if next[j], ok = m.index[steps[j].To]; !ok {
				return nil, fmt.Errorf("(%s, %s) leads to undeclared state %q", s, e, steps[j].To)
			}
		}
		m.steps = append(m.steps, steps)
		m.next = append(m.next, next)
	}
	return m, nil
}

// stepOf is the Step the declaration says firing e in s produces.
func stepOf(s fsm.State, e fsm.Event, c fsm.Cell) fsm.Step {
	if c.Ignore != nil {
		return fsm.Step{From: s, Event: e, To: s, Ignored: true, Reason: c.Ignore.Reason}
	}
	t := c.Transition
	return fsm.Step{From: s, Event: e, To: t.To, Actions: t.Actions, Path: t.Path}
}

// step returns the declared step for (state, event) by name.
func (m *model) step(s fsm.State, e fsm.Event) (fsm.Step, bool) {
	i, ok := m.index[s]
	if !ok {
		return fsm.Step{}, false
	}
	j := slices.Index(m.chart.Events, e)
	if j < 0 {
		return fsm.Step{}, false
	}
	return m.steps[i][j], true
}

// advance applies st to the link model and checks the chart's invariants for
// the step. An ignored step must not move and must ask for nothing.
func advance(prev fsm.Links, st fsm.Step) (fsm.Links, error) {
	next := prev
	if st.Ignored {
		if st.To != st.From || len(st.Actions) != 0 || st.Path != "" {
			return prev, fmt.Errorf("ignored %s in %s moved to %s or asked for %v (path %q)",
				st.Event, st.From, st.To, st.Actions, st.Path)
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
