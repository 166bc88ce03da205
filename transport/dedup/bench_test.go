package dedup_test

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/repram/handover/transport/dedup"
)

// benchIDs returns n ids shaped like REPRAM's, UNIXNANO-COUNTER.
func benchIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = strconv.FormatInt(1795600000000000000+int64(i)*1000, 10) + "-" + strconv.Itoa(i)
	}
	return ids
}

// BenchmarkSeen measures one Seen call on a duplicate (hit) and on a new id
// (miss) in a Set at its default size; a miss includes its share of the
// generation rotations.
func BenchmarkSeen(b *testing.B) {
	now := time.Unix(1795600000, 0)
	b.Run("hit", func(b *testing.B) {
		ids := benchIDs(1000)
		s := dedup.New(dedup.Config{})
		for _, id := range ids {
			s.Seen(id, now)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if !s.Seen(ids[i%len(ids)], now) {
				b.Fatal("miss")
			}
			i++
		}
	})
	b.Run("miss", func(b *testing.B) {
		// More ids than the Set holds, so every call is a miss.
		ids := benchIDs(4 * dedup.DefaultCapacity)
		s := dedup.New(dedup.Config{})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if s.Seen(ids[i%len(ids)], now) {
				b.Fatal("hit")
			}
			i++
		}
	})
}

// BenchmarkMemory reports the heap bytes per id of a Set filled to its
// default Capacity, next to a plain map[string]struct{} holding the same ids
// as the baseline. The ids' own bytes are allocated beforehand and not
// counted.
func BenchmarkMemory(b *testing.B) {
	ids := benchIDs(dedup.DefaultCapacity)
	now := time.Unix(1795600000, 0)
	measure := func(b *testing.B, fill func() (held int, keep any)) {
		var perEntry float64
		for b.Loop() {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			held, keep := fill()
			runtime.GC()
			runtime.ReadMemStats(&after)
			perEntry = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(held)
			runtime.KeepAlive(keep)
		}
		b.ReportMetric(perEntry, "B/entry")
	}
	b.Run("set", func(b *testing.B) {
		measure(b, func() (int, any) {
			s := dedup.New(dedup.Config{})
			for _, id := range ids {
				s.Seen(id, now)
			}
			if s.Len() != len(ids) {
				b.Fatalf("Len = %d, want %d", s.Len(), len(ids))
			}
			return s.Len(), s
		})
	})
	b.Run("map-baseline", func(b *testing.B) {
		measure(b, func() (int, any) {
			m := make(map[string]struct{})
			for _, id := range ids {
				m[id] = struct{}{}
			}
			return len(m), m
		})
	})
}
