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
// The new link has caught up when it answered a ping, two margins have
// passed since the boundary (so one margin of the stream was checked, and
// the exempt tail, all of it older than the boundary, has drained), and no
// old-link message past the boundary and older than the margin (younger
// ones may still be on their way to the new substrate) is missing from it.
// A steady stream thus clocks the switch; with no traffic to measure, the
// margins alone cover what may still be in flight to the old substrate.
type overlap struct {
	link      LinkID // the new link
	welcomeAt time.Time
	newAlive  bool                 // the new link answered a ping
	common    time.Time            // earliest old-link arrival of an id also seen on the new link
	pending   map[string]time.Time // old-link arrivals not (yet) seen on the new link
	onNew     map[string]time.Time // new-link arrivals not (yet) seen on the old link
}

func newOverlap(link LinkID, welcomeAt time.Time, newAlive bool) *overlap {
	return &overlap{link: link, welcomeAt: welcomeAt, newAlive: newAlive,
		pending: map[string]time.Time{}, onNew: map[string]time.Time{}}
}

// fromOld records a message the old link delivered at now; it returns the
// skew sample (new arrival − old arrival) when the id had come on the new
// link first.
func (o *overlap) fromOld(id string, now time.Time) (skew time.Duration, ok bool) {
	if id == "" {
		return 0, false
	}
	if at, seen := o.onNew[id]; seen {
		delete(o.onNew, id)
		o.commonAt(now)
		return at.Sub(now), true
	}
	if len(o.pending) < maxTracked {
		o.pending[id] = now
	}
	return 0, false
}

// fromNew records a message the new link delivered at now; it returns the
// skew sample when the id had come on the old link first.
func (o *overlap) fromNew(id string, now time.Time) (skew time.Duration, ok bool) {
	if id == "" {
		return 0, false
	}
	if at, seen := o.pending[id]; seen {
		delete(o.pending, id)
		o.commonAt(at)
		return now.Sub(at), true
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
	// At least one margin of the stream past the boundary must be checked.
	readyAt = exemptUntil.Add(2 * margin)
	inFlight := now.Add(-margin)
	for _, at := range o.pending {
		// An exempt message (before the boundary) is never expected on the
		// new link, and it drains by readyAt: it counts for nothing.
		if !at.Before(exemptUntil) && !at.After(inFlight) {
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
