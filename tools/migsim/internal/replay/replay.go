// Package replay replays a latency trace (testdata/traces) through the
// policy alone, no network — migsim replay — and prints how the hysteresis
// policy, the same rule on raw samples and the naive baseline fared.
package replay

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/repram/handover/policy"
	"github.com/repram/handover/tools/migsim/internal/table"
)

// Reports replays a trace through the hysteresis policy with cfg, then,
// when cfg filters, through the same policy on raw samples, and through the
// naive baseline: the policy alone, no network.
func Reports(path string, cfg policy.Config) (policy.Trace, []policy.Report, error) {
	fh, err := os.Open(path)
	if err != nil {
		return policy.Trace{}, nil, fmt.Errorf("replay: %w", err)
	}
	defer fh.Close()
	tr, err := policy.ParseTrace(fh)
	if err != nil {
		return policy.Trace{}, nil, fmt.Errorf("replay %s: %w", path, err)
	}
	type run struct {
		s   policy.Strategy
		cfg policy.Config
	}
	runs := []run{{policy.Hysteresis, cfg}}
	if cfg.WithDefaults().Filter != policy.FilterNone {
		raw := cfg
		raw.Filter = policy.FilterNone
		runs = append(runs, run{policy.Hysteresis, raw})
	}
	runs = append(runs, run{policy.Naive, cfg})
	var out []policy.Report
	for _, rn := range runs {
		r, err := policy.Replay(tr, rn.cfg, rn.s)
		if err != nil {
			return tr, nil, fmt.Errorf("replay %s: %w", path, err)
		}
		out = append(out, r)
	}
	return tr, out, nil
}

// WriteJSON writes the reports of trace path as one JSON object.
func WriteJSON(w io.Writer, path string, reps []policy.Report) error {
	type row struct {
		Strategy        policy.Strategy `json:"strategy"`
		Filter          policy.Filter   `json:"filter,omitempty"`
		Improvement     float64         `json:"improvement"`
		Streak          int             `json:"streak"`
		Cycles          int             `json:"cycles"`
		Migrations      int             `json:"migrations"`
		PingPongs       int             `json:"ping_pongs"`
		Forced          int             `json:"forced"`
		ReactionCycles  []int           `json:"reaction_cycles"`
		CyclesOnNonBest int             `json:"cycles_on_non_best"`
		Final           string          `json:"final"`
	}
	var rows []row
	for _, r := range reps {
		var fl policy.Filter
		if r.Strategy == policy.Hysteresis {
			fl = r.Config.Filter
		}
		rows = append(rows, row{r.Strategy, fl, r.Config.Improvement, r.Config.Streak, r.Cycles, r.Migrations, r.PingPongs,
			r.Forced, r.ReactionCycles, r.CyclesOnNonBest, r.Final})
	}
	return json.NewEncoder(w).Encode(struct {
		Trace string `json:"trace"`
		Runs  []row  `json:"runs"`
	}{path, rows})
}

// Write prints the reports of trace tr, read from path: the policy's
// settings, one row per strategy, and the moves of the first.
func Write(w io.Writer, path string, tr policy.Trace, reps []policy.Report) {
	c := reps[0].Config
	fmt.Fprintf(w, "replay %s: %d cycles, node in enclave %q, starts on %s, %d real step change(s) marked\n",
		path, len(tr.Cycles), tr.Enclave, tr.Start, len(tr.Steps))
	fmt.Fprintf(w, "policy: improvement %.0f%%, streak %d cycles, cooldown %d, backoff %d..%d, ping-pong window %d\n",
		c.Improvement*100, c.Streak, c.CooldownCycles, c.BackoffCycles, c.BackoffMaxCycles, c.PingPongWindow)
	if c.Filter == policy.FilterNone {
		fmt.Fprintf(w, "filter: none (raw samples)\n\n")
	} else {
		fmt.Fprintf(w, "filter: %s (k %d, noise margin %g standard errors, at least %v faster, forgotten after %d missed cycles)\n\n",
			c.Filter, c.FilterK, c.NoiseMargin, c.MinDifference, c.MaxMissedCycles)
	}
	rows := [][]string{{"strategy", "migrations", "ping-pongs", "forced", "reaction (cycles per step)", "cycles on non-best", "ends on"}}
	for _, r := range reps {
		react := "-"
		if len(r.ReactionCycles) > 0 {
			react = fmt.Sprint(r.ReactionCycles)
		}
		rows = append(rows, []string{r.Label(), fmt.Sprint(r.Migrations), fmt.Sprint(r.PingPongs), fmt.Sprint(r.Forced),
			react, fmt.Sprintf("%d / %d", r.CyclesOnNonBest, r.Cycles), r.Final})
	}
	table.Write(w, rows, 0)
	fmt.Fprintln(w, "\nreaction: cycles of the new situation observed up to the deciding one (-1: never migrated).")
	if len(reps[0].Moves) > 0 {
		fmt.Fprintf(w, "\n%s moves:\n", reps[0].Label())
		for _, m := range reps[0].Moves {
			tag := ""
			if m.PingPong {
				tag = " [ping-pong]"
			}
			if m.Forced {
				tag = " [forced]"
			}
			fmt.Fprintf(w, "  cycle %4d  %s → %s%s  %s\n", m.Cycle, m.From, m.To, tag, m.Reason)
		}
	}
}
