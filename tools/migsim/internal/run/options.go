// Package run runs a migsim scenario (package scenario) with one migration
// strategy and policy, on one of two back-ends: real loopback WebSockets
// (Sockets: transport/substratetest substrates, a real transport.Node,
// nothing faked in the gossip path) or virtual time (Virtual: the same
// engine over transport/simnet, deterministic). Both return a Result: the
// timeline and the Summary, with the same definitions (package timeline).
package run

import (
	"fmt"

	"github.com/rs/zerolog"

	"github.com/repram/handover/policy"
)

// The migration strategies migsim runs.
const (
	// MakeBeforeBreak is this project: transport.Node migrating with overlap.
	MakeBeforeBreak = "make-before-break"
	// BreakBeforeMake is the baseline: close the old link, then attach to the
	// new substrate (what REPRAM does on goodbye today).
	BreakBeforeMake = "break-before-make"
)

// Options select what a run compares.
type Options struct {
	Strategy string          // MakeBeforeBreak (default) or BreakBeforeMake
	Policy   policy.Strategy // policy.Hysteresis (default) or policy.Naive
	Logger   *zerolog.Logger // the transport's logs; nil is silent
	// SettleCycles lets a run over sockets go on after the scenario's last
	// cycle, observing that cycle's latencies, for at most this many
	// cycles, until the node is attached with no migration under way and
	// has made at least SettleTransitions transitions: on a loaded machine
	// the scenario's last moves may come late. Virtual time is never late:
	// it ignores both. 0: stop at the last cycle.
	SettleCycles      int
	SettleTransitions int
}

// WithDefaults fills in the strategy and the policy, or says which is
// unknown.
func (o Options) WithDefaults() (Options, error) {
	if o.Strategy == "" {
		o.Strategy = MakeBeforeBreak
	}
	if o.Policy == "" {
		o.Policy = policy.Hysteresis
	}
	if o.Strategy != MakeBeforeBreak && o.Strategy != BreakBeforeMake {
		return o, fmt.Errorf("strategy %q: want %s or %s", o.Strategy, MakeBeforeBreak, BreakBeforeMake)
	}
	if _, err := policy.ParseStrategy(string(o.Policy)); err != nil {
		return o, err
	}
	return o, nil
}

// Label names the combination for tables.
func (o Options) Label() string {
	if o.Strategy == BreakBeforeMake {
		return o.Strategy + " (" + string(o.Policy) + ")"
	}
	return string(o.Policy) + " " + o.Strategy
}
