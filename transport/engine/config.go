package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/repram/handover/policy"
	"github.com/repram/handover/transport/dedup"
)

// Decider decides when to migrate. *policy.Evaluator implements it; migsim
// plugs in baselines. The engine is its only caller. Evaluate must return
// fsm.CooldownElapsed some cycles after Attached: the machine leaves its
// cooldown state only on that event.
type Decider interface {
	Evaluate(policy.Snapshot) policy.Decision
	Attached(id string)
	MigrationFailed(id string)
	Forced()
}

// Config configures an [Engine]. Zero fields take the defaults documented on
// each; [Config.WithDefaults] fills them in.
type Config struct {
	NodeID  string // this node's id: never dialled, never a candidate
	Enclave string // this node's enclave: same-enclave substrates are preferred

	// Policy decides migrations; nil runs policy.New(policy.Config{}).
	Policy Decider

	// BreakBeforeMake runs the baseline chart fsm.BreakBeforeMake: the
	// primary is let go before a candidate is dialled. For comparisons
	// only: it loses what is published while the node has no link.
	BreakBeforeMake bool

	// Tuning holds every duration, bound and size of the engine.
	Tuning

	// Seed seeds the engine's randomness (jitter, ties among equally good
	// alternatives). Two engines with the same seed and inputs produce
	// the same effects.
	Seed uint64

	// Logger receives the engine's decisions at debug level and its
	// warnings; the zero value is silent.
	Logger zerolog.Logger
}

// Tuning holds the engine's durations, bounds and sizes. Zero fields take
// the defaults documented on each; the defaults suit real networks, so most
// embedders set none.
type Tuning struct {
	// HandshakeTimeout bounds dial + hello + welcome of one candidate.
	// Default 10s.
	HandshakeTimeout time.Duration
	// AttemptDelay is RFC 8305's connection attempt delay: when the node
	// must move (goodbye, suspicion, death, rejoin) and the candidate
	// dialled has not welcomed within it, the next alternative is dialled
	// too. Default 250ms.
	AttemptDelay time.Duration
	// RaceWidth bounds the candidates handshaking at once. Default 3.
	RaceWidth int

	// OverlapFloor is the shortest overlap: the least time after the new
	// link's welcome before the old link may close, and the floor of the
	// margin derived from the measured propagation skew. Default 50ms.
	OverlapFloor time.Duration
	// OverlapGrace bounds the skew-derived margin from above: old-link
	// messages arriving within the margin after the welcome may have
	// reached the new substrate before it knew this node and are exempt
	// from the catch-up check. Before any skew is measured the margin is
	// OverlapGrace. Default 1s.
	OverlapGrace time.Duration
	// OverlapMax cancels a migration whose new link never caught up (a
	// substrate that welcomes but does not forward). Default 15s.
	OverlapMax time.Duration

	// HeartbeatInterval is the period of the pings that measure each
	// link's round trip. Default 5s.
	HeartbeatInterval time.Duration
	// SuspectMin and SuspectMax bound the suspicion timeout, SRTT +
	// 4·RTTVAR of the link's pings (RFC 6298): a link silent that long is
	// pinged with that timeout, and a primary whose ping then fails is
	// suspected. Defaults 1s and 5s.
	SuspectMin, SuspectMax time.Duration
	// MissedHeartbeats is how many consecutive failed pings declare a link
	// dead. Default 3.
	MissedHeartbeats int

	// RejoinBackoff is the first delay before rejoining when every
	// substrate failed; it doubles up to RejoinBackoffMax and resets on a
	// welcome. Defaults 250ms and 30s.
	RejoinBackoff, RejoinBackoffMax time.Duration
	// FailureBackoff is how long a substrate that said goodbye, refused,
	// timed out or died is not dialled while another is known; it doubles
	// with each consecutive failure up to FailureBackoffMax and has up to
	// 50 % jitter. Defaults 2s and 60s.
	FailureBackoff, FailureBackoffMax time.Duration

	// Dedup sizes the window of message ids remembered to drop
	// duplicates (an ACK's key, its id and sender, counts as one id); the
	// defaults are REPRAM's own (60 s, 100,000 ids). A negative Window or
	// Capacity, or a Capacity of 1, is refused.
	Dedup dedup.Config
	// MaxMessageAge drops gossip whose timestamp is older than this, so a
	// signed frame replayed after its id left the dedup window is not
	// delivered again. Default Dedup.Window (60s); negative turns it off.
	MaxMessageAge time.Duration
}

