// Command migsim runs a transient node through a simulated REPRAM network
// and reports what its migrations cost. It has five modes:
//
//	migsim [run] [flags]        a scenario over real loopback WebSockets (transport/substratetest,
//	                            a real transport.Node): timeline and summary; the default
//	migsim compare [flags]      ours, break-before-make and naive on one scenario, one table
//	migsim replay -replay FILE  a latency trace (testdata/traces) through the policy alone
//	migsim scale [flags]        a scale study in virtual time (transport/simnet driving the engine):
//	                            100,000 nodes, capacity, partial mesh, churn, noise; -sockets: the
//	                            mass migration over real loopback sockets instead
//	migsim live -connect ...    a node against running REPRAM substrates
//
// Examples:
//
//	go run ./tools/migsim                         the default scenario: timeline and summary
//	go run ./tools/migsim run -json               the summary as one JSON object
//	go run ./tools/migsim run -svg run.svg        also plot latency, primary and migrations
//	go run ./tools/migsim run -scenario jitter    a scenario of testdata/scenarios (or a path)
//	go run ./tools/migsim run -strategy break-before-make   the baseline: close, then dial
//	go run ./tools/migsim run -virtual            the same scenario in virtual time over simnet
//	go run ./tools/migsim compare                 ours and both baselines side by side
//	go run ./tools/migsim compare -virtual        … on both back-ends
//	go run ./tools/migsim replay -replay testdata/traces/jitter.csv -improvement 0.2 -cycles 3
//	go run ./tools/migsim scale -nodes 100000 -substrates 200 -plot out
//	go run ./tools/migsim scale -sockets -nodes 600
//	go run ./tools/migsim live -connect h1:8080,h2:8080,h3:8080 -secret S -enclave E
//
// The old forms (-compare, -replay FILE, -connect without a mode) still
// work. The exit status is 1 when a run lost a message or delivered one
// twice, 2 for bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/repram/handover/policy"
)

// errFailed is returned when a run broke the guarantee; main exits 1.
var errFailed = errors.New("messages were lost or delivered twice")

// errUsage is returned for bad usage, already explained; main exits 2.
var errUsage = errors.New("bad usage")

// modes are migsim's subcommands but scale, which has its own flags.
var modes = []string{"run", "compare", "replay", "live"}

// flags holds the command line.
type flags struct {
	scenario, strategy, pol, svg string
	json, compare, verbose       bool
	virtual                      bool

	replay, filter             string
	improvement                float64
	streak, cooldown, ppWindow int
	set                        map[string]bool

	nodes      int
	goodbyeGap time.Duration

	connect, secret, enclave, nodeID string
	migrateEvery, duration, cycle    time.Duration
	publishRate                      float64
}

