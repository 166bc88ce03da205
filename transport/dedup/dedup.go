// Package dedup remembers recent gossip message ids so that the transport
// event loop can drop a message that arrives twice, for instance on the old
// and the new link while a migration overlaps them.
//
// A [Set] keeps two generations of ids, each a map: new ids go into the
// current one; the current one becomes the previous one when a Window has
// passed since it began or when it holds Capacity/2 ids, and the old previous
// one is dropped. Every call is O(1), there is no background goroutine and no
// clock: the caller passes the time into each call.
//
// Guarantees, for an id last passed to [Set.Seen] at time t:
//
//   - Seen reports it as a duplicate at any time in [t, t+Window], unless
//     Capacity/2 or more other ids were recorded after it (then it may have
//     been evicted early, which [Stats.Evicted] counts);
//   - it is forgotten from t+2*Window on;
//   - [Set.Len] never exceeds Capacity.
//
// Times must not go backwards (use time.Now, whose monotonic reading makes
// sure of that); if they do, expiry is delayed until time catches up, and
// memory stays bounded by Capacity.
package dedup

import (
	"fmt"
	"time"
)

// Defaults, REPRAM's own: ids are kept 60 s, at most 100000 of them.
const (
	DefaultWindow   = 60 * time.Second
	DefaultCapacity = 100_000
)

// Config sizes a [Set]. Zero fields take the defaults.
type Config struct {
	// Window is how long an id is remembered at least (at most twice as long).
	Window time.Duration
	// Capacity bounds how many ids are held; an id is remembered for its
	// Window unless Capacity/2 other ids arrive after it. 0 or at least 2.
	Capacity int
}

// Stats counts what a [Set] has done since it was made.
type Stats struct {
	// Duplicates is how many Seen calls reported a duplicate.
	Duplicates uint64
	// Expired is how many ids were forgotten because their time was up.
	Expired uint64
	// Evicted is how many ids were forgotten because Capacity was reached,
	// possibly before their Window was over. A growing count means Capacity
	// is too small for the message rate, and duplicates may get through.
	Evicted uint64
}

// Set is a bounded, time-windowed set of message ids. It is not safe for
// concurrent use: one goroutine (the transport event loop) owns it.
type Set struct {
	window time.Duration
	half   int // the most ids a generation holds

	cur, prev map[string]struct{}
	start     time.Time // when cur began; prev began at most a window earlier
	started   bool

	stats Stats
}

// Validate returns an error naming what is wrong with cfg: a negative
// Window or Capacity, or a Capacity of 1 (a Set holds two generations of
// Capacity/2 ids).
func (cfg Config) Validate() error {
	if cfg.Window < 0 || cfg.Capacity < 0 || cfg.Capacity == 1 {
		return fmt.Errorf("dedup: invalid Config{Window: %v, Capacity: %d}: Window must not be negative and Capacity "+
			"must be zero (the default, %d) or at least 2 (it holds two generations of Capacity/2 ids)",
			cfg.Window, cfg.Capacity, DefaultCapacity)
	}
	return nil
}

// New returns an empty Set. It panics if cfg is invalid ([Config.Validate]),
// which is a programming error.
func New(cfg Config) *Set {
	if err := cfg.Validate(); err != nil {
		panic(err.Error())
	}
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Capacity == 0 {
		cfg.Capacity = DefaultCapacity
	}
	return &Set{
		window: cfg.Window,
		half:   cfg.Capacity / 2,
		cur:    make(map[string]struct{}),
		prev:   make(map[string]struct{}),
	}
}

// Seen records id as seen at now and reports whether it had been seen before,
// within the guarantees of the package. A duplicate's time is refreshed to
// now. The empty id is never a duplicate and is not recorded: REPRAM sends
// SYNC messages with message_id "", and those must always be delivered.
//
// Seen keeps id as a map key as it is, without copying it, and allocates
// nothing once the Set has grown to its size. An id should therefore not be
// a substring of a large buffer the caller wants freed; the message ids that
// wire.Decoder returns are each allocated on their own, and pin nothing.
func (s *Set) Seen(id string, now time.Time) (dup bool) {
	s.advance(now)
	if id == "" {
		return false
	}
	if _, ok := s.cur[id]; ok {
		s.stats.Duplicates++
		return true
	}
	_, dup = s.prev[id]
	if dup {
		s.stats.Duplicates++
		delete(s.prev, id) // moved to cur below, refreshed
	}
	if len(s.cur) >= s.half {
		// Capacity reached: the previous generation goes, even if young.
		s.stats.Evicted += uint64(len(s.prev))
		s.rotate(now)
	}
	s.cur[id] = struct{}{}
	return dup
}

// advance rotates the generations when their time is up. Invariant after it
// returns: cur holds ids seen in [start, now] with now < start+window, and
// prev ids seen in [start-window, start).
func (s *Set) advance(now time.Time) {
	if !s.started {
		s.start, s.started = now, true
		return
	}
	switch elapsed := now.Sub(s.start); {
	case elapsed < s.window:
	case elapsed < 2*s.window:
		// cur's ids were all seen before start+window: keep them one more
		// window, on the grid, so none is kept past 2*window.
		s.stats.Expired += uint64(len(s.prev))
		s.rotate(s.start.Add(s.window))
	default:
		s.stats.Expired += uint64(len(s.prev) + len(s.cur))
		clear(s.prev)
		clear(s.cur)
		s.start = now
	}
}

// rotate drops prev, makes cur the previous generation and starts an empty
// one at start. The maps are reused: memory stays at its peak, which
// Capacity bounds.
func (s *Set) rotate(start time.Time) {
	clear(s.prev)
	s.prev, s.cur = s.cur, s.prev
	s.start = start
}

// Len returns how many ids the Set holds; never more than its Capacity.
func (s *Set) Len() int { return len(s.cur) + len(s.prev) }

// Stats returns the Set's counters.
func (s *Set) Stats() Stats { return s.stats }
