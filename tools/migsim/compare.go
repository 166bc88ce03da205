package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/repram/handover/tools/migsim/internal/report"
	"github.com/repram/handover/tools/migsim/internal/run"
)

// compareCmd is `migsim compare`: ours and both baselines on one scenario,
// over loopback WebSockets (and with -with-virtual in virtual time too).
func compareCmd(ctx context.Context, args []string, out io.Writer) error {
	var (
		s  scenarioFlags
		fs = newFlagSet("compare")
	)
	s.register(fs, "write a plot of each socket run: FILE for ours, then the baselines' strategy or policy before the extension (run.svg, run-break-before-make.svg, run-naive.svg)",
		"with-virtual", "add the same three runs in virtual time over simnet below the socket ones")
	fs.Usage = usage(fs, "migsim compare [flags]", "Runs ours, break-before-make and naive on one scenario at once and prints one table.")
	if err := parse(fs, args); err != nil {
		return err
	}
	sc, err := s.load()
	if err != nil {
		return err
	}
	if !s.json {
		report.WriteHeader(out, sc, run.Comparisons[0])
		fmt.Fprintf(out, "running %d strategies side by side on the same scenario (%v)…\n\n", len(run.Comparisons),
			time.Duration(sc.Cycles)*sc.Cycle.D())
	}
	res, err := run.Compare(ctx, sc)
	if err != nil {
		return err
	}
	if s.virtual {
		v, err := run.CompareVirtual(sc)
		if err != nil {
			return err
		}
		res = append(res, v...)
	}
	if s.json {
		var runs []run.Summary
		for _, r := range res {
			runs = append(runs, r.Summary)
		}
		if err := writeJSON(out, struct {
			Runs []run.Summary `json:"runs"`
		}{runs}); err != nil {
			return err
		}
	} else {
		report.WriteComparison(out, res)
	}
	if s.svg != "" {
		for i, r := range res[:len(run.Comparisons)] {
			name := report.ComparisonSVG(s.svg, i)
			if err := report.WriteSVGFile(name, r); err != nil {
				return err
			}
			if !s.json {
				fmt.Fprintf(out, "plot of %s written to %s\n", run.Comparisons[i].Label(), name)
			}
		}
	}
	for _, r := range res {
		if r.Options == run.Comparisons[0] && r.Summary.Failed() {
			return errFailed
		}
	}
	return nil
}
