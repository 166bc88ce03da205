package fsm

import (
	"context"
	"errors"
	"fmt"
	"slices"

	lfsm "github.com/looplab/fsm"
)

// Step is what firing one event did: the transition taken, with the guard
// that selected it and the actions the caller must carry out, or Ignored with
// the declared reason.
type Step struct {
	From    State
	Event   Event
	Guard   Guard // the guard that held; empty for an unguarded transition or an ignore
	To      State
	Actions []Action
	Path    Path
	Ignored bool
	Reason  string // why the event was ignored; empty for a transition
}

// GuardFunc tells [Machine.Fire] whether a guard holds now.
type GuardFunc func(Guard) bool

// UnknownEventError is returned by [Machine.Fire] for an event the chart does
// not declare. It is a caller bug: map link and timer reports onto the
// declared events.
type UnknownEventError struct {
	Event Event
}

func (e *UnknownEventError) Error() string {
	return fmt.Sprintf("fsm: unknown event %q: the chart declares no such event", e.Event)
}

// Machine runs the declared chart on looplab/fsm: every declared transition
// is a looplab event (a guarded one under its own name, "event[guard]"),
// its guard a looplab before-event callback that cancels the event when the
// guard does not hold, and looplab's transition table decides the target
// state. Ignores are the one thing looplab does not hold: a pair whose
// transitions are all cancelled (or that has none) falls back on its
// declared ignore.
//
// It is not safe for concurrent use: one goroutine (the engine's owner) owns it.
type Machine struct {
	lf     *lfsm.FSM
	cells  map[cellKey]Cell // shared, read only: the order of the guarded branches and the ignores
	guard  GuardFunc        // set for the duration of one Fire
	events map[Event]bool   // shared, read only
}

type cellKey struct {
	s State
	e Event
}

// declared is validated and compiled once; NewIn cannot fail on it, because
// the package tests check the package's own declaration. Its machines share
// the compiled tables, which nothing writes after compile.
var declared = func() *compiled {
	c := Declaration()
	cc, err := compile(c)
	if err != nil {
		panic(err)
	}
	return cc
}()

// compiled is a validated chart's immutable tables, shared by every machine
// that runs it.
type compiled struct {
	chart  Chart
	cells  map[cellKey]Cell // for the order of the guarded branches and the ignores
	events map[Event]bool
	descs  lfsm.Events      // one looplab event per declared transition
	guards map[string]Guard // looplab event name → its guard, for the guarded ones
}

// compile validates c and builds its tables.
func compile(c Chart) (*compiled, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cc := &compiled{chart: c, cells: make(map[cellKey]Cell, len(c.States)*len(c.Events)), events: map[Event]bool{},
		guards: map[string]Guard{}}
	for _, e := range c.Events {
		cc.events[e] = true
	}
	for _, st := range c.States {
		for _, e := range c.Events {
			cell, _ := c.Cell(st, e)
			cc.cells[cellKey{st, e}] = cell
		}
	}
	for i := range c.Transitions {
		t := &c.Transitions[i]
		name := lfName(t)
		cc.descs = append(cc.descs, lfsm.EventDesc{Name: name, Src: []string{string(t.From)}, Dst: string(t.To)})
		if t.Guard != "" {
			cc.guards[name] = t.Guard
		}
	}
	return cc, nil
}

// lfName is the looplab event name of a declared transition.
func lfName(t *Edge) string {
	if t.Guard == "" {
		return string(t.Event)
	}
	return string(t.Event) + "[" + string(t.Guard) + "]"
}

// New returns a machine in the chart's initial state (detached).
func New() *Machine {
	m, _ := NewIn(declared.chart.Initial)
	return m
}

// NewIn returns a machine started in state s, for tests and tools that
// exercise one transition at a time.
func NewIn(s State) (*Machine, error) { return declared.machine(s) }

// NewFor returns a machine running chart c (a variant of the declaration,
// such as [BreakBeforeMake]'s) started in state s. It fails when c is not
// valid or does not declare s.
func NewFor(c Chart, s State) (*Machine, error) {
	cc, err := compile(c)
	if err != nil {
		return nil, err
	}
	return cc.machine(s)
}

// machine returns a machine of the compiled chart in state s, with its own
// looplab FSM whose guard callbacks ask the machine's GuardFunc.
func (cc *compiled) machine(s State) (*Machine, error) {
	if !slices.Contains(cc.chart.States, s) {
		return nil, fmt.Errorf("fsm: unknown state %q", s)
	}
	m := &Machine{cells: cc.cells, events: cc.events}
	callbacks := make(lfsm.Callbacks, len(cc.guards))
	for name, g := range cc.guards {
		callbacks["before_"+name] = func(_ context.Context, e *lfsm.Event) {
			if m.guard == nil || !m.guard(g) {
				e.Cancel()
			}
		}
	}
	m.lf = lfsm.NewFSM(string(s), cc.descs, callbacks)
	return m, nil
}

// State returns the current state.
func (m *Machine) State() State { return State(m.lf.Current()) }

// Fire feeds one event. The transitions declared for (state, event) are
// tried in their declared order through looplab, each guard asked of holds
// (nil: no guard holds); the first whose guard holds is taken, else the
// pair's fallback. It returns the transition taken, with the actions to
// carry out in order, or a Step with Ignored set and the declared reason.
// The only error for a declared chart is *UnknownEventError.
func (m *Machine) Fire(e Event, holds GuardFunc) (Step, error) {
	if !m.events[e] {
		return Step{}, &UnknownEventError{Event: e}
	}
	from := m.State()
	cell := m.cells[cellKey{from, e}]
	m.guard = holds
	defer func() { m.guard = nil }()
	for _, t := range cell.Guarded {
		st, taken, err := m.try(from, t)
		if taken || err != nil {
			return st, err
		}
	}
	if cell.Ignore != nil {
		return Step{From: from, Event: e, To: from, Ignored: true, Reason: cell.Ignore.Reason}, nil
	}
	st, _, err := m.try(from, cell.Transition)
	return st, err
}

// try fires one declared transition through looplab; taken is false when
// its guard cancelled it.
func (m *Machine) try(from State, t *Edge) (st Step, taken bool, err error) {
	err = m.lf.Event(context.Background(), lfName(t))
	var cancelled lfsm.CanceledError
	var self lfsm.NoTransitionError
	switch {
	case errors.As(err, &cancelled):
		return Step{}, false, nil
	case err == nil, errors.As(err, &self) && t.To == from:
		// looplab reports a self-transition as NoTransitionError.
	default:
		return Step{}, false, fmt.Errorf("fsm: looplab rejected declared transition %s --%s--> %s: %w", from, lfName(t), t.To, err)
	}
	to := m.State()
	if to != t.To {
		return Step{}, false, fmt.Errorf("fsm: looplab moved %s --%s--> %s, the declaration says %s", from, lfName(t), to, t.To)
	}
	return Step{From: from, Event: t.Event, Guard: t.Guard, To: to, Actions: slices.Clone(t.Actions), Path: t.Path}, true, nil
}
