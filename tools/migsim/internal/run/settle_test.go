package run

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/tools/migsim/internal/scenario"
	"github.com/repram/handover/tools/migsim/internal/timeline"
)

// settleScenario is a node on "a" (30 ms) for six cycles of 30 ms, with
// "b" dropping from 40 to 10 ms at cycle drop: with a streak of two, the
// policy asks to migrate at cycle drop+1, then the node handshakes,
// overlaps, and cools down for two more observations before it is
// attached again.
func settleScenario(t *testing.T, drop int) *scenario.Scenario {
	t.Helper()
	sc, err := scenario.ParseScenario(fmt.Appendf(nil, `{
  "name": "settle", "node": {"id": "t1", "enclave": "eu"}, "secret": "s",
  "cycle": "30ms", "cycles": 6, "publish_rate": 0, "seed": 1, "start": "a",
  "transport": {"handshake_timeout": "1s", "overlap_grace": "30ms", "overlap_floor": "30ms",
    "overlap_max": "800ms", "heartbeat": "500ms", "goodbye_gap": "20ms"},
  "policy": {"improvement": 0.25, "streak": 2, "cooldown_cycles": 1},
  "substrates": [
    {"id": "a", "enclave": "eu", "delay": "1ms", "latency": [{"from": 1, "latency": "30ms"}]},
    {"id": "b", "enclave": "eu", "delay": "1ms", "latency": [{"from": 1, "latency": "40ms"}, {"from": %d, "latency": "10ms"}]}
  ]}`, drop))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// TestSocketsSettle: a run over sockets goes on past the scenario's last
// cycle until the node is attached again and has made SettleTransitions
// transitions. Each case leaves the node short of one of these at the last
// cycle, deterministically (the policy's streak and the cooldown count
// observations, not time): stopping there would end the timeline before
// cooldown_elapsed brings it back to attached.
func TestSocketsSettle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		drop        int // the cycle b drops to 10 ms
		transitions int // Options.SettleTransitions
	}{
		// The policy asks to migrate at the last cycle: the node is
		// handshaking then, and in cooldown (no candidate, not attached)
		// for at least one observation after the overlap.
		{"migrating at the last cycle", 5, 0},
		// The policy asks to migrate only after the last cycle: the node is
		// attached with no candidate there, but has made two transitions
		// (attach, welcome) of the six it owes.
		{"attached at the last cycle, transitions still owed", 6, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sc := settleScenario(t, tt.drop)
			r, err := Sockets(context.Background(), sc, Options{SettleCycles: int(2 * time.Second / sc.Cycle.D()), SettleTransitions: tt.transitions})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			var last timeline.Entry
			for _, e := range r.Entries {
				if e.Kind == timeline.KindTransition && e.Step.Event != fsm.Close {
					got = append(got, fmt.Sprintf("%s %s → %s", e.Step.Event, e.Step.Path, e.Step.To))
					last = e
				}
			}
			want := []string{"attach join → joining", "handshake_ok join → attached",
				"candidate_better migrate → handshaking", "handshake_ok migrate → overlapping",
				"overlap_done migrate → cooldown", "cooldown_elapsed settle → attached"}
			if strings.Join(got, "\n") != strings.Join(want, "\n") || last.Primary != "b" {
				t.Errorf("transitions before the close:\n  %s\nwant (ending attached to b):\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}
