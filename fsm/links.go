package fsm

import "fmt"

// Links is an abstract model of the links a sequence of actions implies: the
// id of the primary link (0 for none) and the ids of the candidate links, in
// the order they were dialled. Each dial makes a new id. The action an event
// is "about" (drop_candidate, the welcome's promote) is taken to concern
// the oldest candidate; tests, fuzzers and the engine's self-checks use the
// model to state the chart's invariants in terms of links, not states.
type Links struct {
	Primary    int
	Candidates []int
	next       int
}

// Holds evaluates the guards the model can answer: others_racing. Whether
// an alternative is queued is outside the model, so it is given.
func (l Links) Holds(g Guard, alternativeQueued bool) bool {
	switch g {
	case OthersRacing:
		return len(l.Candidates) > 1
	case HasAlternative:
		return alternativeQueued
	}
	return false
}

// Apply carries out a transition's actions on the model. It never shares
// the candidate slice with the receiver's previous value.
func (l *Links) Apply(actions []Action) {
	l.Candidates = append([]int(nil), l.Candidates...)
	for _, a := range actions {
		switch a {
		case DialCandidate, DialAlternative:
			l.next++
			l.Candidates = append(l.Candidates, l.next)
		case CloseRivals:
			if len(l.Candidates) > 1 {
				l.Candidates = l.Candidates[:1]
			}
		case PromoteCandidate:
			if len(l.Candidates) > 0 {
				l.Primary, l.Candidates = l.Candidates[0], l.Candidates[1:]
			}
		case DropCandidate:
			if len(l.Candidates) > 0 {
				l.Candidates = l.Candidates[1:]
			}
		case DropOld, CloseOld:
			l.Primary = 0
		case CloseAll:
			l.Primary, l.Candidates = 0, nil
		case SendHello, StartOverlap:
		}
	}
}

// CheckStep checks the invariants of one step taken from the model's links
// before (prev) to after (l):
//   - every state holds exactly the links it stands for: joining and
//     handshaking at least one candidate, overlapping exactly one (so
//     outside overlapping at most one link delivers gossip), attached and
//     cooldown none, detached and closed no link at all;
//   - closed is terminal;
//   - a cancel lands attached with the old primary kept and no candidate;
//   - an accelerate lands with the former (only) candidate as primary.
func (l Links) CheckStep(prev Links, st Step) error {
	if st.From == Closed && st.To != Closed {
		return fmt.Errorf("left closed on %s", st.Event)
	}
	wantPrimary, minCand, maxCand := linksOf(st.To)
	if n := len(l.Candidates); (l.Primary != 0) != wantPrimary || n < minCand || n > maxCand {
		return fmt.Errorf("%s --%s--> %s: links primary=%d candidates=%v do not fit the state",
			st.From, st.Event, st.To, l.Primary, l.Candidates)
	}
	switch st.Path {
	case PathCancel:
		if st.To != Attached || l.Primary != prev.Primary || l.Primary == 0 {
			return fmt.Errorf("cancel on %s did not keep the old primary %d (now %d, state %s)",
				st.Event, prev.Primary, l.Primary, st.To)
		}
	case PathAccelerate:
		if l.Primary == 0 || len(prev.Candidates) != 1 || l.Primary != prev.Candidates[0] {
			return fmt.Errorf("accelerate on %s did not promote the candidate %v (primary now %d)",
				st.Event, prev.Candidates, l.Primary)
		}
	}
	return nil
}

// linksOf says which links a state stands for: a primary or not, and the
// bounds on the number of candidates.
func linksOf(s State) (primary bool, minCand, maxCand int) {
	const many = int(^uint(0) >> 1)
	switch s {
	case Joining:
		return false, 1, many
	case Attached, Cooldown:
		return true, 0, 0
	case Handshaking:
		return true, 1, many
	case Overlapping:
		return true, 1, 1
	}
	return false, 0, 0 // detached, closed
}
