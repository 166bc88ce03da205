package engine

import (
	"strings"

	"github.com/repram/handover/fsm"
)

// fire queues an event about subject (the candidate it concerns, or nil)
// and, unless already firing, runs the queue: an event raised while
// carrying out actions runs after the current step, never inside it.
func (e *Engine) fire(ev fsm.Event, subject *link, reason string) {
	e.pending = append(e.pending, event{e: ev, subject: subject, reason: reason})
	if e.firing {
		return
	}
	e.firing = true
	defer func() { e.firing = false }()
	for len(e.pending) > 0 {
		q := e.pending[0]
		e.pending = e.pending[1:]
		e.step(q)
	}
}

// step fires one event into the machine and carries out the transition.
func (e *Engine) step(q event) {
	if q.subject != nil && !e.isCandidate(q.subject) {
		// The candidate was dropped by an earlier event of this Step.
		e.stats.StaleEventsDropped++
		return
	}
	st, err := e.m.Fire(q.e, func(g fsm.Guard) bool { return e.holds(g, q.subject) })
	if err != nil {
		e.log.Error().Err(err).Str("event", string(q.e)).Msg("state machine rejected an event")
		return
	}
	if st.Ignored {
		e.log.Debug().Str("state", string(st.From)).Str("event", string(q.e)).Str("reason", st.Reason).Msg("event ignored")
		return
	}
	dials := e.stats.Dials
	for _, a := range st.Actions {
		e.act(a, q.subject)
	}
	if st.Path == fsm.PathRace {
		e.stats.RaceDials += e.stats.Dials - dials
	}
	e.count(st, q.subject)
	tr := Transition{At: e.now, Step: st, Reason: q.reason}
	if e.primary != nil {
		tr.Primary = e.primary.target.ID
	}
	ids := make([]string, len(e.cands))
	for i, c := range e.cands {
		ids[i] = c.target.ID
	}
	tr.Candidate = strings.Join(ids, ",")
	e.log.Info().Str("from", string(st.From)).Str("to", string(st.To)).Str("event", string(q.e)).
		Str("guard", string(st.Guard)).Str("path", string(st.Path)).Str("primary", tr.Primary).
		Str("candidate", tr.Candidate).Str("reason", q.reason).Msg("transition")
	e.emit(Transitioned{Transition: tr})
	if st.To == fsm.Detached {
		e.scheduleRejoin()
	}
}

// holds evaluates a guard for an event about subject.
func (e *Engine) holds(g fsm.Guard, subject *link) bool {
	others := len(e.cands)
	if subject != nil && e.isCandidate(subject) {
		others-- // the subject is about to leave the race
	}
	switch g {
	case fsm.HasAlternative:
		return others < e.cfg.RaceWidth && e.nextAlternative(false) != nil
	case fsm.OthersRacing:
		return others > 0
	}
	return false
}

// nextAlternative returns the first dialable queued substrate, popping it
// (and what precedes it) when pop is set.
func (e *Engine) nextAlternative(pop bool) *Substrate {
	for i, s := range e.queue {
		if e.dialable(s) {
			if pop {
				e.queue = e.queue[i+1:]
			}
			return &s
		}
	}
	return nil
}

