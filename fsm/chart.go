// Package fsm declares the attachment-migration state chart of a transient
// node and runs it on github.com/looplab/fsm.
//
// The chart is data: [Declaration] returns every state, every event, every
// transition with the actions it asks for, and every (state, event) pair that
// is deliberately ignored, with the reason. The diagrams (tools/gendot), the
// transition table in testdata/, the transport driver and the tests all read
// this one declaration.
//
// The package is pure: no I/O, no clock, no goroutines. A [Machine] does not
// carry anything out; [Machine.Fire] returns the actions the caller (the
// transport driver's event loop) must perform.
package fsm

import "fmt"

// State is a state of the migration machine.
type State string

// The states. "old" is the current primary link, "new" the candidate link.
const (
	Detached    State = "detached"    // no link; the driver rejoins with backoff
	Joining     State = "joining"     // a candidate handshakes, no primary
	Attached    State = "attached"    // one primary, no candidate
	Handshaking State = "handshaking" // primary plus a candidate awaiting welcome
	Overlapping State = "overlapping" // both links deliver gossip until the new one caught up
	Cooldown    State = "cooldown"    // just migrated: one full evaluation cycle before the next
	Closed      State = "closed"      // terminal
)

// Event is an input to the machine.
type Event string

// The events. The transport driver derives them from link events, timers and
// policy decisions.
const (
	Attach           Event = "attach"            // embedder or rejoin loop: attach to a substrate
	CandidateBetter  Event = "candidate_better"  // policy: a candidate qualified for two cycles
	Goodbye          Event = "goodbye"           // the primary announced it is leaving
	HandshakeOK      Event = "handshake_ok"      // the candidate sent a valid welcome
	HandshakeTimeout Event = "handshake_timeout" // no welcome before the handshake deadline
	NewFailed        Event = "new_failed"        // the candidate link failed or refused (goodbye, error)
	OldDied          Event = "old_died"          // the primary link closed or missed its heartbeats
	OverlapDone      Event = "overlap_done"      // the new link caught up with the old one
	OverlapExpired   Event = "overlap_expired"   // the maximum overlap passed without catching up
	CooldownElapsed  Event = "cooldown_elapsed"  // policy: the cooldown cycle is over
	Close            Event = "close"             // embedder: shut down
)

// Action is something the caller must do after a transition. Actions are
// carried out in the order they are listed.
type Action string

// The actions.
const (
	DialCandidate    Action = "dial_candidate"    // open a link to the chosen candidate
	DialAlternative  Action = "dial_alternative"  // open a link to the first usable alternative from a goodbye
	SendHello        Action = "send_hello"        // send hello on the candidate link
	StartOverlap     Action = "start_overlap"     // deliver from both links, track catch-up
	PromoteCandidate Action = "promote_candidate" // the candidate becomes the primary
	DropCandidate    Action = "drop_candidate"    // close and forget the candidate link
	DropOld          Action = "drop_old"          // forget the (dead or leaving) primary
	CloseOld         Action = "close_old"         // close the primary link cleanly
	CloseAll         Action = "close_all"         // close every link
)

// Path classifies a transition for readers: diagrams colour by it, stats
// count by it, and the invariants are stated in terms of it.
type Path string

// The paths.
const (
	PathJoin       Path = "join"              // becoming attached from nothing
	PathMigrate    Path = "migrate"           // the make-before-break happy path
	PathForced     Path = "forced"            // the primary said goodbye: migrate now, no hysteresis
	PathCancel     Path = "cancel_keep_old"   // the candidate failed: keep the old link
	PathAccelerate Path = "accelerate_to_new" // the old link died mid-overlap: the new one becomes primary
	PathContinue   Path = "continue_alone"    // the old link died before welcome: the candidate goes on alone
	PathDetach     Path = "detach"            // no usable link is left
	PathSettle     Path = "settle"            // cooldown over
	PathClose      Path = "close"             // shutdown
)

// Transition is one declared edge of the chart.
type Transition struct {
	From    State
	Event   Event
	To      State
	Actions []Action
	Path    Path
	Meaning string // one line for diagrams and tables
}

// Ignore declares that an event is deliberately ignored in a state.
type Ignore struct {
	State  State
	Event  Event
	Reason string
}

// Chart is the whole declaration.
type Chart struct {
	Initial     State
	States      []State
	Events      []Event
	Transitions []Transition
	Ignores     []Ignore
}

