// Package fsm declares the attachment-migration state chart of a transient
// node and runs it on github.com/looplab/fsm.
//
// The chart is data: [Declaration] returns every state, every event, every
// guard, every transition with the actions it asks for, and every
// (state, event) pair that is deliberately ignored, with the reason. The
// diagrams (tools/gendot), the transition table in testdata/, the migration
// engine (transport/engine) and the tests all read this one declaration.
//
// A (state, event) pair may have several guarded transitions, tried in the
// declared order, and always ends with one unguarded fallback: a transition
// or a declared ignore. Guards are named conditions the caller evaluates
// (the engine knows whether another candidate is still racing, or whether an
// untried alternative is queued); the chart says what each one decides.
//
// The package is pure: no I/O, no clock, no goroutines. A [Machine] does not
// carry anything out; [Machine.Fire] returns the actions the caller must
// perform.
package fsm

import "fmt"

// State is a state of the migration machine.
type State string

// The states. "old" is the current primary link; "candidates" are links
// dialled to become the next primary, raced Happy Eyeballs style when the
// node must move (goodbye, suspicion, death).
const (
	Detached    State = "detached"    // no link; the engine rejoins with backoff
	Joining     State = "joining"     // candidates race for a welcome, no primary
	Attached    State = "attached"    // one primary, no candidate
	Handshaking State = "handshaking" // primary plus candidates awaiting a welcome
	Overlapping State = "overlapping" // primary plus the welcomed candidate until it caught up
	Cooldown    State = "cooldown"    // just migrated: one full evaluation cycle before the next
	Closed      State = "closed"      // terminal
)

// Event is an input to the machine.
type Event string

// The events. The engine derives them from link reports, deadlines and
// policy decisions.
const (
	Attach           Event = "attach"            // embedder or rejoin: attach to a queued substrate
	CandidateBetter  Event = "candidate_better"  // policy: a candidate qualified for two cycles
	Goodbye          Event = "goodbye"           // the primary announced it is leaving
	OldSuspected     Event = "old_suspected"     // the primary went silent and missed a ping
	HandshakeOK      Event = "handshake_ok"      // a candidate sent a valid welcome
	HandshakeTimeout Event = "handshake_timeout" // a candidate sent no welcome before its deadline
	NewFailed        Event = "new_failed"        // a candidate's link failed or refused (goodbye, error)
	AttemptDelay     Event = "attempt_delay"     // no welcome within the attempt delay: race the next
	OldDied          Event = "old_died"          // the primary link closed or missed its heartbeats
	OverlapDone      Event = "overlap_done"      // the new link caught up with the old one
	OverlapExpired   Event = "overlap_expired"   // the maximum overlap passed without catching up
	CooldownElapsed  Event = "cooldown_elapsed"  // policy: the cooldown cycle is over
	Close            Event = "close"             // embedder: shut down
)

// Guard is a named condition on a transition. The caller of [Machine.Fire]
// says whether it holds at the moment the event is fired.
type Guard string

// The guards.
const (
	// HasAlternative: an untried substrate is queued for this migration or
	// rejoin (a goodbye's alternatives, then known substrates best first,
	// never one in backoff while another is left), and the race has room for
	// one more candidate.
	HasAlternative Guard = "has_alternative"
	// OthersRacing: another candidate than the one the event is about is
	// still handshaking.
	OthersRacing Guard = "others_racing"
)

// Action is something the caller must do after a transition. Actions are
// carried out in the order they are listed.
type Action string