// ErrNotDetached is returned by [Engine.Step] for an [Attach] while the
// node already has or seeks a substrate.
var ErrNotDetached = errors.New("engine: attach: the node is not detached: it has a substrate or is joining one, " +
	"and migrates by itself (Observe); Attach is for the first attachment")

// ErrNotDialable is returned by [Engine.Step] for an [Attach] to a substrate
// the engine cannot dial: one without a URL, or this node itself.
var ErrNotDialable = errors.New("engine: attach: the substrate cannot be dialled: give its ws:// or wss:// URL, " +
	"and not this node's own id")

// WithDefaults returns c with every zero field set to its default, or an
// error naming the first invalid field.
func (c Config) WithDefaults() (Config, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.HandshakeTimeout, 10*time.Second)
	def(&c.AttemptDelay, 250*time.Millisecond)
	def(&c.OverlapFloor, 50*time.Millisecond)
	def(&c.OverlapGrace, time.Second)
	def(&c.OverlapMax, 15*time.Second)
	def(&c.HeartbeatInterval, 5*time.Second)
	def(&c.SuspectMin, time.Second)
	def(&c.SuspectMax, 5*time.Second)
	def(&c.RejoinBackoff, 250*time.Millisecond)
	def(&c.RejoinBackoffMax, 30*time.Second)
	def(&c.FailureBackoff, 2*time.Second)
	def(&c.FailureBackoffMax, 60*time.Second)
	if c.RaceWidth == 0 {
		c.RaceWidth = 3
	}
	if c.MissedHeartbeats == 0 {
		c.MissedHeartbeats = 3
	}
	if c.MaxMessageAge == 0 {
		c.MaxMessageAge = c.Dedup.Window
		if c.MaxMessageAge <= 0 {
			c.MaxMessageAge = dedup.DefaultWindow
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"HandshakeTimeout", c.HandshakeTimeout}, {"AttemptDelay", c.AttemptDelay},
		{"OverlapFloor", c.OverlapFloor}, {"OverlapGrace", c.OverlapGrace}, {"OverlapMax", c.OverlapMax},
		{"HeartbeatInterval", c.HeartbeatInterval}, {"SuspectMin", c.SuspectMin}, {"SuspectMax", c.SuspectMax},
		{"RejoinBackoff", c.RejoinBackoff}, {"RejoinBackoffMax", c.RejoinBackoffMax},
		{"FailureBackoff", c.FailureBackoff}, {"FailureBackoffMax", c.FailureBackoffMax},
	} {
		if d.v < 0 {
			return c, fmt.Errorf("engine: %s is negative (%v): use a positive duration, or zero for the default", d.name, d.v)
		}
	}
	if err := c.Dedup.Validate(); err != nil {
		return c, fmt.Errorf("engine: Dedup: %w", err)
	}
	switch {
	case c.OverlapGrace < c.OverlapFloor:
		return c, fmt.Errorf("engine: OverlapGrace %v is below OverlapFloor %v: the skew-derived margin lies between them", c.OverlapGrace, c.OverlapFloor)
	case c.OverlapMax <= 3*c.OverlapGrace:
		// Before any skew is measured the margin is OverlapGrace, and a
		// streaming old link needs three margins past the welcome.
		return c, fmt.Errorf("engine: OverlapMax %v must exceed three times OverlapGrace %v: no first overlap could finish", c.OverlapMax, c.OverlapGrace)
	case c.SuspectMax < c.SuspectMin:
		return c, fmt.Errorf("engine: SuspectMax %v is below SuspectMin %v", c.SuspectMax, c.SuspectMin)
	case c.RaceWidth < 1 || c.MissedHeartbeats < 1:
		return c, errors.New("engine: RaceWidth and MissedHeartbeats must be at least 1 (zero selects the default)")
	}
	if c.Policy == nil {
		p, err := policy.New(policy.Config{})
		if err != nil {
			return c, fmt.Errorf("engine: policy: %w", err)
		}
		c.Policy = p
	}
	return c, nil
}
