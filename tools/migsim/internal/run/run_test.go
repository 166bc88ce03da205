package run

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/repram/handover/tools/migsim/internal/scenario"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestShortScenarioCompare compares ours with the baselines on the short
// scenario in virtual time (deterministic and quick); TestBackendsAgree
// holds the virtual back-end to what real sockets do on the same scenario.
func TestShortScenarioCompare(t *testing.T) {
	t.Parallel()
	sc, err := scenario.LoadScenario("short")
	if err != nil {
		t.Fatal(err)
	}
	res, err := CompareVirtual(sc)
	if err != nil {
		t.Fatal(err)
	}
	ours, bbm, naive := res[0].Summary, res[1].Summary, res[2].Summary
	t.Logf("ours %+v\nbreak-before-make %+v\nnaive %+v", ours, bbm, naive)
	if ours.Published == 0 || ours.Owed == 0 {
		t.Fatalf("nothing published or owed: the run proves nothing: %+v", ours)
	}
	if ours.Lost != 0 || ours.DuplicatesDelivered != 0 || ours.Failed() {
		t.Errorf("ours: lost %d, duplicates delivered %d: want 0 and 0", ours.Lost, ours.DuplicatesDelivered)
	}
	if ours.Migrations < 2 || ours.Cancelled < 1 || ours.Accelerated < 1 || ours.PingPongs != 0 {
		t.Errorf("ours: migrations %d (≥2), cancelled %d (≥1), accelerated %d (≥1), ping-pongs %d (0)",
			ours.Migrations, ours.Cancelled, ours.Accelerated, ours.PingPongs)
	}
	if ours.SwitchMsP50 <= 0 || ours.SwitchMsP99 < ours.SwitchMsP50 {
		t.Errorf("ours: switch p50 %v p99 %v", ours.SwitchMsP50, ours.SwitchMsP99)
	}
	if bbm.Lost == 0 {
		t.Errorf("break-before-make lost nothing at %v msg/s: the baseline's gap is not real", sc.PublishRate)
	}
	if naive.PingPongs == 0 || naive.Switches <= ours.Switches {
		t.Errorf("naive: %d ping-pongs, %d switches (ours %d): want it to flap on the jitter", naive.PingPongs, naive.Switches, ours.Switches)
	}
	if naive.Lost != 0 {
		t.Errorf("naive make-before-break lost %d: flapping must still not lose gossip", naive.Lost)
	}
}

func TestFailed(t *testing.T) {
	if (Summary{Lost: 1}).Failed() != true || (Summary{DuplicatesDelivered: 1}).Failed() != true || (Summary{}).Failed() {
		t.Fatal("Failed must hold exactly when something was lost or duplicated")
	}
}

func TestOptions(t *testing.T) {
	o, err := Options{}.WithDefaults()
	if err != nil || o != Comparisons[0] {
		t.Errorf("defaults %+v, %v: want ours, %+v", o, err, Comparisons[0])
	}
	for _, bad := range []Options{{Strategy: "teleport"}, {Policy: "psychic"}} {
		if _, err := bad.WithDefaults(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
