package transport

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/repram/handover/policy"
	"github.com/repram/handover/transport/dedup"
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

// Substrate names a substrate node the driver can attach to.
type Substrate struct {
	ID      string // substrate node id; may be empty for a first attach, learned from the welcome
	URL     string // ws://HOST:HTTP_PORT/v1/ws or wss://...
	Enclave string
}

// Policy decides when to migrate. *policy.Evaluator implements it; migsim
// plugs in baselines. The driver's event loop is its only caller, so its
// methods must not call back into the Node. Evaluate must return
// fsm.CooldownElapsed some cycles after Attached: the machine leaves its
// cooldown state only on that event.
type Policy interface {
	Evaluate(policy.Observation) policy.Decision
	Attached(id string)
	MigrationFailed(id string)
	Forced()
}

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
	Identity Identity
	// Secret is the cluster secret. When set, every frame is signed and
	// every received frame must verify; it is never logged, and printing
	// or marshalling the Config shows it redacted.
	Secret Secret

	// Policy configures the default hysteresis policy; Decider, when set,
	// replaces it.
	Policy  policy.Config
	Decider Policy

	HandshakeTimeout time.Duration // dial + hello + welcome; default 10s
	// OverlapGrace is how long after the new link's welcome messages may
	// still reach the new substrate before it forwards to us; it must exceed
	// the mesh's propagation skew between substrates. Default 1s.
	OverlapGrace time.Duration
	// OverlapMin is when the driver takes stock of what the new link must
	// catch up on; at least OverlapGrace. Default 2s.
	OverlapMin time.Duration
	// OverlapMax cancels a migration whose new link never caught up
	// (a substrate that welcomes but does not forward). Default 15s.
	OverlapMax time.Duration

	HeartbeatInterval time.Duration // WebSocket ping period; default 10s
	HeartbeatTimeout  time.Duration // one ping's deadline; default HeartbeatInterval
	MissedHeartbeats  int           // consecutive failed pings that kill a link; default 3

	RejoinBackoff    time.Duration // first rejoin delay when detached; default 250ms
	RejoinBackoffMax time.Duration // cap of the doubling; default 30s

	// ReadLimit bounds one frame; larger frames are rejected and drained,
	// frames over 8×ReadLimit close the link. Default 1 MiB.
	ReadLimit int64
	Dedup     dedup.Config
	// MaxMessageAge drops gossip whose timestamp is older than this, so a
	// signed frame replayed after its id left the dedup window is not
	// delivered again (a replay within the window is a duplicate). It must
	// exceed the clock skew between publishers and this node: timestamps
	// are the publisher's unix seconds. Default Dedup.Window (60s);
	// negative turns the check off.
	MaxMessageAge time.Duration
	// DeliveryBuffer bounds gossip accepted but not yet handled. When it is
	// full the links stop reading (back-pressure to the substrates) and the
	// event loop keeps running. Default 4096.
	DeliveryBuffer int
	// Handler receives deduplicated gossip, one call at a time, in arrival
	// order, on a goroutine of its own. Nil discards gossip. It must not
	// call Node.Close, which waits for the handler to return.
	Handler func(Gossip)

	// Logger receives structured logs; nil is silent.
	Logger *zerolog.Logger
	// TLSConfig is used for wss:// links (custom CAs, client certificates).
	TLSConfig *tls.Config
	// HTTPHeader is sent with every WebSocket dial.
	HTTPHeader http.Header
}

// ErrSubstrateIdentity is returned by [New] for a node that accepts inbound
// connections: substrates never migrate and never run this code.
var ErrSubstrateIdentity = errors.New("transport: this node accepts inbound connections (a substrate); " +
	"only transient nodes migrate: do not run the migration driver on a substrate")

func (c Config) withDefaults() (Config, error) {
	if c.Identity.AcceptsInbound {
		return c, ErrSubstrateIdentity
	}
	if c.Identity.NodeID == "" {
		return c, errors.New("transport: Identity.NodeID is empty: every hello must name this node")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.HandshakeTimeout, 10*time.Second)
	def(&c.OverlapGrace, time.Second)
	def(&c.OverlapMin, 2*time.Second)
	def(&c.OverlapMax, 15*time.Second)
	def(&c.HeartbeatInterval, 10*time.Second)
	def(&c.HeartbeatTimeout, c.HeartbeatInterval)
	def(&c.RejoinBackoff, 250*time.Millisecond)
	def(&c.RejoinBackoffMax, 30*time.Second)
	if c.MissedHeartbeats == 0 {
		c.MissedHeartbeats = 3
	}
	if c.ReadLimit == 0 {
		c.ReadLimit = 1 << 20
	}
	if c.DeliveryBuffer == 0 {
		c.DeliveryBuffer = 4096
	}
	if c.MaxMessageAge == 0 {
		c.MaxMessageAge = c.Dedup.Window
		if c.MaxMessageAge <= 0 {
			c.MaxMessageAge = dedup.DefaultWindow
		}
	}
	for name, d := range map[string]time.Duration{
		"HandshakeTimeout": c.HandshakeTimeout, "OverlapGrace": c.OverlapGrace, "OverlapMin": c.OverlapMin,
		"OverlapMax": c.OverlapMax, "HeartbeatInterval": c.HeartbeatInterval, "HeartbeatTimeout": c.HeartbeatTimeout,
		"RejoinBackoff": c.RejoinBackoff, "RejoinBackoffMax": c.RejoinBackoffMax,
	} {
		if d < 0 {
			return c, fmt.Errorf("transport: %s is negative (%v): use a positive duration or zero for the default", name, d)
		}
	}
	switch {
	case c.OverlapMin < c.OverlapGrace:
		return c, fmt.Errorf("transport: OverlapMin %v is shorter than OverlapGrace %v: the catch-up check needs the grace to have passed", c.OverlapMin, c.OverlapGrace)
	case c.OverlapMax <= c.OverlapMin:
		return c, fmt.Errorf("transport: OverlapMax %v must exceed OverlapMin %v", c.OverlapMax, c.OverlapMin)
	case c.MissedHeartbeats < 0 || c.ReadLimit < 0 || c.DeliveryBuffer < 0:
		return c, errors.New("transport: MissedHeartbeats, ReadLimit and DeliveryBuffer must not be negative")
	}
	if c.Logger == nil {
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
