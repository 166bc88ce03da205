package policy

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrInvalidConfig is wrapped by every error [Config.Validate] and [New]
// return; the message names the field and what to change.
var ErrInvalidConfig = errors.New("policy: invalid config")

// Config holds every threshold of the policy. A zero field takes the seed's
// default (see [Default]), so Config{} is the default policy and a caller sets
// only what it tunes. There is no way to ask for zero cycles: a zero field
// means "default", and negative values, the only other way to say "none", are
// rejected.
type Config struct {
	// Improvement is the fractional latency improvement a candidate in the
	// same enclave class must beat: it qualifies when
	// new < (1-Improvement) × current. Default 0.25; must be in (0, 1).
	Improvement float64
	// Streak is how many consecutive evaluation cycles the same candidate
	// must qualify before candidate_better names it. Default 2.
	Streak int
	// CooldownCycles is how many full evaluation cycles count nothing after
	// a change of attachment, before cooldown_elapsed. Default 1.
	CooldownCycles int
	// BackoffCycles is how many cycles a candidate is not proposed after its
	// first failed migration; each further consecutive failure doubles it.
	// Default 2.
	BackoffCycles int
	// BackoffMaxCycles caps the doubling backoff. Default 32; must be at
	// least BackoffCycles.
	BackoffMaxCycles int
	// PingPongWindow is how many cycles after leaving a substrate a return to
	// it counts as a ping-pong. Default 8.
	PingPongWindow int
	// PingPongMaxStreak caps the streak a pair of substrates requires after
	// ping-pongs (each ping-pong doubles it). Default 8; must be at least
	// Streak.
	PingPongMaxStreak int
	// PingPongRelaxCycles is how many cycles without a ping-pong on a pair
	// halve its raised streak again, down to Streak. Default 30.
	PingPongRelaxCycles int

	// Filter is the measurement filter the rules compare: [FilterRobust]
	// (the default) or [FilterNone] (this cycle's raw samples). The fields
	// below apply to FilterRobust; docs/policy-filter.md explains the choice.
	Filter Filter
	// FilterK sets the least gain of a substrate's filtered log latency,
	// a = 1/2^(k/4) as in the 3GPP layer-3 filter: the level is a running
	// mean of the samples since its last detected change until it has 1/a
	// of them, then moves by a of each sample's distance. Larger k
	// accumulates more evidence; a quiet path stops earlier, once the
	// level's standard error is under 0.5% (docs/policy-filter.md).
	// Default 32 (a = 1/256); at most 40. k = 4 (a = 1/2) is 3GPP's default.
	FilterK int
	// NoiseMargin is how many standard errors of the two filtered latencies
	// a candidate must beat the Improvement bar by, so that noise alone does
	// not qualify it. Default 3.6.
	NoiseMargin float64
	// MinDifference is the least a filtered candidate must be faster than
	// the filtered current attachment, whatever the ratio: microsecond
	// differences on loopback never qualify. Default 1ms.
	MinDifference time.Duration
	// MaxMissedCycles is how many cycles in a row a substrate may go
	// unmeasured before its filtered latency is forgotten (its next sample
	// starts afresh). Default 3.
	MaxMissedCycles int
}

// Default returns the seed's thresholds: 25% improvement, a streak of 2
// cycles, 1 cooldown cycle, backoff 2 cycles doubling up to 32, ping-pong
// window 8 cycles, damped streak up to 8, relaxed after 30 stable cycles;
// compared on robust filtered latencies (k = 32, a noise margin of 3.6
// standard errors, at least 1ms faster, forgotten after 3 missed cycles).
func Default() Config {
	return Config{
		Improvement:         0.25,
		Streak:              2,
		CooldownCycles:      1,
		BackoffCycles:       2,
		BackoffMaxCycles:    32,
		PingPongWindow:      8,
		PingPongMaxStreak:   8,
		PingPongRelaxCycles: 30,
		Filter:              FilterRobust,
		FilterK:             32,
		NoiseMargin:         3.6,
		MinDifference:       time.Millisecond,
		MaxMissedCycles:     3,
	}
}