// Cell is the decision for one (state, event) pair: exactly one of
// Transition and Ignore is set.
type Cell struct {
	Transition *Transition
	Ignore     *Ignore
}

// Declaration returns the migration state chart. Each call returns a fresh
// copy; callers may not change the machine by changing it.
func Declaration() Chart {
	c := Chart{
		Initial: Detached,
		States:  []State{Detached, Joining, Attached, Handshaking, Overlapping, Cooldown, Closed},
		Events: []Event{Attach, CandidateBetter, Goodbye, HandshakeOK, HandshakeTimeout,
			NewFailed, OldDied, OverlapDone, OverlapExpired, CooldownElapsed, Close},
	}
	on := func(from State, events []Event, to State, path Path, meaning string, actions ...Action) {
		for _, e := range events {
			c.Transitions = append(c.Transitions, Transition{From: from, Event: e, To: to,
				Actions: actions, Path: path, Meaning: meaning})
		}
	}
	ignore := func(s State, events []Event, reason string) {
		for _, e := range events {
			c.Ignores = append(c.Ignores, Ignore{State: s, Event: e, Reason: reason})
		}
	}
	ev := func(e ...Event) []Event { return e }
	noCandidate := ev(HandshakeOK, HandshakeTimeout, NewFailed, OverlapExpired)
	const stale = "stale: there is no candidate link, so the event is from a link already dropped"
	const notOverlapping = "no overlap is in progress"
	const keepLeaving = "already migrating: the leaving old link is kept until it closes (old_died), " +
		"so nothing it forwards meanwhile is lost"

	// detached: nothing to lose, only (re)joining or closing.
	on(Detached, ev(Attach), Joining, PathJoin, "first attachment, or rejoin", DialCandidate, SendHello)
	ignore(Detached, ev(CandidateBetter), "no attachment to improve on: the driver rejoins with attach")
	ignore(Detached, ev(Goodbye, OldDied), "no primary link")
	ignore(Detached, noCandidate, stale)
	ignore(Detached, ev(OverlapDone), notOverlapping)
	ignore(Detached, ev(CooldownElapsed), "not in cooldown")

	// joining: a lone candidate handshakes.
	ignore(Joining, ev(Attach), "already joining a substrate")
	ignore(Joining, ev(CandidateBetter), "no primary yet: finish joining first")
	ignore(Joining, ev(Goodbye), "no primary: a candidate's goodbye is a rejection and arrives as new_failed")
	on(Joining, ev(HandshakeOK), Attached, PathJoin, "welcomed: the candidate becomes the primary", PromoteCandidate)
	on(Joining, ev(HandshakeTimeout, NewFailed), Detached, PathDetach, "joining failed: rejoin with backoff", DropCandidate)
	ignore(Joining, ev(OverlapExpired), "no overlap without a primary")
	ignore(Joining, ev(OldDied), "no primary link")
	ignore(Joining, ev(OverlapDone), notOverlapping)
	ignore(Joining, ev(CooldownElapsed), "not in cooldown")

	// attached: the steady state.
	ignore(Attached, ev(Attach), "already attached")
	on(Attached, ev(CandidateBetter), Handshaking, PathMigrate, "policy: candidate better for two cycles", DialCandidate, SendHello)
	on(Attached, ev(Goodbye), Handshaking, PathForced, "old is leaving: migrate now, no hysteresis", DialAlternative, SendHello)
	ignore(Attached, noCandidate, stale)
	on(Attached, ev(OldDied), Detached, PathDetach, "primary lost with no candidate", DropOld)
	ignore(Attached, ev(OverlapDone), notOverlapping)
	ignore(Attached, ev(CooldownElapsed), "cooldown already over")

	// handshaking: old still primary, new awaits welcome.
	ignore(Handshaking, ev(Attach), "already attached")
	ignore(Handshaking, ev(CandidateBetter), "a migration is already in progress")
	ignore(Handshaking, ev(Goodbye), keepLeaving)
	on(Handshaking, ev(HandshakeOK), Overlapping, PathMigrate, "welcomed: gossip arrives on both links", StartOverlap)
	on(Handshaking, ev(HandshakeTimeout, NewFailed), Attached, PathCancel, "candidate failed: cancel, keep old", DropCandidate)
	ignore(Handshaking, ev(OverlapExpired), notOverlapping)
	on(Handshaking, ev(OldDied), Joining, PathContinue, "old gone before welcome: the candidate goes on alone", DropOld)
	ignore(Handshaking, ev(OverlapDone), notOverlapping)
	ignore(Handshaking, ev(CooldownElapsed), "not in cooldown")

	// overlapping: both links deliver; dedup drops the copies.
	ignore(Overlapping, ev(Attach), "already attached")
	ignore(Overlapping, ev(CandidateBetter), "a migration is already in progress")
	ignore(Overlapping, ev(Goodbye), keepLeaving)
	on(Overlapping, ev(OldDied), Cooldown, PathAccelerate, "old gone mid-overlap: the new link becomes primary", DropOld, PromoteCandidate)
	ignore(Overlapping, ev(HandshakeOK), "duplicate welcome: the handshake is already done")
	ignore(Overlapping, ev(HandshakeTimeout), "the handshake already completed")
	on(Overlapping, ev(NewFailed, OverlapExpired), Attached, PathCancel, "new link failed or never caught up: cancel, keep old", DropCandidate)
	on(Overlapping, ev(OverlapDone), Cooldown, PathMigrate, "new link caught up: the switch", CloseOld, PromoteCandidate)
	ignore(Overlapping, ev(CooldownElapsed), "not in cooldown")

	// cooldown: just migrated.
	ignore(Cooldown, ev(Attach), "already attached")
	ignore(Cooldown, ev(CandidateBetter), "cooldown: no migration until one full evaluation cycle has passed")
	on(Cooldown, ev(Goodbye), Handshaking, PathForced, "old is leaving: cooldown does not apply", DialAlternative, SendHello)
	ignore(Cooldown, noCandidate, stale)
	on(Cooldown, ev(OldDied), Detached, PathDetach, "primary lost with no candidate", DropOld)
	ignore(Cooldown, ev(OverlapDone), "stale: the overlap already ended")
	on(Cooldown, ev(CooldownElapsed), Attached, PathSettle, "one full evaluation cycle passed")

	// close from anywhere; closed is terminal.
	for _, s := range c.States {
		if s != Closed {
			on(s, ev(Close), Closed, PathClose, "shut down", CloseAll)
		}
	}
	ignore(Closed, c.Events, "closed is terminal")
	return c
}