// The actions.
const (
	DialCandidate    Action = "dial_candidate"    // open a link to the candidate the policy chose
	DialAlternative  Action = "dial_alternative"  // open a link to the next queued alternative
	SendHello        Action = "send_hello"        // send hello on the link just dialled
	StartOverlap     Action = "start_overlap"     // deliver from both links, track catch-up
	CloseRivals      Action = "close_rivals"      // close every candidate but the welcomed one
	PromoteCandidate Action = "promote_candidate" // the welcomed candidate becomes the primary
	DropCandidate    Action = "drop_candidate"    // close and forget the candidate the event is about
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
	PathSuspect    Path = "suspect"           // the primary went silent: migrate now, keep it meanwhile
	PathRace       Path = "race"              // Happy Eyeballs: another candidate joins or leaves the race
	PathCancel     Path = "cancel_keep_old"   // every candidate failed: keep the old link
	PathAccelerate Path = "accelerate_to_new" // the old link died mid-overlap: the new one becomes primary
	PathContinue   Path = "continue_alone"    // the old link died before a welcome: the candidates go on alone
	PathReattach   Path = "reattach"          // the primary died: race the alternatives at once
	PathDetach     Path = "detach"            // no usable link is left: rejoin with backoff
	PathSettle     Path = "settle"            // cooldown over
	PathClose      Path = "close"             // shutdown
)

// Edge is one declared edge of the chart.
type Edge struct {
	From    State
	Event   Event
	Guard   Guard // empty: unguarded (the pair's fallback)
	To      State
	Actions []Action
	Path    Path
	Meaning string // one line for diagrams and tables
}

// Ignore declares that an event is deliberately ignored in a state (when no
// guarded transition of the pair applies).
type Ignore struct {
	State  State
	Event  Event
	Reason string
}

// GuardInfo declares a guard and what it means.
type GuardInfo struct {
	Guard   Guard
	Meaning string
}

// Chart is the whole declaration.
type Chart struct {
	Initial     State
	States      []State
	Events      []Event
	Guards      []GuardInfo
	Transitions []Edge
	Ignores     []Ignore
}

// Cell is the decision for one (state, event) pair: the guarded transitions
// in the order they are tried, then the fallback, exactly one of Transition
// (unguarded) and Ignore.
type Cell struct {
	Guarded    []*Edge
	Transition *Edge
	Ignore     *Ignore
}

