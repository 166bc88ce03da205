package dedup_test

import (
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/repram/handover/transport/dedup"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 11, 25, 19, 0, 0, 0, time.UTC)

const window = 10 * time.Second

func at(d time.Duration) time.Time { return t0.Add(d) }

func TestDuplicateWithinWindow(t *testing.T) {
	s := dedup.New(dedup.Config{Window: window, Capacity: 100})
	if s.Seen("a", at(0)) {
		t.Fatal("first sighting of a reported as a duplicate")
	}
	if s.Seen("b", at(time.Second)) {
		t.Fatal("first sighting of b reported as a duplicate")
	}
	for _, d := range []time.Duration{0, time.Second, window / 2, window - 1, window} {
		if !s.Seen("a", at(d)) {
			t.Errorf("a not a duplicate at +%v", d)
		}
	}
	if got := s.Stats().Duplicates; got != 5 {
		t.Errorf("Duplicates = %d, want 5", got)
	}
	if s.Len() != 2 {
		t.Errorf("Len = %d, want 2", s.Len())
	}
}

// TestWindowBounds checks, for ids seen at every offset of a generation and
// every pattern of other traffic in between (none, one id at any point, a
// steady stream), that each is a duplicate up to t+Window and forgotten from
// t+2*Window on.
func TestWindowBounds(t *testing.T) {
	const step = window / 8
	for first := time.Duration(0); first < 3*window; first += step {
		for probe := first; probe <= first+2*window; probe += step {
			var patterns [][]time.Duration
			patterns = append(patterns, nil)
			var stream []time.Duration
			for d := first; d < probe; d += step / 2 {
				patterns = append(patterns, []time.Duration{d})
				stream = append(stream, d)
			}
			patterns = append(patterns, stream)
			for _, others := range patterns {
				s := dedup.New(dedup.Config{Window: window, Capacity: 1000})
				s.Seen("first", at(0)) // starts the generations at 0
				s.Seen("id", at(first))
				for i, d := range others {
					s.Seen("other-"+strconv.Itoa(i), at(d))
				}
				dup := s.Seen("id", at(probe))
				age := probe - first
				switch {
				case age <= window && !dup:
					t.Errorf("id seen at +%v forgotten at +%v (age %v <= window), others at %v", first, probe, age, others)
				case age >= 2*window && dup:
					t.Errorf("id seen at +%v still remembered at +%v (age %v >= 2 windows), others at %v", first, probe, age, others)
				}
			}
		}
	}
}

func TestForgottenAfterWindow(t *testing.T) {
	s := dedup.New(dedup.Config{Window: window, Capacity: 100})
	s.Seen("a", at(0))
	s.Seen("b", at(0))
	if s.Seen("a", at(2*window)) {
		t.Error("a still a duplicate 2 windows later")
	}
	// b was forgotten by the same call; a was recorded again.
	if s.Len() != 1 {
		t.Errorf("Len = %d, want 1", s.Len())
	}
	if st := s.Stats(); st.Expired != 2 || st.Evicted != 0 || st.Duplicates != 0 {
		t.Errorf("Stats = %+v, want 2 expired", st)
	}
}

// TestDuplicateRefreshes checks a duplicate counts as a new sighting: an id
// that keeps arriving is never forgotten.
func TestDuplicateRefreshes(t *testing.T) {
	s := dedup.New(dedup.Config{Window: window, Capacity: 100})
	s.Seen("loop", at(0))
	for d := window * 9 / 10; d < 20*window; d += window * 9 / 10 {
		if !s.Seen("loop", at(d)) {
			t.Fatalf("loop forgotten at +%v, last seen %v earlier", d, window*9/10)
		}
		if s.Len() != 1 {
			t.Fatalf("Len = %d at +%v, want 1 (an id is held once)", s.Len(), d)
		}
	}
}

func TestEmptyIDAlwaysDelivered(t *testing.T) {
	s := dedup.New(dedup.Config{Window: window, Capacity: 100})
	for i := range 3 {
		if s.Seen("", at(time.Duration(i))) {
			t.Fatal(`"" reported as a duplicate`)
		}
	}
	if s.Len() != 0 || s.Stats() != (dedup.Stats{}) {
		t.Errorf(`"" was recorded: Len %d, Stats %+v`, s.Len(), s.Stats())
	}
}

// TestFlood sends 100 times Capacity unique ids at one instant: Len never exceeds
// Capacity, and the newest Capacity/2 ids are still remembered.
func TestFlood(t *testing.T) {
	const capacity = 1000
	const n = 100 * capacity
	s := dedup.New(dedup.Config{Window: window, Capacity: capacity})
	now := at(0)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = strconv.Itoa(i)
	}
	for i, id := range ids {
		if s.Seen(id, now) {
			t.Fatalf("unique id %s reported as a duplicate", id)
		}
		if s.Len() > capacity {
			t.Fatalf("Len = %d after %d ids, Capacity is %d", s.Len(), i+1, capacity)
		}
	}
	for _, id := range ids[n-capacity/2:] {
		if !s.Seen(id, now) {
			t.Fatalf("id %s, among the newest Capacity/2, was forgotten", id)
		}
	}
	st := s.Stats()
	if st.Evicted+uint64(s.Len()) != n || st.Expired != 0 {
		t.Errorf("Stats = %+v, Len %d: want evicted + held = %d, none expired", st, s.Len(), n)
	}
}

