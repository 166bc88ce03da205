package transport

import (
	"errors"
	"testing"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport/substratetest"
)

func TestSubstrateIdentityRefused(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.Identity.AcceptsInbound = true
	if _, err := New(cfg); !errors.Is(err, ErrSubstrateIdentity) {
		t.Fatalf("New(substrate identity) = %v, want ErrSubstrateIdentity", err)
	}
}

func TestMigrationWithOverlapLosesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fastConfig())
	a := h.start("sub-a", 0)
	// The new substrate hears gossip later than the old one, so closing
	// the old link before the new one caught up would lose messages. (10ms
	// later: the overlap's margin follows that skew.)
	b := h.start("sub-b", 10*time.Millisecond)
	h.attach(a)
	h.settle()
	stop := h.publishing(2 * time.Millisecond)
	h.publishMore(10)

	if d := h.observe(map[*substratetest.Server]time.Duration{b: 10 * time.Millisecond}); d.Event != "" {
		t.Fatalf("first qualifying cycle decided %q, want nothing", d.Event)
	}
	if st := h.node.Status(); st.State != fsm.Attached || st.Primary.ID != "sub-a" {
		t.Fatalf("after one cycle: %s on %q, want attached on sub-a", st.State, st.Primary.ID)
	}
	if d := h.observe(map[*substratetest.Server]time.Duration{b: 10 * time.Millisecond}); d.Event != fsm.CandidateBetter {
		t.Fatalf("second qualifying cycle decided %q, want candidate_better", d.Event)
	}
	h.waitAttached("sub-b")
	h.publishMore(10)
	stop()
	h.exactlyOnce()

	st := h.node.Status()
	if st.Stats.Migrations != 1 || st.Stats.Cancelled != 0 || st.Stats.Accelerated != 0 {
		t.Errorf("stats %+v, want exactly one completed migration", st.Stats)
	}
	if !h.took(fsm.OverlapDone, fsm.Cooldown) {
		t.Errorf("the old link was not closed by overlap_done:\n%s", h.timeline())
	}
	if st.Stats.DuplicatesDropped == 0 {
		t.Error("no duplicate dropped: the links never overlapped")
	}
}

// TestCooldownHoldsOffTheNextMigration: after a migration, a candidate that qualifies
// in the two cycles that follow does not migrate (the first ends the
// partial cycle of the switch, the second is the cooldown's full cycle);
// two qualifying cycles after the cooldown do.
func TestCooldownHoldsOffTheNextMigration(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fastConfig())
	a, b, c := h.start("sub-a", 0), h.start("sub-b", 0), h.start("sub-c", 0)
	h.attach(a)
	h.settle()
	stop := h.publishing(2 * time.Millisecond)
	h.observe(map[*substratetest.Server]time.Duration{b: 10 * time.Millisecond})
	if d := h.observe(map[*substratetest.Server]time.Duration{b: 10 * time.Millisecond}); d.Event != fsm.CandidateBetter {
		t.Fatalf("migration to sub-b: decided %q, want candidate_better", d.Event)
	}
	h.waitAttached("sub-b")

	better := map[*substratetest.Server]time.Duration{c: 10 * time.Millisecond}
	for i, want := range []fsm.Event{"", fsm.CooldownElapsed, "", fsm.CandidateBetter} {
		if st := h.node.Status(); st.Primary.ID != "sub-b" {
			t.Fatalf("cycle %d after the switch: primary %q, want sub-b", i+1, st.Primary.ID)
		}
		if d := h.observe(better); d.Event != want {
			t.Fatalf("cycle %d after the switch: decided %q (%s), want %q", i+1, d.Event, d.Reason, want)
		}
	}
	h.waitAttached("sub-c")
	stop()
	h.exactlyOnce()
	if st := h.node.Status(); st.Stats.Migrations != 2 {
		t.Errorf("stats %+v, want two completed migrations", st.Stats)
	}
}