// Declaration returns the migration state chart. Each call returns a fresh
// copy; callers may not change the machine by changing it.
func Declaration() Chart {
	c := Chart{
		Initial: Detached,
		States:  []State{Detached, Joining, Attached, Handshaking, Overlapping, Cooldown, Closed},
		Events: []Event{Attach, CandidateBetter, Goodbye, OldSuspected, HandshakeOK, HandshakeTimeout,
			NewFailed, AttemptDelay, OldDied, OverlapDone, OverlapExpired, CooldownElapsed, Close},
		Guards: []GuardInfo{
			{HasAlternative, "an untried substrate is queued (a goodbye's alternatives, then known substrates best first, " +
				"none in backoff while another is left) and the race has room for one more candidate"},
			{OthersRacing, "another candidate than the one the event is about is still handshaking"},
		},
	}
	on := func(from State, events []Event, g Guard, to State, path Path, meaning string, actions ...Action) {
		for _, e := range events {
			c.Transitions = append(c.Transitions, Edge{From: from, Event: e, Guard: g, To: to,
				Actions: actions, Path: path, Meaning: meaning})
		}
	}
	ignore := func(s State, events []Event, reason string) {
		for _, e := range events {
			c.Ignores = append(c.Ignores, Ignore{State: s, Event: e, Reason: reason})
		}
	}
	ev := func(e ...Event) []Event { return e }
	failed := ev(HandshakeTimeout, NewFailed)
	noCandidate := ev(HandshakeOK, HandshakeTimeout, NewFailed, OverlapExpired)
	const (
		stale         = "stale: there is no candidate link, so the event is from a link already dropped"
		noRace        = "stale: no race is running"
		notOver       = "no overlap is in progress"
		noPrimary     = "no primary link"
		migrating     = "a migration is already in progress"
		keepLeaving   = "already migrating: the old link is kept until it closes (old_died), so nothing it still forwards is lost"
		raceLeft      = "the race goes on without the failed candidate"
		raceNext      = "the failed candidate is replaced by the next alternative"
		raceWiden     = "no welcome within the attempt delay: dial the next alternative too; the first welcome wins"
		raceExhausted = "nothing left to race: the candidates already dialled go on"
	)
	hello := []Action{DialAlternative, SendHello}

	// detached: nothing to lose, only (re)joining or closing.
	on(Detached, ev(Attach), "", Joining, PathJoin, "first attachment, or rejoin after backoff", hello...)
	ignore(Detached, ev(CandidateBetter), "no attachment to improve on: the engine rejoins with attach")
	ignore(Detached, ev(Goodbye, OldSuspected, OldDied), noPrimary)
	ignore(Detached, noCandidate, stale)
	ignore(Detached, ev(AttemptDelay), noRace)
	ignore(Detached, ev(OverlapDone), notOver)
	ignore(Detached, ev(CooldownElapsed), "not in cooldown")

	// joining: candidates race, no primary.
	ignore(Joining, ev(Attach), "already joining: the race is running")
	ignore(Joining, ev(CandidateBetter), "no primary yet: finish joining first")
	ignore(Joining, ev(Goodbye), "no primary: a candidate's goodbye is a refusal and arrives as new_failed")
	ignore(Joining, ev(OldSuspected, OldDied), noPrimary)
	on(Joining, ev(HandshakeOK), "", Attached, PathJoin, "welcomed: the first welcome wins the race", CloseRivals, PromoteCandidate)
	on(Joining, failed, HasAlternative, Joining, PathRace, raceNext, DropCandidate, DialAlternative, SendHello)
	on(Joining, failed, OthersRacing, Joining, PathRace, raceLeft, DropCandidate)
	on(Joining, failed, "", Detached, PathDetach, "every candidate failed: rejoin with backoff", DropCandidate)
	on(Joining, ev(AttemptDelay), HasAlternative, Joining, PathRace, raceWiden, hello...)
	ignore(Joining, ev(AttemptDelay), raceExhausted)
	ignore(Joining, ev(OverlapExpired), "no overlap without a primary")
	ignore(Joining, ev(OverlapDone), notOver)
	ignore(Joining, ev(CooldownElapsed), "not in cooldown")

	// attached: the steady state.
	ignore(Attached, ev(Attach), "already attached")
	on(Attached, ev(CandidateBetter), "", Handshaking, PathMigrate, "policy: candidate better for two cycles", DialCandidate, SendHello)
	on(Attached, ev(Goodbye), HasAlternative, Handshaking, PathForced, "old is leaving: migrate now, no hysteresis", hello...)
	ignore(Attached, ev(Goodbye), "no substrate to go to: keep the leaving link until it closes, then rejoin")
	on(Attached, ev(OldSuspected), HasAlternative, Handshaking, PathSuspect, "old went silent: migrate now, keep it meanwhile", hello...)
	ignore(Attached, ev(OldSuspected), "no substrate to go to: keep pinging; missed heartbeats declare it dead")
	ignore(Attached, noCandidate, stale)
	ignore(Attached, ev(AttemptDelay), noRace)
	on(Attached, ev(OldDied), HasAlternative, Joining, PathReattach, "primary lost: race the alternatives at once", DropOld, DialAlternative, SendHello)
	on(Attached, ev(OldDied), "", Detached, PathDetach, "primary lost and no substrate known", DropOld)
	ignore(Attached, ev(OverlapDone), notOver)
	ignore(Attached, ev(CooldownElapsed), "cooldown already over")

	// handshaking: old still primary, candidates await a welcome.
	ignore(Handshaking, ev(Attach), "already attached")
	ignore(Handshaking, ev(CandidateBetter), migrating)
	ignore(Handshaking, ev(Goodbye, OldSuspected), keepLeaving+"; its alternatives join the queue")
	on(Handshaking, ev(HandshakeOK), "", Overlapping, PathMigrate, "welcomed: gossip arrives on both links", CloseRivals, StartOverlap)
	on(Handshaking, failed, HasAlternative, Handshaking, PathRace, raceNext, DropCandidate, DialAlternative, SendHello)
	on(Handshaking, failed, OthersRacing, Handshaking, PathRace, raceLeft, DropCandidate)
	on(Handshaking, failed, "", Attached, PathCancel, "every candidate failed: cancel, keep old", DropCandidate)
	on(Handshaking, ev(AttemptDelay), HasAlternative, Handshaking, PathRace, raceWiden, hello...)
	ignore(Handshaking, ev(AttemptDelay), raceExhausted)
	ignore(Handshaking, ev(OverlapExpired), notOver)
	on(Handshaking, ev(OldDied), "", Joining, PathContinue, "old gone before a welcome: the candidates go on alone", DropOld)
	ignore(Handshaking, ev(OverlapDone), notOver)
	ignore(Handshaking, ev(CooldownElapsed), "not in cooldown")

	// overlapping: both links deliver; dedup drops the copies.
	ignore(Overlapping, ev(Attach), "already attached")
	ignore(Overlapping, ev(CandidateBetter), migrating)
	ignore(Overlapping, ev(Goodbye, OldSuspected), keepLeaving)
	on(Overlapping, ev(OldDied), "", Cooldown, PathAccelerate, "old gone mid-overlap: the new link becomes primary", DropOld, PromoteCandidate)
	ignore(Overlapping, ev(HandshakeOK), "stale: the race is won and its rivals closed")
	ignore(Overlapping, ev(HandshakeTimeout), "stale: the handshake already completed")
	ignore(Overlapping, ev(AttemptDelay), "stale: the race is won")
	on(Overlapping, ev(NewFailed, OverlapExpired), HasAlternative, Handshaking, PathRace,
		"new link failed or never caught up while the old is leaving: try the next alternative", DropCandidate, DialAlternative, SendHello)
	on(Overlapping, ev(NewFailed, OverlapExpired), "", Attached, PathCancel, "new link failed or never caught up: cancel, keep old", DropCandidate)
	on(Overlapping, ev(OverlapDone), "", Cooldown, PathMigrate, "new link caught up: the switch", CloseOld, PromoteCandidate)
	ignore(Overlapping, ev(CooldownElapsed), "not in cooldown")

	// cooldown: just migrated.
	ignore(Cooldown, ev(Attach), "already attached")
	ignore(Cooldown, ev(CandidateBetter), "cooldown: no migration until one full evaluation cycle has passed")
	on(Cooldown, ev(Goodbye), HasAlternative, Handshaking, PathForced, "old is leaving: cooldown does not apply", hello...)
	ignore(Cooldown, ev(Goodbye), "no substrate to go to: keep the leaving link until it closes, then rejoin")
	on(Cooldown, ev(OldSuspected), HasAlternative, Handshaking, PathSuspect, "old went silent: cooldown does not apply", hello...)
	ignore(Cooldown, ev(OldSuspected), "no substrate to go to: keep pinging; missed heartbeats declare it dead")
	ignore(Cooldown, noCandidate, stale)
	ignore(Cooldown, ev(AttemptDelay), noRace)
	on(Cooldown, ev(OldDied), HasAlternative, Joining, PathReattach, "primary lost: race the alternatives at once", DropOld, DialAlternative, SendHello)
	on(Cooldown, ev(OldDied), "", Detached, PathDetach, "primary lost and no substrate known", DropOld)
	ignore(Cooldown, ev(OverlapDone), "stale: the overlap already ended")
	on(Cooldown, ev(CooldownElapsed), "", Attached, PathSettle, "one full evaluation cycle passed")

	// close from anywhere; closed is terminal.
	for _, s := range c.States {
		if s != Closed {
			on(s, ev(Close), "", Closed, PathClose, "shut down", CloseAll)
		}
	}
	ignore(Closed, c.Events, "closed is terminal")
	return c
}

