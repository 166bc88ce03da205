package sockscale

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestScaleMassMigration(t *testing.T) {
	t.Parallel()
	// REPRAM's goodbye gap, 500 ms, and nodes few enough to handshake well
	// within it under -race on two cores (25 have taken over 300 ms there).
	// Ten are a mass migration as far as the protocol goes (each rehomes on
	// its own); migsim scale -sockets takes the number.
	const n, gap = 10, 500 * time.Millisecond
	res, err := Run(context.Background(), Config{Nodes: n, PublishRate: 50, GoodbyeGap: gap, Settle: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rehomed != n || res.DuplicatesDelivered != 0 || res.Published == 0 {
		t.Fatalf("%+v: want all %d rehomed, something published, nothing duplicated", res, n)
	}
	// Nothing may be lost when every node was welcomed elsewhere before the
	// leaving substrate closed; on a machine too loaded for that, a node
	// welcomed later honestly misses what was published in between.
	if gap := float64(gap.Milliseconds()); res.WelcomeMsMax < gap && res.Lost != 0 {
		t.Errorf("%+v: every welcome within the %v ms goodbye gap, yet %d lost", res, gap, res.Lost)
	} else if res.WelcomeMsMax >= gap {
		t.Logf("welcome max %v ms ≥ the %v ms goodbye gap (machine overloaded): %d lost, not asserted", res.WelcomeMsMax, gap, res.Lost)
	}
	if res.Migrations+res.Accelerated+res.ContinuedAlone != n {
		t.Errorf("%+v: want one switch per node", res)
	}
	if res.WelcomeSamples != n || res.WelcomeMsP50 <= 0 {
		t.Errorf("%d welcome times, p50 %v ms: want one per node", res.WelcomeSamples, res.WelcomeMsP50)
	}
}

// TestScaleLeavingClosesMidOverlap: with a goodbye gap shorter than the
// minimum overlap, the leaving substrate closes while the nodes overlap
// or handshake, so they accelerate or continue alone; none may be left
// behind or get a message twice. (Loss is possible here by design: a node
// welcomed after the close misses what was published in between.)
func TestScaleLeavingClosesMidOverlap(t *testing.T) {
	t.Parallel()
	res, err := Run(context.Background(), Config{Nodes: 10, PublishRate: 50, GoodbyeGap: 100 * time.Millisecond, Settle: 75 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rehomed != 10 || res.DuplicatesDelivered != 0 || res.Accelerated+res.ContinuedAlone == 0 {
		t.Fatalf("%+v: want all 10 rehomed, no duplicates, and the close to land mid-migration", res)
	}
}