// TestFloodOverTime sends unique ids over many windows, faster than Capacity
// allows: memory stays bounded and duplicates inside the window still count.
func TestFloodOverTime(t *testing.T) {
	const capacity = 100
	s := dedup.New(dedup.Config{Window: window, Capacity: capacity})
	for i := range 10_000 {
		now := at(time.Duration(i) * window / 70) // ~70 ids a window
		id := strconv.Itoa(i)
		if s.Seen(id, now) {
			t.Fatalf("unique id %s reported as a duplicate", id)
		}
		if !s.Seen(id, now.Add(window)) {
			t.Fatalf("id %s forgotten within its window", id)
		}
		if s.Len() > capacity {
			t.Fatalf("Len = %d, Capacity is %d", s.Len(), capacity)
		}
	}
}

func TestDefaults(t *testing.T) {
	s := dedup.New(dedup.Config{})
	s.Seen("a", at(0))
	if !s.Seen("a", at(dedup.DefaultWindow)) {
		t.Error("a forgotten within the default window")
	}
	for i := range dedup.DefaultCapacity + 10 {
		s.Seen(strconv.Itoa(i), at(dedup.DefaultWindow))
	}
	if s.Len() > dedup.DefaultCapacity {
		t.Errorf("Len = %d, want at most the default capacity %d", s.Len(), dedup.DefaultCapacity)
	}
}

func TestSmallestCapacity(t *testing.T) {
	s := dedup.New(dedup.Config{Window: window, Capacity: 2})
	s.Seen("a", at(0))
	s.Seen("b", at(0))
	if !s.Seen("b", at(0)) {
		t.Error("b forgotten with Capacity 2")
	}
	s.Seen("c", at(0))
	if s.Len() > 2 {
		t.Errorf("Len = %d, Capacity is 2", s.Len())
	}
}

func TestClockGoingBackwards(t *testing.T) {
	s := dedup.New(dedup.Config{Window: window, Capacity: 100})
	s.Seen("a", at(time.Hour))
	if !s.Seen("a", at(0)) {
		t.Error("a forgotten when time went backwards")
	}
	if !s.Seen("a", at(time.Hour+window)) {
		t.Error("a forgotten within its window")
	}
}

func TestNewPanicsOnInvalidConfig(t *testing.T) {
	for _, cfg := range []dedup.Config{{Window: -1}, {Capacity: -1}, {Capacity: 1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%+v) did not panic", cfg)
				}
			}()
			dedup.New(cfg)
		}()
	}
}