// BreakBeforeMake returns the chart of the break-before-make baseline,
// derived from c: every transition that would dial a candidate while
// keeping the primary (attached or cooldown to handshaking) first lets the
// primary go (close_old for a policy migration, drop_old when it is
// leaving or silent) and goes to joining instead. Handshaking and
// overlapping are then never reached. It is what REPRAM's own transient
// does on a goodbye, and what migsim compares this project against.
func BreakBeforeMake(c Chart) Chart {
	out := c
	out.Transitions = make([]Edge, len(c.Transitions))
	for i, t := range c.Transitions {
		if (t.From == Attached || t.From == Cooldown) && t.To == Handshaking {
			let := DropOld
			if t.Path == PathMigrate {
				let = CloseOld
			}
			t.Actions = append([]Action{let}, t.Actions...)
			t.To = Joining
			t.Meaning = "break-before-make: " + t.Meaning
		}
		out.Transitions[i] = t
	}
	return out
}

// Cell returns the decision for (s, e), or false when the pair is not declared.
func (c Chart) Cell(s State, e Event) (Cell, bool) {
	var cell Cell
	found := false
	for i := range c.Transitions {
		if t := &c.Transitions[i]; t.From == s && t.Event == e {
			found = true
			if t.Guard != "" {
				cell.Guarded = append(cell.Guarded, t)
			} else if cell.Transition == nil {
				cell.Transition = t
			}
		}
	}
	for i := range c.Ignores {
		if ig := &c.Ignores[i]; ig.State == s && ig.Event == e {
			found = true
			if cell.Ignore == nil {
				cell.Ignore = ig
			}
		}
	}
	return cell, found
}

