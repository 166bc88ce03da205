//go:build !race

package dedup_test

import (
	"strconv"
	"testing"

	"github.com/repram/handover/transport/dedup"
)

// TestSeenDoesNotAllocate checks that once a Set has reached its size,
// Seen allocates nothing per message, new id or duplicate, across
// generation rotations by count and by time: the maps keep their memory
// and the id is kept as it is passed, not copied. (The race detector
// changes allocation counts, hence the build tag.)
func TestSeenDoesNotAllocate(t *testing.T) {
	const capacity = 1000
	ids := make([]string, 20*capacity)
	for i := range ids {
		ids[i] = strconv.Itoa(1795600000000000000+i) + "-1"
	}
	s := dedup.New(dedup.Config{Window: window, Capacity: capacity})
	now := t0
	i := 0
	seen := func() {
		id := ids[i%len(ids)]
		i++
		if i%(capacity/4) == 0 {
			// Alternate phases where time rotates the generations (ids
			// expire) and where their size does (ids are evicted).
			if i/(2*capacity)%2 == 0 {
				now = now.Add(window)
			} else {
				now = now.Add(window / 1000)
			}
		}
		s.Seen(id, now)
		s.Seen(id, now) // and a duplicate
	}
	for range 4 * capacity { // warm up: the maps grow to their size
		seen()
	}
	before := s.Stats()
	if allocs := testing.AllocsPerRun(4*capacity, seen); allocs != 0 {
		t.Errorf("Seen allocates %v times per new id and duplicate, want 0", allocs)
	}
	after := s.Stats()
	if after.Duplicates == before.Duplicates || after.Expired == before.Expired || after.Evicted == before.Evicted {
		t.Errorf("the measured run did not cover duplicates, expiry and eviction: %+v then %+v", before, after)
	}
}
