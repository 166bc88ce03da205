package main

import (
	"flag"
	"fmt"

	"github.com/repram/handover/tools/migsim/internal/scenario"
)

// newFlagSet is a mode's flag set; its errors are returned, not fatal.
func newFlagSet(mode string) *flag.FlagSet {
	return flag.NewFlagSet("migsim "+mode, flag.ContinueOnError)
}

// parse parses a mode's flags and refuses arguments left over.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}

// policyFlags override a scenario's (or replay's) policy: run, compare and
// replay take them.
type policyFlags struct {
	fs                       *flag.FlagSet
	improvement              float64
	streak, cooldown, window int
}

func (p *policyFlags) register(fs *flag.FlagSet) {
	p.fs = fs
	fs.Float64Var(&p.improvement, "improvement", 0, "policy: fractional latency improvement a candidate must beat (default 0.25)")
	fs.IntVar(&p.streak, "cycles", 0, "policy: consecutive qualifying cycles before migrating (default 2)")
	fs.IntVar(&p.cooldown, "cooldown", 0, "policy: cooldown cycles after a change of attachment (default 1)")
	fs.IntVar(&p.window, "pingpong-window", 0, "policy: cycles within which a return counts as a ping-pong (default 8)")
}

// apply overrides c with the flags given on the command line.
func (p *policyFlags) apply(c *scenario.PolicyConfig) {
	p.fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "improvement":
			c.Improvement = p.improvement
		case "cycles":
			c.Streak = p.streak
		case "cooldown":
			c.CooldownCycles = p.cooldown
		case "pingpong-window":
			c.PingPongWindow = p.window
		}
	})
}

// scenarioFlags are the flags of the modes that run a scenario (run and
// compare).
type scenarioFlags struct {
	scenario, svg string
	json, virtual bool
	policy        policyFlags
}

// virtualFlag names the flag that brings in the virtual back-end: run's
// "virtual" replaces the sockets, compare's "with-virtual" adds to them, so
// one name never means two things.
func (s *scenarioFlags) register(fs *flag.FlagSet, svg, virtualFlag, virtual string) {
	fs.StringVar(&s.scenario, "scenario", "default", "scenario file, or a name in testdata/scenarios")
	fs.StringVar(&s.svg, "svg", "", svg)
	fs.BoolVar(&s.json, "json", false, "print the summary as one JSON object instead of the report")
	fs.BoolVar(&s.virtual, virtualFlag, false, virtual)
	s.policy.register(fs)
}

// load reads the scenario and applies the policy flags to it.
func (s *scenarioFlags) load() (*scenario.Scenario, error) {
	sc, err := scenario.LoadScenario(s.scenario)
	if err != nil {
		return nil, err
	}
	s.policy.apply(&sc.Policy)
	if err := sc.Policy.Config().Validate(); err != nil {
		return nil, err
	}
	return sc, nil
}
