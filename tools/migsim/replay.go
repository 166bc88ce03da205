package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/repram/handover/policy"
	"github.com/repram/handover/tools/migsim/internal/replay"
	"github.com/repram/handover/tools/migsim/internal/scenario"
)

// replayCmd is `migsim replay`: a latency trace through the policy alone.
func replayCmd(_ context.Context, args []string, out io.Writer) error {
	var (
		path, filter string
		asJSON       bool
		pf           policyFlags
		fs           = newFlagSet("replay")
	)
	fs.StringVar(&path, "replay", "", "the latency trace to replay (testdata/traces)")
	fs.StringVar(&filter, "filter", "", "the policy's measurement filter, robust or none (default robust; raw and naive are replayed beside it)")
	fs.BoolVar(&asJSON, "json", false, "print the reports as one JSON object")
	pf.register(fs)
	fs.Usage = usage(fs, "migsim replay -replay FILE [flags]", "Replays a latency trace (testdata/traces) through the policy alone, no network.")
	if err := parse(fs, args); err != nil {
		return err
	}
	if path == "" {
		return errors.New("migsim replay: name the trace with -replay FILE (testdata/traces)")
	}
	var pc scenario.PolicyConfig
	pf.apply(&pc)
	cfg := pc.Config()
	if filter != "" {
		fl, err := policy.ParseFilter(filter)
		if err != nil {
			return fmt.Errorf("-filter: %w", err)
		}
		cfg.Filter = fl
	}
	tr, reps, err := replay.Reports(path, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		return replay.WriteJSON(out, path, reps)
	}
	replay.Write(out, path, tr, reps)
	return nil
}
