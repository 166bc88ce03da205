package timeline

import (
	"testing"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/policy"
)

// TestSwitchTimeEndsAtPromotion pins switch_ms, the quick start's and the
// compare table's switch time: from the transition that dials the
// candidate to the one that promotes it (overlap_done, the old link
// closed), not the welcome and not the next change of anything else.
func TestSwitchTimeEndsAtPromotion(t *testing.T) {
	ms := func(d int) time.Duration { return time.Duration(d) * time.Millisecond }
	tr := func(at int, p fsm.Path, prim, cand string, acts ...fsm.Action) Entry {
		return Entry{At: ms(at), Cycle: at / 1000, Kind: KindTransition, Primary: prim, Candidate: cand,
			Step: fsm.Step{Path: p, Actions: acts}}
	}
	entries := []Entry{
		tr(0, fsm.PathJoin, "a", "", fsm.PromoteCandidate),
		tr(3000, fsm.PathMigrate, "a", "b", fsm.DialCandidate, fsm.SendHello),
		tr(3050, fsm.PathMigrate, "a", "b", fsm.StartOverlap),
		tr(3210, fsm.PathMigrate, "b", "", fsm.PromoteCandidate, fsm.CloseOld),
		{At: ms(3300), Kind: KindFault, Reason: "a fault after the switch"},
		tr(4000, fsm.PathSettle, "b", ""),
	}
	sw := Switches(entries)
	if len(sw) != 1 || sw[0].From != "a" || sw[0].To != "b" || sw[0].Cause != fsm.PathMigrate || sw[0].Ms != 210 {
		t.Fatalf("Switches = %+v: want one policy switch a → b of 210 ms (dial at 3.000 s to promotion at 3.210 s)", sw)
	}
	migrations, times := SwitchStats(sw)
	if migrations != 1 || len(times) != 1 || times[0] != 210 {
		t.Fatalf("SwitchStats = %d, %v: want 1 migration, [210]", migrations, times)
	}
}

// TestPingPongWindowIsInclusive pins the ping-pong count: a policy
// migration back to the substrate the previous one left counts when
// m.Cycle-p.Cycle <= PingPongWindow (the policy package's definition),
// not one cycle later, and never for a forced move.
func TestPingPongWindowIsInclusive(t *testing.T) {
	w := policy.Config{}.WithDefaults().PingPongWindow
	for _, c := range []struct {
		gap   int
		cause fsm.Path
		want  int
	}{
		{w - 1, fsm.PathMigrate, 1},
		{w, fsm.PathMigrate, 1},
		{w + 1, fsm.PathMigrate, 0},
		{1, fsm.PathForced, 0},
	} {
		moves := []Switch{{Cycle: 10, From: "a", To: "b", Cause: fsm.PathMigrate}, {Cycle: 10 + c.gap, From: "b", To: "a", Cause: c.cause}}
		if got := PingPongs(moves, w); got != c.want {
			t.Errorf("back after %d cycles (%s), window %d: %d ping-pongs, want %d", c.gap, c.cause, w, got, c.want)
		}
	}
}

// TestOwedFromTheFirstForward pins "owed", the denominator of lost: a
// publication is owed from the instant a substrate of the node's enclave
// first forwarded to it, that instant included, and none before.
func TestOwedFromTheFirstForward(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if Owed(time.Time{}, t0) {
		t.Fatal("owed before the node was ever forwarded to")
	}
	for _, c := range []struct {
		at   time.Time
		want bool
	}{{t0.Add(-time.Nanosecond), false}, {t0, true}, {t0.Add(time.Second), true}} {
		if got := Owed(t0, c.at); got != c.want {
			t.Errorf("published at %v, joined at %v: owed %v, want %v", c.at.Sub(t0), time.Duration(0), got, c.want)
		}
	}
}

func TestPingPongsAndPercentiles(t *testing.T) {
	moves := []Switch{
		{Cycle: 5, From: "a", To: "b", Cause: fsm.PathMigrate},
		{Cycle: 8, From: "b", To: "a", Cause: fsm.PathMigrate},  // back within the window
		{Cycle: 40, From: "a", To: "b", Cause: fsm.PathMigrate}, // too late
		{Cycle: 42, From: "b", To: "a", Cause: fsm.PathForced},  // forced: not a flap
	}
	if n := PingPongs(moves, 8); n != 1 {
		t.Errorf("ping-pongs %d, want 1", n)
	}
	if p := Percentile([]float64{5, 1, 3, 2, 4}, 50); p != 3 {
		t.Errorf("p50 %v, want 3", p)
	}
	if p := Percentile([]float64{5, 1, 3, 2, 4}, 99); p != 5 {
		t.Errorf("p99 %v, want 5", p)
	}
	if p := Percentile(nil, 50); p != 0 {
		t.Errorf("p50 of nothing %v", p)
	}
}
