package transport

import (
	"errors"
	"testing"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport/substratetest"
)

func TestSubstrateIdentityRefused(t *testing.T) {
	cfg := fastConfig()
	cfg.Identity.AcceptsInbound = true
	if _, err := New(cfg); !errors.Is(err, ErrSubstrateIdentity) {
		t.Fatalf("New(substrate identity) = %v, want ErrSubstrateIdentity", err)
	}
}

func TestMigrationWithOverlapLosesNothing(t *testing.T) {
	h := newHarness(t, fastConfig())
	a := h.start("sub-a", 0)
	// The new substrate hears gossip later than the old one, so closing
	// the old link before the new one caught up would lose messages.
	b := h.start("sub-b", 30*time.Millisecond)
	h.attach(a)
	h.settle()
	stop := h.publishing(2 * time.Millisecond)
	time.Sleep(50 * time.Millisecond)

	if d := h.observe(map[*substratetest.Substrate]time.Duration{b: 10 * time.Millisecond}); d.Event != "" {
		t.Fatalf("first qualifying cycle decided %q, want nothing", d.Event)
	}
	if st := h.node.Status(); st.State != fsm.Attached || st.Primary.ID != "sub-a" {
		t.Fatalf("after one cycle: %s on %q, want attached on sub-a", st.State, st.Primary.ID)
	}
	if d := h.observe(map[*substratetest.Substrate]time.Duration{b: 10 * time.Millisecond}); d.Event != fsm.CandidateBetter {
		t.Fatalf("second qualifying cycle decided %q, want candidate_better", d.Event)
	}
	h.waitAttached("sub-b")
	time.Sleep(50 * time.Millisecond)
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
