package fsm

import (
	"context"
	"errors"
	"fmt"
	"slices"

	lfsm "github.com/looplab/fsm"
)

// Step is what firing one event did: the transition taken and the actions the
// caller must carry out, or Ignored with the declared reason.
type Step struct {
	From    State
	Event   Event
	To      State
	Actions []Action
	Path    Path
	Ignored bool
	Reason  string // why the event was ignored; empty for a transition
}

// UnknownEventError is returned by [Machine.Fire] for an event the chart does
// not declare. It is a caller bug: map link and timer events onto the
// declared events.
type UnknownEventError struct {
	Event Event
}

func (e *UnknownEventError) Error() string {
	return fmt.Sprintf("fsm: unknown event %q: the chart declares no such event", e.Event)
}

// Machine runs the declared chart on looplab/fsm. It is not safe for
// concurrent use: one goroutine (the transport driver's event loop) owns it.
type Machine struct {
	chart Chart
	cells map[cellKey]Cell
	lf    *lfsm.FSM
	seen  *lfsm.Event // recorded by looplab's callback, read by Fire
}

type cellKey struct {
	s State
	e Event
}

// chart is validated once; New panics only if the package's own declaration
// is broken, which the package tests rule out.
var declared = func() Chart {
	c := Declaration()
	if err := c.Validate(); err != nil {
		panic(err)
	}
	return c
}()

// New returns a machine in the chart's initial state (detached).
func New() *Machine {
	m, _ := NewIn(declared.Initial)
	return m
}

// NewIn returns a machine started in state s, for tests and tools that
// exercise one transition at a time.
func NewIn(s State) (*Machine, error) {
	if !slices.Contains(declared.States, s) {
		return nil, fmt.Errorf("fsm: unknown state %q", s)
	}
	m := &Machine{chart: declared, cells: make(map[cellKey]Cell, len(declared.States)*len(declared.Events))}
	var descs lfsm.Events
	for _, s := range declared.States {
		for _, e := range declared.Events {
			c, _ := declared.Cell(s, e)
			m.cells[cellKey{s, e}] = c
		}
	}
	for _, t := range declared.Transitions {
		descs = append(descs, lfsm.EventDesc{Name: string(t.Event), Src: []string{string(t.From)}, Dst: string(t.To)})
	}
	// The callback only records; it never fires another event.
	m.lf = lfsm.NewFSM(string(s), descs, lfsm.Callbacks{
		"after_event": func(_ context.Context, e *lfsm.Event) { m.seen = e },
	})
	return m, nil
}

// State returns the current state.
func (m *Machine) State() State { return State(m.lf.Current()) }

// Fire feeds one event. It returns the transition taken, with the actions to
// carry out in order, or a Step with Ignored set when the chart declares the
// event ignored in the current state. The only error is *UnknownEventError.
func (m *Machine) Fire(e Event) (Step, error) {
	from := m.State()
	cell, ok := m.cells[cellKey{from, e}]
	if !ok {
		return Step{}, &UnknownEventError{Event: e}
	}
	if cell.Ignore != nil {
		return Step{From: from, Event: e, To: from, Ignored: true, Reason: cell.Ignore.Reason}, nil
	}
	t := cell.Transition
	m.seen = nil
	if err := m.lf.Event(context.Background(), string(e)); err != nil {
		// Unreachable while the looplab table is built from the same
		// declaration as cells; reported rather than hidden.
		return Step{}, fmt.Errorf("fsm: looplab rejected declared transition %s --%s--> %s: %w", from, e, t.To, err)
	}
	if m.seen == nil || State(m.seen.Dst) != t.To {
		return Step{}, errors.New("fsm: looplab took a transition the declaration does not hold")
	}
	return Step{From: from, Event: e, To: t.To, Actions: slices.Clone(t.Actions), Path: t.Path}, nil
}
