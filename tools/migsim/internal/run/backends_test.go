package run

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/tools/migsim/internal/scenario"
	"github.com/repram/handover/tools/migsim/internal/timeline"
)

// steps is the timeline's transitions as (event, path, to) lines.
func steps(entries []timeline.Entry) []string {
	var out []string
	for _, e := range entries {
		if e.Kind == timeline.KindTransition {
			out = append(out, fmt.Sprintf("%s %s → %s (primary %s)", e.Step.Event, e.Step.Path, e.Step.To, e.Primary))
		}
	}
	return out
}

// TestBackendsAgree runs the tiny scenario (the short one's behaviours in
// 26 cycles of 30 ms: an enclave migration, a latency migration, a
// candidate refusing at capacity, then another taken while the old
// substrate dies mid-overlap) over real loopback WebSockets and in virtual
// time: the same transitions, event, path and target state, in the same
// order, and nothing lost or duplicated on either. Times differ (a
// virtual link's round trip is the scenario's latency, loopback's is not),
// so the comparison leaves them out.
func TestBackendsAgree(t *testing.T) {
	t.Parallel()
	sc, err := scenario.LoadScenario("tiny")
	if err != nil {
		t.Fatal(err)
	}
	v, err := Virtual(sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// On a loaded machine the scenario's last moves over sockets may come
	// after its last cycle: the run goes on (up to 2 s) until the node has
	// settled after as many transitions as in virtual time (bar the close),
	// or more: the comparison below decides.
	r, err := Sockets(context.Background(), sc, Options{SettleCycles: 2 * int(time.Second/sc.Cycle.D()),
		SettleTransitions: len(steps(v.Entries)) - 1})
	if err != nil {
		t.Fatal(err)
	}
	vs, rs := steps(v.Entries), steps(r.Entries)
	if !slices.Equal(vs, rs) {
		t.Fatalf("transitions differ:\nvirtual:\n  %s\nsockets:\n  %s", strings.Join(vs, "\n  "), strings.Join(rs, "\n  "))
	}
	for _, res := range []*Result{v, r} {
		s := res.Summary
		if s.Lost != 0 || s.DuplicatesDelivered != 0 || s.Owed == 0 {
			t.Errorf("%+v: want owed > 0, lost 0, duplicates 0", s)
		}
	}
	var paths []fsm.Path
	for _, e := range v.Entries {
		if e.Kind == timeline.KindTransition && !slices.Contains(paths, e.Step.Path) {
			paths = append(paths, e.Step.Path)
		}
	}
	for _, want := range []fsm.Path{fsm.PathMigrate, fsm.PathCancel, fsm.PathAccelerate} {
		if !slices.Contains(paths, want) {
			t.Errorf("paths %v: the scenario no longer exercises %s", paths, want)
		}
	}
}
