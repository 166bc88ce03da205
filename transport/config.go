package transport

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/repram/handover/policy"
	"github.com/repram/handover/transport/engine"
	"github.com/repram/handover/transport/wire"
)

// Identity is this transient node as it introduces itself in hello.
type Identity struct {
	NodeID   string
	Enclave  string
	Address  string
	HTTPPort int
	// AcceptsInbound marks a routable node. Substrates never migrate and
	// never run this code: [New] refuses an identity with it set.
	AcceptsInbound bool
}

// Substrate names a substrate node the node can attach to.
type Substrate = engine.Substrate

// Decider decides when to migrate. *policy.Evaluator implements it; migsim
// plugs in baselines. The node's event loop is its only caller, so its
// methods must not call back into the Node.
type Decider = engine.Decider

// Secret is a cluster secret. It is a []byte (assign one to it directly)
// whose every printed or marshalled form is "[redacted]": fmt verbs
// (%v, %+v, %#v, %s, %x, %q), JSON and slog. The redaction travels with the
// value, so a Config printed whole, nested in another struct or logged as
// JSON never leaks it.
type Secret []byte

const redacted = "[redacted]"

// String returns "[redacted]".
func (Secret) String() string { return redacted }

// GoString returns "[redacted]".
func (Secret) GoString() string { return redacted }

// Format writes "[redacted]" for every verb.
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// MarshalJSON writes the JSON string "[redacted]".
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns "[redacted]".
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue returns "[redacted]" for log/slog.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// Config configures a [Node]. Zero durations and sizes take the defaults
// documented on each field.
type Config struct {
	// Identity and delivery: what every node sets.

	Identity Identity
	// Handler receives deduplicated gossip, one call at a time, in arrival
	// order, on a goroutine of its own. Nil discards gossip. It must not
	// call Node.Close, which waits for the handler to return.
	Handler func(Gossip)

	// Security.

	// Secret is the cluster secret. When set, every frame is signed and
	// every received frame must verify; it is never logged, and printing
	// or marshalling the Config shows it redacted.
	Secret Secret
	// TLSConfig is used for wss:// links (custom CAs, client certificates).
	TLSConfig *tls.Config
	// HTTPHeader is sent with every WebSocket dial.
	HTTPHeader http.Header

	// Policy: when to migrate.

	// Policy holds the thresholds of the default hysteresis policy
	// (package policy); the zero value is its defaults.
	Policy policy.Config
	// Decider, when set, replaces the default policy (migsim plugs in
	// baselines and schedules).
	Decider Decider
	// BreakBeforeMake runs the baseline that lets the primary go before
	// dialling the next substrate (fsm.BreakBeforeMake), for comparisons
	// such as migsim's; it loses what is published meanwhile.
	BreakBeforeMake bool

	// Timing and limits.

	// Tuning holds the migration engine's durations, bounds and sizes
	// (handshake timeout, attempt delay, overlap bounds, heartbeat and
	// suspicion, backoffs, dedup window, maximum message age); zero fields
	// take the engine's defaults, which suit real networks.
	Tuning engine.Tuning
	// ReadLimit bounds one frame; larger frames are rejected and drained,
	// frames over 8×ReadLimit close the link. Default 1 MiB.
	ReadLimit int64
	// DeliveryBuffer bounds gossip accepted but not yet handled. When it is
	// full the links stop reading (back-pressure to the substrates) and the
	// event loop keeps running. Default 4096.
	DeliveryBuffer int

	// Observability (see also package transport/metrics).

	// Logger receives structured logs (zerolog, the default); nil is
	// silent. Fields: node, link, substrate, state, event, from, to,
	// reason, error.
	Logger *zerolog.Logger
	// SlogLogger receives the same logs through log/slog instead, for a
	// runtime that logs with slog: levels map onto slog's (trace is
	// LevelDebug-4) and every field becomes an attribute. Set Logger or
	// SlogLogger, not both: [New] refuses both with [ErrTwoLoggers].
	SlogLogger *slog.Logger
}

// ErrSubstrateIdentity is returned by [New] for a node that accepts inbound
// connections: substrates never migrate and never run this code.
var ErrSubstrateIdentity = errors.New("transport: this node accepts inbound connections (a substrate); " +
	"only transient nodes migrate: do not run the migration driver on a substrate")

// ErrTwoLoggers is returned by [New] when both Config.Logger and
// Config.SlogLogger are set.
var ErrTwoLoggers = errors.New("transport: both Config.Logger (zerolog) and Config.SlogLogger are set: set the one your runtime logs with")

func (c Config) withDefaults() (Config, error) {
	if c.Identity.AcceptsInbound {
		return c, ErrSubstrateIdentity
	}
	if c.Identity.NodeID == "" {
		return c, errors.New("transport: Identity.NodeID is empty: every hello must name this node")
	}
	if c.ReadLimit == 0 {
		c.ReadLimit = 1 << 20
	}
	if c.DeliveryBuffer == 0 {
		c.DeliveryBuffer = 4096
	}
	if c.ReadLimit < 0 || c.DeliveryBuffer < 0 {
		return c, errors.New("transport: ReadLimit and DeliveryBuffer must not be negative (zero selects the default)")
	}
	switch {
	case c.Logger != nil && c.SlogLogger != nil:
		return c, ErrTwoLoggers
	case c.SlogLogger != nil:
		l := zerologToSlog(c.SlogLogger.Handler())
		c.Logger = &l
	case c.Logger == nil:
		nop := zerolog.Nop()
		c.Logger = &nop
	}
	return c, nil
}

// helloPayload is the hello this node sends on every link.
func (c Config) helloPayload() wire.Hello {
	return wire.Hello{
		NodeID: c.Identity.NodeID, Enclave: c.Identity.Enclave, Address: c.Identity.Address,
		HTTPPort: c.Identity.HTTPPort, Capabilities: wire.Capabilities{Inbound: "false"},
	}
}
