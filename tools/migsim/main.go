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
//	go run ./tools/migsim compare -with-virtual        … on both back-ends
//	go run ./tools/migsim replay -replay testdata/traces/jitter.csv -improvement 0.2 -cycles 3
//	go run ./tools/migsim scale -nodes 100000 -substrates 200 -plot out
//	go run ./tools/migsim scale -sockets -nodes 600
//	go run ./tools/migsim live -connect h1:8080,h2:8080,h3:8080 -secret S -enclave E
//
// Each mode takes only its own flags (migsim MODE -h lists them). The old
// forms (-compare, -replay FILE, -connect without a mode) still work. The
// exit status is 1 when a run lost a message or delivered one twice, 2 for
// bad usage.
//
// The simulation and the reports live in importable packages under
// internal/ (scenario, run, timeline, report, replay, live, sockscale,
// vscale, scaleplot); this package parses flags and wires them.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"

	"github.com/rs/zerolog"
)

// errFailed is returned when a run broke the guarantee; main exits 1.
var errFailed = errors.New("messages were lost or delivered twice")

// errUsage is returned for bad usage, already explained; main exits 2.
var errUsage = errors.New("bad usage")

// modes are migsim's subcommands, each with its own flags; the first is
// the default.
var modes = map[string]func(ctx context.Context, args []string, out io.Writer) error{
	"run":     runCmd,
	"compare": compareCmd,
	"replay":  replayCmd,
	"scale":   scaleCmd,
	"live":    liveCmd,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := migsim(ctx, os.Args[1:], os.Stdout)
	stop()
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

// migsim runs the mode args name (run when they name none).
func migsim(ctx context.Context, args []string, out io.Writer) error {
	mode := "run"
	if len(args) > 0 && modes[args[0]] != nil {
		mode, args = args[0], args[1:]
	} else {
		mode, args = legacyMode(args)
	}
	return modes[mode](ctx, args, out)
}

// legacyMode finds the mode of the old forms, which named it with a flag
// of the default mode: -compare, -replay FILE, -connect LIST.
func legacyMode(args []string) (string, []string) {
	value := false // args[i] is the value of the flag before it
	for i, a := range args {
		if value {
			value = false
			continue
		}
		name, _, inline := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case !strings.HasPrefix(a, "-") || a == "--":
			return "run", args
		case name == "compare":
			return "compare", slices.Delete(slices.Clone(args), i, i+1)
		case name == "replay":
			return "replay", args
		case name == "connect":
			return "live", args
		}
		value = !inline && !legacyBools[name]
	}
	return "run", args
}

// legacyBools are the boolean flags of the old single flag set: any other
// flag written without "=" takes the next argument as its value.
var legacyBools = map[string]bool{"json": true, "compare": true, "v": true, "virtual": true}

// usage prints a mode's usage line, what it does, and its flags.
func usage(fs interface {
	Output() io.Writer
	PrintDefaults()
}, line, what string) func() {
	return func() {
		fmt.Fprintf(fs.Output(), "usage: %s\n\n%s\nModes: run (default), compare, replay, scale, live; migsim MODE -h for a mode's flags.\n\n", line, what)
		fs.PrintDefaults()
	}
}

// writeJSON writes v as one line of JSON.
func writeJSON(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

// verboseLogger is the transport's logger for -v: zerolog on stderr.
func verboseLogger(on bool) *zerolog.Logger {
	if !on {
		return nil
	}
	l := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).With().Timestamp().Logger()
	return &l
}