// act carries out one action of a transition about subject.
func (e *Engine) act(a fsm.Action, subject *link) {
	switch a {
	case fsm.DialCandidate:
		// A policy migration: nothing left of an earlier forced move may
		// turn its failure into a race.
		e.queue, e.moving, e.raceAt = nil, false, timeZero
		e.dial(e.target)
	case fsm.DialAlternative:
		if s := e.nextAlternative(true); s != nil {
			e.dial(*s)
			e.raceAt = e.now.Add(e.cfg.AttemptDelay)
		}
	case fsm.SendHello:
		if l := e.dialed; l != nil {
			l.handshakeBy = e.now.Add(e.cfg.HandshakeTimeout)
			e.emit(SendHello{Link: l.id})
		}
	case fsm.StartOverlap:
		if w := e.welcomedCandidate(subject); w != nil {
			e.ov, e.ovCheck = newOverlap(w.id, e.now, w.pingOK), e.now
			e.ov.newID = w.target.ID
		}
	case fsm.CloseRivals:
		w := e.welcomedCandidate(subject)
		for _, c := range e.cands {
			if c != w {
				e.emit(CloseLink{Link: c.id, Code: closeCode(c)})
			}
		}
		e.cands, e.raceAt = e.cands[:0], timeZero
		if w != nil {
			e.cands = append(e.cands, w)
		}
	case fsm.PromoteCandidate:
		w := e.welcomedCandidate(subject)
		if w == nil {
			return
		}
		e.removeCandidate(w)
		e.primary, e.ov, e.queue, e.moving, e.raceAt = w, nil, nil, false, timeZero
		e.backoff = e.cfg.RejoinBackoff
		e.reg.succeeded(w.target)
		e.pol.Attached(w.target.ID)
	case fsm.DropCandidate:
		if subject == nil || !e.isCandidate(subject) {
			return
		}
		e.removeCandidate(subject)
		if e.ov != nil && e.ov.link == subject.id {
			e.ov = nil
		}
		e.emit(CloseLink{Link: subject.id, Code: CloseAbort})
	case fsm.DropOld:
		if p := e.primary; p != nil {
			e.emit(CloseLink{Link: p.id, Code: CloseAbort})
			e.primary = nil
		}
	case fsm.CloseOld:
		if p := e.primary; p != nil {
			e.emit(CloseLink{Link: p.id, Code: closeCode(p)})
			e.primary, e.closing = nil, p
		}
	case fsm.CloseAll:
		if p := e.primary; p != nil {
			e.emit(CloseLink{Link: p.id, Code: closeCode(p)})
		}
		for _, c := range e.cands {
			e.emit(CloseLink{Link: c.id, Code: closeCode(c)})
		}
		e.primary, e.closing, e.cands, e.ov, e.queue, e.raceAt, e.rejoinAt = nil, nil, nil, nil, nil, timeZero, timeZero
		e.closed = true
		e.emit(Closed{})
	}
}

// closeCode is how a link the node gives up is closed: with the close
// handshake, unless its last ping went unanswered or it never welcomed (a
// silent peer would hold the handshake for the library's whole timeout).
func closeCode(l *link) CloseCode {
	if l.missed > 0 || !l.welcome {
		return CloseAbort
	}
	return CloseNormal
}

// dial opens a link to s as a new candidate.
func (e *Engine) dial(s Substrate) {
	e.nextID++
	l := &link{id: e.nextID, target: s}
	e.cands = append(e.cands, l)
	e.dialed = l
	e.stats.Dials++
	e.emit(Dial{Link: l.id, Target: s})
}

// welcomedCandidate is the candidate a welcome-driven action concerns: the
// subject, or the only candidate (old_died's accelerate).
func (e *Engine) welcomedCandidate(subject *link) *link {
	if subject != nil && e.isCandidate(subject) {
		return subject
	}
	if len(e.cands) == 1 {
		return e.cands[0]
	}
	return nil
}

func (e *Engine) removeCandidate(l *link) {
	for i, c := range e.cands {
		if c == l {
			e.cands = append(e.cands[:i:i], e.cands[i+1:]...)
			return
		}
	}
}

// count updates the counters and tells the policy what happened.
func (e *Engine) count(st fsm.Step, subject *link) {
	switch st.Path {
	case fsm.PathCancel:
		e.stats.Cancelled++
		if subject != nil {
			e.pol.MigrationFailed(subject.target.ID)
		}
	case fsm.PathAccelerate:
		e.stats.Accelerated++
	case fsm.PathForced:
		e.stats.Forced++
		e.pol.Forced()
	case fsm.PathSuspect:
		e.stats.Suspected++
		e.pol.Forced()
	case fsm.PathReattach:
		e.stats.Reattached++
	case fsm.PathContinue:
		e.stats.ContinuedAlone++
	case fsm.PathDetach:
		e.stats.Detaches++
	}
	switch {
	case st.Event == fsm.OverlapDone:
		e.stats.Migrations++
	case st.Event == fsm.HandshakeOK && st.Path == fsm.PathJoin:
		e.stats.Joins++
	}
}

// scheduleRejoin arms the rejoin after the backoff, which doubles up to
// RejoinBackoffMax and resets on a welcome. With nothing known it waits for
// Attach.
func (e *Engine) scheduleRejoin() {
	if len(e.reg.list) == 0 {
		e.log.Warn().Msg("detached and no substrate known: waiting for Attach")
		return
	}
	e.rejoinAt = e.now.Add(e.backoff)
	e.backoff = min(2*e.backoff, e.cfg.RejoinBackoffMax)
}
