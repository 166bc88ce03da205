package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/repram/handover/tools/migsim/internal/live"
	"github.com/repram/handover/tools/migsim/internal/report"
)

// liveCmd is `migsim live`: one real node against running substrates.
func liveCmd(ctx context.Context, args []string, out io.Writer) error {
	var (
		connect, secret string
		asJSON, verbose bool
		cfg             live.Config
		fs              = newFlagSet("live")
	)
	fs.StringVar(&connect, "connect", "", "HOST:PORT[,HOST:PORT...] of running substrates (ID@HOST:PORT to name them)")
	fs.StringVar(&secret, "secret", "", "the cluster secret")
	fs.StringVar(&cfg.Enclave, "enclave", "default", "this node's enclave")
	fs.StringVar(&cfg.NodeID, "node-id", "", "this node's id (default migsim-HOSTNAME-PID)")
	fs.DurationVar(&cfg.MigrateEvery, "migrate-every", 0, "migrate on this schedule instead of on measured latency")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop after this long (default: until interrupted)")
	fs.DurationVar(&cfg.Cycle, "cycle", time.Second, "evaluation cycle")
	fs.Float64Var(&cfg.PublishRate, "publish-rate", 0, "PUTs a second over the substrates' HTTP API, honestly accounted (needs 2+ substrates)")
	fs.BoolVar(&asJSON, "json", false, "print the result as one JSON object instead of the report")
	fs.BoolVar(&verbose, "v", false, "log the transport's transitions to stderr")
	fs.Usage = usage(fs, "migsim live -connect HOST:PORT[,...] [flags]", "Attaches one real transient node to running REPRAM substrates.")
	if err := parse(fs, args); err != nil {
		return err
	}
	if connect == "" {
		return errors.New("migsim live: name the substrates with -connect HOST:PORT[,HOST:PORT...]")
	}
	cfg.Targets, cfg.Secret, cfg.Logger = strings.Split(connect, ","), []byte(secret), verboseLogger(verbose)
	if !asJSON {
		cfg.Timeline = out
		fmt.Fprintf(out, "migsim live: attaching to %s (enclave %q); Ctrl-C to stop\n", connect, cfg.Enclave)
	}
	res, err := live.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		if err := writeJSON(out, res); err != nil {
			return err
		}
	} else {
		live.Write(out, res)
		report.WriteSummary(out, res.Summary)
	}
	if res.Failed() {
		return errFailed
	}
	return nil
}