func main() {
	var f flags
	fs := flag.NewFlagSet("migsim", flag.ContinueOnError)
	fs.StringVar(&f.scenario, "scenario", "default", "scenario file, or a name in testdata/scenarios")
	fs.StringVar(&f.strategy, "strategy", MakeBeforeBreak, "make-before-break or break-before-make")
	fs.StringVar(&f.pol, "policy", string(policy.Hysteresis), "hysteresis or naive")
	fs.StringVar(&f.svg, "svg", "", "write a plot of the run to this SVG file (with -compare, one per strategy: run.svg, run-break-before-make.svg, run-naive.svg)")
	fs.BoolVar(&f.json, "json", false, "print the summary as one JSON object instead of the report")
	fs.BoolVar(&f.compare, "compare", false, "run ours, break-before-make and naive on the scenario; print one table")
	fs.BoolVar(&f.verbose, "v", false, "log the transport's transitions to stderr")
	fs.BoolVar(&f.virtual, "virtual", false, "run: in virtual time over simnet (the engine, no socket) instead of loopback WebSockets; compare: add the virtual-time runs below the socket ones")
	fs.StringVar(&f.replay, "replay", "", "replay a latency trace (testdata/traces) through the policy alone")
	fs.StringVar(&f.filter, "filter", "", "-replay: the policy's measurement filter, robust or none (default robust; raw and naive are replayed beside it)")
	fs.Float64Var(&f.improvement, "improvement", 0, "policy: fractional latency improvement a candidate must beat (default 0.25)")
	fs.IntVar(&f.streak, "cycles", 0, "policy: consecutive qualifying cycles before migrating (default 2)")
	fs.IntVar(&f.cooldown, "cooldown", 0, "policy: cooldown cycles after a change of attachment (default 1)")
	fs.IntVar(&f.ppWindow, "pingpong-window", 0, "policy: cycles within which a return counts as a ping-pong (default 8)")
	fs.StringVar(&f.connect, "connect", "", "live mode: HOST:PORT[,HOST:PORT...] of running substrates (ID@HOST:PORT to name them)")
	fs.StringVar(&f.secret, "secret", "", "live mode: the cluster secret")
	fs.StringVar(&f.enclave, "enclave", "default", "live mode: this node's enclave")
	fs.StringVar(&f.nodeID, "node-id", "", "live mode: this node's id (default migsim-HOSTNAME-PID)")
	fs.DurationVar(&f.migrateEvery, "migrate-every", 0, "live mode: migrate on this schedule instead of on measured latency")
	fs.DurationVar(&f.duration, "duration", 0, "live mode: stop after this long (default: until interrupted)")
	fs.DurationVar(&f.cycle, "cycle", time.Second, "live mode: evaluation cycle")
	fs.Float64Var(&f.publishRate, "publish-rate", 0, "live: PUTs a second over the substrates' HTTP API, honestly accounted (needs 2+ substrates)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: migsim [run|compare|replay|live] [flags]\n       migsim scale [flags]   (migsim scale -h)\n\n"+
			"Runs a transient node through a simulated network on loopback and reports "+
			"lost and duplicated gossip, migrations and flaps.\nScenarios: testdata/scenarios/README.md.\n\n")
		fs.PrintDefaults()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	args, mode := os.Args[1:], ""
	if len(args) > 0 && (args[0] == "scale" || slices.Contains(modes, args[0])) {
		mode, args = args[0], args[1:]
	}
	var err error
	if mode == "scale" {
		err = runScaleCmd(ctx, args, os.Stdout)
	} else {
		if fs.Parse(args) != nil {
			os.Exit(2)
		}
		if fs.NArg() > 0 {
			fs.Usage()
			os.Exit(2)
		}
		f.set = map[string]bool{}
		fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
		err = f.checkMode(mode)
		if err == nil {
			err = dispatch(ctx, f, os.Stdout)
		}
	}
	switch {
	case errors.Is(err, errUsage):
		os.Exit(2)
	case errors.Is(err, errFailed):
		fmt.Fprintln(os.Stderr, "migsim:", err)
		os.Exit(1)
	case err != nil:
		fmt.Fprintln(os.Stderr, "migsim:", err)
		os.Exit(2)
	}
}

// dispatch runs the mode the flags select.
func dispatch(ctx context.Context, f flags, out io.Writer) error {
	switch {
	case f.replay != "":
		return runReplay(f, out)
	case f.connect != "":
		return runLive(ctx, f, out)
	}
	sc, err := LoadScenario(f.scenario)
	if err != nil {
		return err
	}
	f.applyPolicy(&sc.Policy)
	if err := sc.Policy.Config().Validate(); err != nil {
		return err
	}
	if f.compare {
		return runCompare(ctx, sc, f, out)
	}
	opt := Options{Strategy: f.strategy, Policy: policy.Strategy(f.pol)}
	if f.verbose {
		l := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).With().Timestamp().Logger()
		opt.Logger = &l
	}
	opt, err = opt.withDefaults()
	if err != nil {
		return err
	}
	if !f.json {
		WriteHeader(out, sc, opt)
	}
	var res *Result
	if f.virtual {
		res, err = RunVirtual(sc, opt)
	} else {
		res, err = Run(ctx, sc, opt)
	}
	if err != nil {
		return err
	}
	if f.json {
		if err := WriteJSON(out, res.Summary); err != nil {
			return err
		}
	} else {
		WriteTimeline(out, res.Entries)
		WriteSummary(out, res.Summary)
	}
	if f.svg != "" {
		if err := writeSVGFile(f.svg, res); err != nil {
			return err
		}
		if !f.json {
			fmt.Fprintf(out, "\nplot written to %s\n", f.svg)
		}
	}
	if res.Summary.Failed() {
		return errFailed
	}
	return nil
}

// checkMode sets the flags a mode implies and refuses a mode whose
// required flag is missing.
func (f *flags) checkMode(mode string) error {
	switch mode {
	case "compare":
		f.compare = true
	case "replay":
		if f.replay == "" {
			return fmt.Errorf("migsim replay: name the trace with -replay FILE (testdata/traces)")
		}
	case "live":
		if f.connect == "" {
			return fmt.Errorf("migsim live: name the substrates with -connect HOST:PORT[,HOST:PORT...]")
		}
	}
	return nil
}

// applyPolicy overrides the scenario's policy with the flags given.
func (f flags) applyPolicy(p *PolicyConfig) {
	if f.set["improvement"] {
		p.Improvement = f.improvement
	}
	if f.set["cycles"] {
		p.Streak = f.streak
	}
	if f.set["cooldown"] {
		p.CooldownCycles = f.cooldown
	}
	if f.set["pingpong-window"] {
		p.PingPongWindow = f.ppWindow
	}
}