// Cell returns the decision for (s, e), or false when the pair is not declared.
func (c Chart) Cell(s State, e Event) (Cell, bool) {
	for i := range c.Transitions {
		if t := &c.Transitions[i]; t.From == s && t.Event == e {
			return Cell{Transition: t}, true
		}
	}
	for i := range c.Ignores {
		if ig := &c.Ignores[i]; ig.State == s && ig.Event == e {
			return Cell{Ignore: ig}, true
		}
	}
	return Cell{}, false
}

// Validate checks that the chart is total and unambiguous: every
// (state, event) pair is decided exactly once, and every name used is declared.
func (c Chart) Validate() error {
	states := map[State]bool{}
	for _, s := range c.States {
		states[s] = true
	}
	events := map[Event]bool{}
	for _, e := range c.Events {
		events[e] = true
	}
	if !states[c.Initial] {
		return fmt.Errorf("fsm: initial state %q is not declared", c.Initial)
	}
	type key struct {
		s State
		e Event
	}
	seen := map[key]string{}
	mark := func(s State, e Event, what string) error {
		if !states[s] {
			return fmt.Errorf("fsm: %s uses undeclared state %q", what, s)
		}
		if !events[e] {
			return fmt.Errorf("fsm: %s uses undeclared event %q", what, e)
		}
		if prev, dup := seen[key{s, e}]; dup {
			return fmt.Errorf("fsm: (%s, %s) decided twice: %s and %s", s, e, prev, what)
		}
		seen[key{s, e}] = what
		return nil
	}
	for _, t := range c.Transitions {
		if !states[t.To] {
			return fmt.Errorf("fsm: transition %s --%s--> %s targets an undeclared state", t.From, t.Event, t.To)
		}
		if err := mark(t.From, t.Event, "transition to "+string(t.To)); err != nil {
			return err
		}
	}
	for _, ig := range c.Ignores {
		if err := mark(ig.State, ig.Event, "ignore"); err != nil {
			return err
		}
	}
	for _, s := range c.States {
		for _, e := range c.Events {
			if _, ok := seen[key{s, e}]; !ok {
				return fmt.Errorf("fsm: (%s, %s) is undecided: declare a transition or an ignore", s, e)
			}
		}
	}
	return nil
}