// WithDefaults returns c with every zero field replaced by its default. It
// does not validate.
func (c Config) WithDefaults() Config {
	d := Default()
	if c.Improvement == 0 {
		c.Improvement = d.Improvement
	}
	if c.Filter == "" {
		c.Filter = d.Filter
	}
	if c.NoiseMargin == 0 {
		c.NoiseMargin = d.NoiseMargin
	}
	if c.MinDifference == 0 {
		c.MinDifference = d.MinDifference
	}
	for _, f := range []struct{ v, def *int }{
		{&c.Streak, &d.Streak},
		{&c.CooldownCycles, &d.CooldownCycles},
		{&c.BackoffCycles, &d.BackoffCycles},
		{&c.BackoffMaxCycles, &d.BackoffMaxCycles},
		{&c.PingPongWindow, &d.PingPongWindow},
		{&c.PingPongMaxStreak, &d.PingPongMaxStreak},
		{&c.PingPongRelaxCycles, &d.PingPongRelaxCycles},
		{&c.FilterK, &d.FilterK},
		{&c.MaxMissedCycles, &d.MaxMissedCycles},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	return c
}

// Validate reports the first invalid threshold, wrapping [ErrInvalidConfig].
// Zero fields are valid (they take the default).
func (c Config) Validate() error {
	if math.IsNaN(c.Improvement) || c.Improvement < 0 || c.Improvement >= 1 {
		return fmt.Errorf("%w: Improvement is %v: it must be a fraction in (0, 1), e.g. 0.25 for 25%% faster "+
			"(a candidate qualifies when new < (1-Improvement) × current); 0 selects the default",
			ErrInvalidConfig, c.Improvement)
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"Streak", c.Streak},
		{"CooldownCycles", c.CooldownCycles},
		{"BackoffCycles", c.BackoffCycles},
		{"BackoffMaxCycles", c.BackoffMaxCycles},
		{"PingPongWindow", c.PingPongWindow},
		{"PingPongMaxStreak", c.PingPongMaxStreak},
		{"PingPongRelaxCycles", c.PingPongRelaxCycles},
		{"FilterK", c.FilterK},
		{"MaxMissedCycles", c.MaxMissedCycles},
	} {
		if f.v < 0 {
			return fmt.Errorf("%w: %s is %d: it counts evaluation cycles and must be at least 1; 0 selects the default",
				ErrInvalidConfig, f.name, f.v)
		}
	}
	if c.Filter != "" {
		if _, err := ParseFilter(string(c.Filter)); err != nil {
			return fmt.Errorf("%w: Filter is %q: want %q or %q; empty selects the default",
				ErrInvalidConfig, c.Filter, FilterRobust, FilterNone)
		}
	}
	if c.FilterK > 40 {
		return fmt.Errorf("%w: FilterK is %d: it must be in 1..40 (a = 1/2^(k/4)); 0 selects the default 32",
			ErrInvalidConfig, c.FilterK)
	}
	if math.IsNaN(c.NoiseMargin) || math.IsInf(c.NoiseMargin, 0) || c.NoiseMargin < 0 {
		return fmt.Errorf("%w: NoiseMargin is %v: it counts standard errors and must be positive, e.g. 3; "+
			"0 selects the default", ErrInvalidConfig, c.NoiseMargin)
	}
	if c.MinDifference < 0 {
		return fmt.Errorf("%w: MinDifference is %v: it must be positive, e.g. 1ms; 0 selects the default",
			ErrInvalidConfig, c.MinDifference)
	}
	r := c.WithDefaults()
	if r.BackoffMaxCycles < r.BackoffCycles {
		return fmt.Errorf("%w: BackoffMaxCycles (%d) is below BackoffCycles (%d): raise the cap or lower the base",
			ErrInvalidConfig, r.BackoffMaxCycles, r.BackoffCycles)
	}
	if r.PingPongMaxStreak < r.Streak {
		return fmt.Errorf("%w: PingPongMaxStreak (%d) is below Streak (%d): damping may only raise the streak",
			ErrInvalidConfig, r.PingPongMaxStreak, r.Streak)
	}
	return nil
}
