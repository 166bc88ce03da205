package engine

import "time"

// maxTracked bounds the ids an overlap tracks on each link, so a flood
// cannot grow it: past it, arrivals are no longer tracked, which can only
// make the catch-up check more permissive for a link that is forwarding.
const maxTracked = 100_000

// overlap decides when the new link has caught up with the old one.
//
// Messages published before the new substrate registered this node reach
// the old link (for as long as the mesh takes to carry them) but never the
// new one: they are exempt. The old link's first message that also came on
// the new link marks where the exempt tail ends, give or take the margin;
// before any such message, the tail is taken to end at the welcome. Every
// old-link message after that boundary must also arrive on the new link.
// The margin is derived from the propagation skew measured on ids seen on
// both links (see skewEstimate), within [OverlapFloor, OverlapGrace].
//
// The new link has caught up when it answered a ping, the boundary has
// passed, and no old-link message past the boundary and older than the
// margin (younger ones may still be on their way to the new substrate) is
// missing from it. When the old link delivered anything since the welcome,
// two more margins must pass, so that one margin of its stream past the
// boundary was checked (and the exempt tail, all of it older than the
// boundary, has drained). A steady stream thus clocks the switch; with no
// traffic, the boundary alone covers what may still be in flight to the
// old substrate.
//
// Only messages from origins (their "from", which forwarding keeps) that
// the new link has delivered are expected on it, once it has delivered any
// message the old one did: REPRAM never forwards a substrate's own writes
// to that substrate's children, and in a partial mesh the new substrate
// may never hear some publishers at all. Until a first common message
// proves the new link forwards, every message past the boundary counts,
// so a substrate that welcomes and forwards nothing is still caught.
type overlap struct {
	link      LinkID // the new link
	welcomeAt time.Time
	newAlive  bool                  // the new link answered a ping
	common    time.Time             // earliest old-link arrival of an id also seen on the new link
	oldSeen   bool                  // the old link delivered something since the welcome
	pending   map[string]oldArrival // old-link arrivals not (yet) seen on the new link
	onNew     map[string]time.Time  // new-link arrivals not (yet) seen on the old link
	origins   map[string]struct{}   // the origins ("from") of what the new link delivered
}

// oldArrival is when a message came on the old link, and from what origin.
type oldArrival struct {
	at   time.Time
	from string
}

func newOverlap(link LinkID, welcomeAt time.Time, newAlive bool) *overlap {
	return &overlap{link: link, welcomeAt: welcomeAt, newAlive: newAlive,
		pending: map[string]oldArrival{}, onNew: map[string]time.Time{}, origins: map[string]struct{}{}}
}

// fromOld records a message the old link delivered at now; it returns the
// skew sample (new arrival − old arrival) when the id had come on the new
// link first.
func (o *overlap) fromOld(id, from string, now time.Time) (skew time.Duration, ok bool) {
	if id == "" {
		return 0, false
	}
	o.oldSeen = true
	if at, seen := o.onNew[id]; seen {
		delete(o.onNew, id)
		o.commonAt(now)
		return at.Sub(now), true
	}
	if len(o.pending) < maxTracked {
		o.pending[id] = oldArrival{now, from}
	}
	return 0, false
}

// fromNew records a message the new link delivered at now; it returns the
// skew sample when the id had come on the old link first.
func (o *overlap) fromNew(id, from string, now time.Time) (skew time.Duration, ok bool) {
	if id == "" {
		return 0, false
	}
	if len(o.origins) < maxTracked {
		o.origins[from] = struct{}{}
	}
	if old, seen := o.pending[id]; seen {
		delete(o.pending, id)
		o.commonAt(old.at)
		return now.Sub(old.at), true
	}
	if len(o.onNew) < maxTracked {
		o.onNew[id] = now
	}
	return 0, false
}

func (o *overlap) commonAt(oldArrival time.Time) {
	if o.common.IsZero() || oldArrival.Before(o.common) {
		o.common = oldArrival
	}
}

// check reports whether the new link has caught up at now with the given
// margin; when it has not, readyAt is the earliest time it could (zero when
// only an arrival or a pong can change the answer), and behind counts the
// old-link messages past the boundary still missing from the new link.
func (o *overlap) check(now time.Time, margin time.Duration) (done bool, readyAt time.Time, behind int) {
	exemptUntil := o.welcomeAt.Add(margin)
	if !o.common.IsZero() && o.common.Add(margin).After(exemptUntil) {
		exemptUntil = o.common.Add(margin)
	}
	// With a stream, at least one margin of it past the boundary must be
	// checked, and its last messages are in flight for one more margin; an
	// idle old link has nothing to check once the boundary has passed.
	readyAt = exemptUntil
	if o.oldSeen {
		readyAt = exemptUntil.Add(2 * margin)
	}
	inFlight := now.Add(-margin)
	for _, old := range o.pending {
		// An exempt message (before the boundary) is never expected on the
		// new link, and it drains by readyAt: it counts for nothing.
		if old.at.Before(exemptUntil) || old.at.After(inFlight) {
			continue
		}
		if _, heard := o.origins[old.from]; heard || o.common.IsZero() {
			behind++
		}
	}
	if behind > 0 || !o.newAlive {
		return false, time.Time{}, behind
	}
	if now.Before(readyAt) {
		return false, readyAt, 0
	}
	return true, time.Time{}, 0
}

// skewEstimate tracks how much later the new link delivers what the old one
// does (or the other way round), over every overlap, the way RFC 6298
// tracks a round trip: a smoothed mean and mean deviation. Its bound,
// mean + 4·deviation, stands for a high percentile of the skew.
type skewEstimate struct {
	mean, dev time.Duration
	samples   int
}

func (s *skewEstimate) add(sample time.Duration) {
	if sample < 0 {
		sample = -sample
	}
	if s.samples == 0 {
		s.mean, s.dev = sample, sample/2
	} else {
		d := sample - s.mean
		if d < 0 {
			d = -d
		}
		s.dev += (d - s.dev) / 4
		s.mean += (sample - s.mean) / 8
	}
	s.samples++
}

// margin is twice the skew bound plus floor, within [floor, grace]; grace
// before any sample.
func (s *skewEstimate) margin(floor, grace time.Duration) time.Duration {
	if s.samples == 0 {
		return grace
	}
	return min(max(2*(s.mean+4*s.dev)+floor, floor), grace)
}