// GuardMeaning returns what guard g means, or false when it is not declared.
func (c Chart) GuardMeaning(g Guard) (string, bool) {
	for _, gi := range c.Guards {
		if gi.Guard == g {
			return gi.Meaning, true
		}
	}
	return "", false
}

// Validate checks that the chart is total and unambiguous: every
// (state, event) pair has exactly one fallback (an unguarded transition or an
// ignore) and at most one transition per guard, and every name used is
// declared.
func (c Chart) Validate() error {
	states := map[State]bool{}
	for _, s := range c.States {
		states[s] = true
	}
	events := map[Event]bool{}
	for _, e := range c.Events {
		events[e] = true
	}
	guards := map[Guard]bool{}
	for _, g := range c.Guards {
		if g.Guard == "" || guards[g.Guard] {
			return fmt.Errorf("fsm: guard %q is empty or declared twice", g.Guard)
		}
		guards[g.Guard] = true
	}
	if !states[c.Initial] {
		return fmt.Errorf("fsm: initial state %q is not declared", c.Initial)
	}
	type key struct {
		s State
		e Event
		g Guard
	}
	seen := map[key]string{}
	mark := func(s State, e Event, g Guard, what string) error {
		if !states[s] {
			return fmt.Errorf("fsm: %s uses undeclared state %q", what, s)
		}
		if !events[e] {
			return fmt.Errorf("fsm: %s uses undeclared event %q", what, e)
		}
		if g != "" && !guards[g] {
			return fmt.Errorf("fsm: %s uses undeclared guard %q", what, g)
		}
		if prev, dup := seen[key{s, e, g}]; dup {
			if g == "" {
				return fmt.Errorf("fsm: (%s, %s) decided twice: %s and %s", s, e, prev, what)
			}
			return fmt.Errorf("fsm: (%s, %s) [%s] decided twice: %s and %s", s, e, g, prev, what)
		}
		seen[key{s, e, g}] = what
		return nil
	}
	for _, t := range c.Transitions {
		if !states[t.To] {
			return fmt.Errorf("fsm: transition %s --%s--> %s targets an undeclared state", t.From, t.Event, t.To)
		}
		if err := mark(t.From, t.Event, t.Guard, "transition to "+string(t.To)); err != nil {
			return err
		}
	}
	for _, ig := range c.Ignores {
		if err := mark(ig.State, ig.Event, "", "ignore"); err != nil {
			return err
		}
	}
	for _, s := range c.States {
		for _, e := range c.Events {
			if _, ok := seen[key{s, e, ""}]; !ok {
				return fmt.Errorf("fsm: (%s, %s) has no fallback: declare an unguarded transition or an ignore", s, e)
			}
		}
	}
	return nil
}
