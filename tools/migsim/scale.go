package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/repram/handover/tools/migsim/internal/scaleplot"
	"github.com/repram/handover/tools/migsim/internal/sockscale"
	"github.com/repram/handover/tools/migsim/internal/vscale"
)

// scaleGCPercent is the collector's target for scale runs, virtual or
// -sockets, unless the user chose GOGC: 100,000 engines are ~1 GiB of live
// heap, and with -sockets both ends of every link share this process's
// heap, so the collector's pauses and assists delay the handshakes the
// goodbye gap is racing (a real node runs alone in its process).
const scaleGCPercent = 400

// scaleCmd is `migsim scale`: a scale study in virtual time (the default),
// or with -sockets the mass migration over real loopback WebSockets.
func scaleCmd(ctx context.Context, args []string, out io.Writer) error {
	var (
		c          vscale.Config
		asJSON     bool
		sockets    bool
		plotDir    string
		goodbyeGap time.Duration
		fs         = newFlagSet("scale")
	)
	fs.IntVar(&c.Nodes, "nodes", 1000, "transient nodes")
	fs.IntVar(&c.Substrates, "substrates", 0, "substrates (default nodes/500, at least 4)")
	fs.Uint64Var(&c.Seed, "seed", 1, "seed of the network, round trips, churn, noise and engines: the same seed gives the same numbers")
	fs.IntVar(&c.MaxChildren, "max-children", 0, "capacity of every substrate (default REPRAM's 100, or 1.5 × the mean load when 100 cannot hold the nodes)")
	fs.IntVar(&c.Peers, "peers", 0, "peers each substrate knows, named as alternatives (partial mesh; default 4)")
	fs.IntVar(&c.Regions, "regions", 0, "regions the substrates fall in, for round trips and noise (default 8)")
	fs.DurationVar(&c.RTT, "rtt", 0, "median round trip to a substrate of region 0 (default 5ms; region r adds r × -rtt-step)")
	fs.DurationVar(&c.RTTStep, "rtt-step", 0, "round trip added per region (default 2ms)")
	fs.Float64Var(&c.RTTSigma, "rtt-sigma", 0, "sigma of each link's log-normal round-trip factor (default 0.3; negative: none)")
	fs.Float64Var(&c.Noise, "noise", 0, "factor one region's round trips take during a noise burst (0: none)")
	fs.Float64Var(&c.Churn, "churn", 0, "substrates a minute that shut down gracefully and come back 30 s later (0: only s0 leaves)")
	fs.DurationVar(&c.Shutdown, "shutdown-at", 0, "when substrate s0 shuts down gracefully (default 5s)")
	fs.Float64Var(&c.PublishRate, "publish-rate", 0, "writes a second every substrate hears (default 2; with -sockets 20)")
	fs.DurationVar(&c.Duration, "duration", 0, "virtual time simulated (default 15s)")
	fs.DurationVar(&c.Cycle, "cycle", 0, "each node's evaluation cycle (default 1s; negative: no policy)")
	fs.BoolVar(&asJSON, "json", false, "print the result as one JSON object")
	fs.StringVar(&plotDir, "plot", "", "write "+strings.Join(scaleplot.Files, ", ")+" (gonum/plot) into this directory")
	fs.BoolVar(&sockets, "sockets", false, "instead: a mass migration over real loopback WebSockets, both ends in this process (-nodes, -publish-rate, -goodbye-gap, -json)")
	fs.DurationVar(&goodbyeGap, "goodbye-gap", 500*time.Millisecond, "-sockets: gap between the leaving substrate's two goodbyes")
	fs.Usage = usage(fs, "migsim scale [flags]", "A scale study in virtual time (transport/simnet driving the engine), or -sockets over loopback.")
	if err := parse(fs, args); err != nil {
		return err
	}
	gc := "GOGC=" + os.Getenv("GOGC")
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(scaleGCPercent))
		gc = fmt.Sprintf("GC percent %d (set GOGC to override)", scaleGCPercent)
	}
	// Each variant takes only its own flags: one the other ignores is
	// refused, not silently dropped.
	var ignored []string
	rateSet := false
	fs.Visit(func(f *flag.Flag) {
		rateSet = rateSet || f.Name == "publish-rate"
		if socketFlags[f.Name] != sockets && f.Name != "publish-rate" && f.Name != "nodes" && f.Name != "json" {
			ignored = append(ignored, "-"+f.Name)
		}
	})
	if len(ignored) > 0 {
		variant := "in virtual time (without -sockets)"
		if sockets {
			variant = "with -sockets"
		}
		fmt.Fprintf(fs.Output(), "migsim scale: %s not used %s: drop it, or see migsim scale -h\n", strings.Join(ignored, ", "), variant)
		return errUsage
	}
	if sockets {
		return scaleSockets(ctx, c, rateSet, goodbyeGap, asJSON, gc, out)
	}
	res, err := vscale.Run(c)
	if err != nil {
		return err
	}
	if asJSON {
		err = writeJSON(out, res)
	} else {
		vscale.WriteReport(out, res)
	}
	if err != nil {
		return err
	}
	if plotDir != "" {
		if err := scaleplot.Write(plotDir, res); err != nil {
			return err
		}
		if !asJSON {
			fmt.Fprintf(out, "\nplots written to %s\n", plotDir)
		}
	}
	if res.Failed() {
		return errFailed
	}
	return nil
}

// socketFlags are the flags only scale -sockets uses; -nodes, -publish-rate
// and -json serve both variants, every other flag only the virtual one.
var socketFlags = map[string]bool{"sockets": true, "goodbye-gap": true}

// scaleSockets is `migsim scale -sockets`: the mass migration over real
// loopback WebSockets (publish rate 20 unless given).
func scaleSockets(ctx context.Context, c vscale.Config, rateSet bool, gap time.Duration, asJSON bool, gc string, out io.Writer) error {
	cfg := sockscale.Config{Nodes: c.Nodes, PublishRate: c.PublishRate, GoodbyeGap: gap, Settle: time.Second}
	if !rateSet {
		cfg.PublishRate = 20
	}
	if !asJSON {
		sockscale.WriteHeader(out, cfg, gc)
	}
	res, err := sockscale.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		if err := writeJSON(out, res); err != nil {
			return err
		}
	} else {
		sockscale.Write(out, cfg, res)
	}
	if res.Failed() {
		return errFailed
	}
	return nil
}
