package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/repram/handover/policy"
)

// comparisons are the runs of -compare: ours first, then the baselines.
var comparisons = []Options{
	{Strategy: MakeBeforeBreak, Policy: policy.Hysteresis},
	{Strategy: BreakBeforeMake, Policy: policy.Hysteresis},
	{Strategy: MakeBeforeBreak, Policy: policy.Naive},
}

// Compare runs the scenario with ours and with each baseline, at the same
// time (each on its own mesh), and returns their results in comparisons'
// order.
func Compare(ctx context.Context, sc *Scenario) ([]*Result, error) {
	res := make([]*Result, len(comparisons))
	errs := make([]error, len(comparisons))
	var wg sync.WaitGroup
	for i, opt := range comparisons {
		wg.Go(func() { res[i], errs[i] = Run(ctx, sc, opt) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("%s: %w", comparisons[i].Label(), err)
		}
	}
	return res, nil
}

func runCompare(ctx context.Context, sc *Scenario, f flags, out io.Writer) error {
	if !f.json {
		WriteHeader(out, sc, comparisons[0])
		fmt.Fprintf(out, "running %d strategies side by side on the same scenario (%v)…\n\n", len(comparisons),
			time.Duration(sc.Cycles)*sc.Cycle.D())
	}
	res, err := Compare(ctx, sc)
	if err != nil {
		return err
	}
	if f.virtual {
		for _, opt := range comparisons {
			v, err := RunVirtual(sc, opt)
			if err != nil {
				return fmt.Errorf("%s in virtual time: %w", opt.Label(), err)
			}
			res = append(res, v)
		}
	}
	if f.json {
		var runs []Summary
		for _, r := range res {
			runs = append(runs, r.Summary)
		}
		if err := WriteJSON(out, struct {
			Runs []Summary `json:"runs"`
		}{runs}); err != nil {
			return err
		}
	} else {
		WriteComparison(out, res)
	}
	if f.svg != "" {
		for i, r := range res[:len(comparisons)] {
			name := comparisonSVG(f.svg, i)
			if err := writeSVGFile(name, r); err != nil {
				return err
			}
			if !f.json {
				fmt.Fprintf(out, "plot of %s written to %s\n", comparisons[i].Label(), name)
			}
		}
	}
	for _, r := range res {
		if r.Options == comparisons[0] && r.Summary.Failed() {
			return errFailed
		}
	}
	return nil
}

// comparisonSVG names the plot of comparison i: ours gets name itself, a
// baseline name with its strategy or policy before the extension
// (run.svg → run-break-before-make.svg, run-naive.svg).
func comparisonSVG(name string, i int) string {
	if i == 0 {
		return name
	}
	o := comparisons[i]
	tag := o.Strategy
	if o.Strategy == comparisons[0].Strategy {
		tag = string(o.Policy)
	}
	ext := filepath.Ext(name)
	return strings.TrimSuffix(name, ext) + "-" + tag + ext
}

// WriteComparison prints one table of the runs.
func WriteComparison(w io.Writer, res []*Result) {
	rows := [][]string{{"strategy", "lost", "dup delivered", "flaps (ping-pongs)", "switches", "migrations", "cancelled", "accelerated", "switch ms p50"}}
	for _, r := range res {
		s := r.Summary
		label := r.Options.Label()
		if r.Options == comparisons[0] {
			label += " (ours)"
		}
		if r.Virtual {
			label += ", virtual time"
		}
		rows = append(rows, []string{label, fmt.Sprintf("%d / %d", s.Lost, s.Owed), fmt.Sprint(s.DuplicatesDelivered),
			fmt.Sprint(s.PingPongs), fmt.Sprint(s.Switches), fmt.Sprint(s.Migrations), fmt.Sprint(s.Cancelled),
			fmt.Sprint(s.Accelerated), fmt.Sprint(s.SwitchMsP50)})
	}
	writeColumns(w, rows, 0)
	fmt.Fprintln(w, "\nlost: owed messages (published once the node's enclave forwarded to it) never delivered.")
	fmt.Fprintln(w, "flaps: returns to the substrate just left within the policy's ping-pong window.")
	fmt.Fprintln(w, "break-before-make's switch time is the gap with no link at all; make-before-break's is overlap, gossip flowing.")
}
