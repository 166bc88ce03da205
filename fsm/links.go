package fsm

import "fmt"

// Links is an abstract model of the links a sequence of actions implies: the
// id of the primary and of the candidate link, 0 for none. Each dial makes a
// new id. Tests, fuzzers and the transport driver's self-checks use it to
// state the chart's invariants in terms of links rather than states.
type Links struct {
	Primary, Candidate int
	next               int
}

// Apply carries out a transition's actions on the model.
func (l *Links) Apply(actions []Action) {
	for _, a := range actions {
		switch a {
		case DialCandidate, DialAlternative:
			l.next++
			l.Candidate = l.next
		case PromoteCandidate:
			l.Primary, l.Candidate = l.Candidate, 0
		case DropCandidate:
			l.Candidate = 0
		case DropOld, CloseOld:
			l.Primary = 0
		case CloseAll:
			l.Primary, l.Candidate = 0, 0
		case SendHello, StartOverlap:
		}
	}
}

// CheckStep checks the invariants of one step taken from the model's links
// before (prev) to after (l):
//   - every state holds exactly the links it stands for (so outside
//     overlapping at most one link delivers gossip, and closed holds none);
//   - closed is terminal;
//   - a cancel lands attached with the old primary kept and no candidate;
//   - an accelerate lands with the former candidate as primary.
func (l Links) CheckStep(prev Links, st Step) error {
	if st.From == Closed && st.To != Closed {
		return fmt.Errorf("left closed on %s", st.Event)
	}
	wantPrimary, wantCandidate := linksOf(st.To)
	if (l.Primary != 0) != wantPrimary || (l.Candidate != 0) != wantCandidate {
		return fmt.Errorf("%s --%s--> %s: links primary=%d candidate=%d do not fit the state",
			st.From, st.Event, st.To, l.Primary, l.Candidate)
	}
	switch st.Path {
	case PathCancel:
		if st.To != Attached || l.Primary != prev.Primary || l.Primary == 0 {
			return fmt.Errorf("cancel on %s did not keep the old primary %d (now %d, state %s)",
				st.Event, prev.Primary, l.Primary, st.To)
		}
	case PathAccelerate:
		if l.Primary == 0 || l.Primary != prev.Candidate {
			return fmt.Errorf("accelerate on %s did not promote candidate %d (primary now %d)",
				st.Event, prev.Candidate, l.Primary)
		}
	}
	return nil
}

// linksOf says which links a state stands for.
func linksOf(s State) (primary, candidate bool) {
	switch s {
	case Joining:
		return false, true
	case Attached, Cooldown:
		return true, false
	case Handshaking, Overlapping:
		return true, true
	}
	return false, false // detached, closed
}
