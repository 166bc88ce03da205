package transport

import "time"

// overlap decides when the new link has caught up with the old one
// (DESIGN.md, "overlap_done"). It is pure: the event loop feeds it arrivals
// and the current time.
//
// Messages the old link delivers less than grace after the new link's
// welcome may have reached the new substrate before it knew us, so the new
// link will never forward them: they are exempt. Every other message the old
// link delivers up to the mark (the minimum overlap) must also arrive on the
// new link. Messages after the mark reached the new substrate after our
// welcome too, so they need no check. Once that set has drained and the new
// link has answered a WebSocket ping, the new link has caught up; on an
// idle overlay the ping alone is enough. The sets are bounded by maxTracked
// so a flood cannot grow them: past it, arrivals from the old link are no
// longer tracked, which can only make the check more permissive for a link
// that is forwarding anyway.
type overlap struct {
	exemptUntil time.Time // welcome + grace
	marked      bool      // the minimum overlap has passed
	newAlive    bool      // the new link answered a ping
	pending     map[string]struct{}
	onNew       map[string]struct{} // seen on the new link before the mark
}

const maxTracked = 100_000

func newOverlap(welcomeAt time.Time, grace time.Duration, newAlive bool) *overlap {
	return &overlap{exemptUntil: welcomeAt.Add(grace), newAlive: newAlive,
		pending: map[string]struct{}{}, onNew: map[string]struct{}{}}
}

// fromOld records a message the old link delivered at now.
func (o *overlap) fromOld(id string, now time.Time) {
	if id == "" || o.marked || now.Before(o.exemptUntil) || len(o.pending) >= maxTracked {
		return
	}
	if _, ok := o.onNew[id]; !ok {
		o.pending[id] = struct{}{}
	}
}

// fromNew records a message the new link delivered.
func (o *overlap) fromNew(id string) {
	if id == "" {
		return
	}
	delete(o.pending, id)
	if !o.marked && len(o.onNew) < maxTracked {
		o.onNew[id] = struct{}{}
	}
}

// mark closes the set of messages the new link must catch up on.
func (o *overlap) mark() {
	o.marked = true
	o.onNew = nil
}

// caughtUp reports whether the overlap may end.
func (o *overlap) caughtUp() bool { return o.marked && o.newAlive && len(o.pending) == 0 }

// behind is how many messages the new link still owes.
func (o *overlap) behind() int { return len(o.pending) }
