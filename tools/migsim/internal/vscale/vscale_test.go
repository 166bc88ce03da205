package vscale

import (
	"reflect"
	"testing"
	"time"
)

// small is a study small enough for every test run: 8 substrates of
// REPRAM's default 100 children, s0's 100 children rehome on its 4 peers
// at 5 s, another substrate churns at 7 s (one every 2 s while writes
// last, to 8 s) and is back at 9 s, noise bursts at 4 and 8 s.
func small(seed uint64) Config {
	return Config{Nodes: 400, Substrates: 8, Seed: seed, Duration: 10 * time.Second, Noise: 3, NoiseEvery: 4 * time.Second,
		NoiseFor: 2 * time.Second, Churn: 30, ChurnBack: 2 * time.Second}
}

func TestRunSeedReproduces(t *testing.T) {
	t.Parallel()
	a, err := Run(small(7))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(small(7))
	if err != nil {
		t.Fatal(err)
	}
	if a.Shutdowns != 2 {
		t.Fatalf("%d shutdowns: want s0's and one of churn, or the study does not reproduce churn", a.Shutdowns)
	}
	a.Wall, a.HeapBytes, b.Wall, b.HeapBytes = 0, 0, 0, 0
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("seed 7 twice:\n%+v\n%+v", a, b)
	}
	c, err := Run(small(8))
	if err != nil {
		t.Fatal(err)
	}
	c.Wall, c.HeapBytes, c.Config = 0, 0, a.Config
	if reflect.DeepEqual(a, c) {
		t.Fatal("seeds 7 and 8 gave the same study: the seed does not reach the network")
	}
}

func TestRunGracefulShutdownLosesNothing(t *testing.T) {
	t.Parallel()
	r, err := Run(Config{Nodes: 400, Substrates: 8, Duration: 10 * time.Second, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	r.Rehome = nil
	t.Logf("%+v", r)
	if r.MaxChildren != DefaultMaxChildren {
		t.Errorf("max children %d, want REPRAM's %d", r.MaxChildren, DefaultMaxChildren)
	}
	if r.Lost != 0 || r.Duplicates != 0 || r.Detached != 0 {
		t.Errorf("lost %d, duplicates %d, detached %d: want 0", r.Lost, r.Duplicates, r.Detached)
	}
	if r.Shutdowns != 1 || r.Rehomes != r.LoadBefore[0] || r.Rehomes == 0 {
		t.Errorf("%d rehomes after %d shutdowns: want s0's %d children rehomed once", r.Rehomes, r.Shutdowns, r.LoadBefore[0])
	}
	if len(r.LoadAfter) != 7 || r.LoadMaxAfter > r.MaxChildren || r.LoadMaxBefore > r.MaxChildren || r.LoadMeanBefore < 50 || r.LoadMeanBefore > 51 {
		t.Errorf("load before %v, after %v: want none over capacity, 7 live substrates after, a mean of 50 (51 with links in overlap)", r.LoadBefore, r.LoadAfter)
	}
	if r.RehomeP50 <= 0 || r.RehomeP50 > r.RehomeP99 || r.RehomeP99 > r.RehomeMax || r.RehomeMax > 2*time.Second {
		t.Errorf("rehome p50 %v p99 %v max %v", r.RehomeP50, r.RehomeP99, r.RehomeMax)
	}
	if r.Owed == 0 || r.Delivered < r.Owed {
		t.Errorf("owed %d delivered %d", r.Owed, r.Delivered)
	}
	// Over time: every migration counted falls in a bucket of the run, and
	// the forced moves come with s0's shutdown, not before.
	if len(r.MigrationsOver) != int(r.Config.Duration/Bucket) || len(r.MovesOver) != len(r.MigrationsOver) {
		t.Fatalf("%d and %d buckets of %v over %v", len(r.MigrationsOver), len(r.MovesOver), r.Bucket, r.Config.Duration)
	}
	sum := func(xs []int) int {
		n := 0
		for _, x := range xs {
			n += x
		}
		return n
	}
	shut := int(r.Config.Shutdown / Bucket)
	if got := sum(r.MigrationsOver); got != r.Migrations || r.Migrations == 0 {
		t.Errorf("migrations over time sum to %d, migrations %d", got, r.Migrations)
	}
	if before, after := sum(r.MovesOver[:shut]), sum(r.MovesOver[shut:]); before != 0 || after < r.Rehomes {
		t.Errorf("forced moves %d before s0's shutdown, %d after: want 0, then at least its %d rehomes", before, after, r.Rehomes)
	}
	// s0's children change primary by the time it closes, 500 ms after its
	// first goodbye (then a round trip at most).
	if closed := int((r.Config.Shutdown + 600*time.Millisecond) / Bucket); sum(r.MovesOver[shut:closed+1]) != sum(r.MovesOver) {
		t.Errorf("forced moves over time %v: want them all between s0's goodbye (bucket %d) and its close (bucket %d)", r.MovesOver, shut, closed)
	}
}

func TestBucketOf(t *testing.T) {
	for _, c := range []struct {
		at   time.Duration
		want int
	}{{0, 0}, {Bucket - 1, 0}, {Bucket, 1}, {3*Bucket + 1, 3}, {9 * Bucket, 3}} {
		if got := bucketOf(c.at, 4); got != c.want {
			t.Errorf("bucketOf(%v, 4) = %d, want %d", c.at, got, c.want)
		}
	}
}

func TestPingPongWindowIsInclusive(t *testing.T) {
	for _, c := range []struct {
		lastFrom, to int32
		gap          int64
		want         bool
	}{
		{3, 3, 7, true}, {3, 3, 8, true}, {3, 3, 9, false}, {3, 4, 1, false}, {-1, -1, 1, false},
	} {
		if got := isPingPong(c.lastFrom, c.to, 10, 10+c.gap, 8); got != c.want {
			t.Errorf("left %d, back to %d after %d cycles, window 8: ping-pong %v, want %v", c.lastFrom, c.to, c.gap, got, c.want)
		}
	}
}
