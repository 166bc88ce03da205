package main

import (
	"context"
	"fmt"
	"io"

	"github.com/repram/handover/policy"
	"github.com/repram/handover/tools/migsim/internal/report"
	"github.com/repram/handover/tools/migsim/internal/run"
)

// runCmd is `migsim run`: one scenario, one strategy and policy, over
// loopback WebSockets or in virtual time.
func runCmd(ctx context.Context, args []string, out io.Writer) error {
	var (
		s             scenarioFlags
		strategy, pol string
		verbose       bool
		fs            = newFlagSet("run")
	)
	s.register(fs, "write a plot of the run to this SVG file",
		"virtual", "run in virtual time over simnet (the engine, no socket) instead of over loopback WebSockets")
	fs.StringVar(&strategy, "strategy", run.MakeBeforeBreak, "make-before-break or break-before-make")
	fs.StringVar(&pol, "policy", string(policy.Hysteresis), "hysteresis or naive")
	fs.BoolVar(&verbose, "v", false, "log the transport's transitions to stderr")
	fs.Usage = usage(fs, "migsim [run] [flags]", "Runs a transient node through a scenario (testdata/scenarios/README.md): timeline and summary.")
	if err := parse(fs, args); err != nil {
		return err
	}
	sc, err := s.load()
	if err != nil {
		return err
	}
	opt, err := run.Options{Strategy: strategy, Policy: policy.Strategy(pol), Logger: verboseLogger(verbose)}.WithDefaults()
	if err != nil {
		return err
	}
	if !s.json {
		report.WriteHeader(out, sc, opt)
	}
	var res *run.Result
	if s.virtual {
		res, err = run.Virtual(sc, opt)
	} else {
		res, err = run.Sockets(ctx, sc, opt)
	}
	if err != nil {
		return err
	}
	if s.json {
		if err := writeJSON(out, res.Summary); err != nil {
			return err
		}
	} else {
		report.WriteTimeline(out, res.Entries)
		report.WriteSummary(out, res.Summary)
	}
	if s.svg != "" {
		if err := report.WriteSVGFile(s.svg, res); err != nil {
			return err
		}
		if !s.json {
			fmt.Fprintf(out, "\nplot written to %s\n", s.svg)
		}
	}
	if res.Summary.Failed() {
		return errFailed
	}
	return nil
}
