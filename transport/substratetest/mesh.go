package substratetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/repram/handover/transport/wire"
)

// Defaults for [MeshConfig] and [Config] fields left zero.
const (
	// DefaultQueueSize is how many frames a child's outgoing queue holds
	// before the substrate gives up on the child and drops its connection.
	DefaultQueueSize = 1024
	// DefaultWriteTimeout bounds one frame write; a child that does not take
	// a frame within it is dropped, as a real server's write timeout would.
	DefaultWriteTimeout = 5 * time.Second
	// DefaultGoodbyeGap is the gap between the two goodbyes of a
	// [Server.Shutdown] with twice set, as REPRAM TS v2.1 sends them.
	DefaultGoodbyeGap = 500 * time.Millisecond
	// DefaultEnclave is the enclave of a substrate whose [Config] names none.
	DefaultEnclave = "default"
	// DefaultTTL is the ttl, in seconds, given to published PUTs without one.
	DefaultTTL = 300
	// REPRAMHeartbeat is the WebSocket ping interval of a REPRAM TS v2.1
	// substrate. Set [Config].Heartbeat to it for a faithful substrate; the
	// zero value turns heartbeats off, which suits most short tests.
	REPRAMHeartbeat = 30 * time.Second
	// HeartbeatMisses is how many consecutive unanswered pings drop a child.
	HeartbeatMisses = 3
	// PublisherID is the from of messages published with [Mesh.Publish]: a
	// mesh member that no child can attach to.
	PublisherID = "substratetest-publisher"
	// MaxAlternatives is how many alternative parents a goodbye names when
	// the substrate picks them itself, as REPRAM does.
	MaxAlternatives = 5
)

// Errors returned by the package. They are wrapped with details; match them
// with errors.Is.
var (
	// ErrMeshClosed: the mesh was closed; make a new one with [NewMesh].
	ErrMeshClosed = errors.New("substratetest: mesh closed")
	// ErrUnknownSubstrate: no live substrate has that id; start it first.
	ErrUnknownSubstrate = errors.New("substratetest: no live substrate with this id")
	// ErrDuplicateID: a live substrate already has that id; stop it first
	// or pick another id.
	ErrDuplicateID = errors.New("substratetest: a live substrate already has this id")
	// ErrStopped: the substrate was closed, killed or shut down.
	ErrStopped = errors.New("substratetest: substrate stopped")
	// ErrUnknownChild: no connection of the substrate sent a hello with that
	// node id, or it is gone.
	ErrUnknownChild = errors.New("substratetest: no connection for this node id")
)

// MeshConfig configures a [Mesh]. The zero value is a mesh without a cluster
// secret that logs nothing.
type MeshConfig struct {
	// Secret is the cluster secret. When set, every frame the substrates send
	// is signed, and hellos that are unsigned or badly signed are dropped
	// silently, with no reply, as REPRAM does.
	Secret []byte
	// Logger receives the substrates' logs. The zero value is silent.
	Logger zerolog.Logger
	// QueueSize bounds the frames waiting to be written to one connection
	// (default [DefaultQueueSize]). The queue grows with the backlog and
	// shrinks after it, so a large bound costs little until a child falls
	// behind.
	QueueSize int
	// WriteTimeout bounds each frame write (default [DefaultWriteTimeout]).
	WriteTimeout time.Duration
	// GoodbyeGap is the pause between the two goodbyes of
	// Shutdown(…, twice=true) (default [DefaultGoodbyeGap]); tests use a
	// few milliseconds.
	GoodbyeGap time.Duration
}

// Mesh is a simulated REPRAM gossip mesh: the substrates started in it see
// every message published in it, each after its own propagation delay, and
// forward it to their children. All methods are safe for concurrent use.
type Mesh struct {
	cfg MeshConfig
	log zerolog.Logger

	mu        sync.Mutex
	subs      map[string]*Server // by id; the latest started
	all       []*Server          // every substrate ever started, for Close
	closed    bool
	seq       uint64
	published int
	forwarded map[string]int // by child node id
	wg        sync.WaitGroup // crash goroutines
}

// NewMesh returns an empty mesh. Close it when done: [Mesh.Close] stops all
// its substrates.
func NewMesh(cfg MeshConfig) *Mesh {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.GoodbyeGap <= 0 {
		cfg.GoodbyeGap = DefaultGoodbyeGap
	}
	cfg.Secret = slices.Clone(cfg.Secret)
	return &Mesh{
		cfg:       cfg,
		log:       cfg.Logger,
		subs:      make(map[string]*Server),
		forwarded: make(map[string]int),
	}
}

// Secret returns a copy of the mesh's cluster secret.
func (m *Mesh) Secret() []byte { return slices.Clone(m.cfg.Secret) }

// Substrate returns the substrate last started with id, live or stopped, or
// nil if there is none.
func (m *Mesh) Substrate(id string) *Server {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.subs[id]
}

// Substrates returns the live substrates, sorted by id.
func (m *Mesh) Substrates() []*Server {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.liveLocked()
}

func (m *Mesh) liveLocked() []*Server {
	out := make([]*Server, 0, len(m.subs))
	for _, s := range m.subs {
		if s.live.Load() {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b *Server) int { return strings.Compare(a.cfg.ID, b.cfg.ID) })
	return out
}

// Publish makes a PUT enter the mesh from a publisher outside it: every live
// substrate receives it after its delay and forwards it to its same-enclave
// children. Empty fields are filled in: type "PUT", from [PublisherID],
// timestamp now, message_id "UNIXNANO-COUNTER" (unique in the mesh), key
// = message_id, ttl [DefaultTTL]. It returns the message as sent.
func (m *Mesh) Publish(msg wire.Message) (wire.Message, error) {
	return m.publish("", msg)
}

// PublishVia makes a PUT as if written directly on the substrate originID
// (over its HTTP API): like REPRAM TS v2.1, it reaches the other substrates'
// children through the mesh but not originID's own children. Empty fields
// are filled as by [Mesh.Publish], with from = originID.
func (m *Mesh) PublishVia(originID string, msg wire.Message) (wire.Message, error) {
	if originID == "" {
		return wire.Message{}, fmt.Errorf("%w: empty origin id", ErrUnknownSubstrate)
	}
	return m.publish(originID, msg)
}

func (m *Mesh) publish(origin string, msg wire.Message) (wire.Message, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return wire.Message{}, ErrMeshClosed
	}
	if origin != "" {
		if s := m.subs[origin]; s == nil || !s.live.Load() {
			return wire.Message{}, fmt.Errorf("%w: %q", ErrUnknownSubstrate, origin)
		}
	}
	m.seq++
	now := time.Now()
	if msg.Type == "" {
		msg.Type = "PUT"
	}
	if msg.From == "" {
		msg.From = origin
		if origin == "" {
			msg.From = PublisherID
		}
	}
	if msg.Timestamp == 0 {
		msg.Timestamp = now.Unix()
	}
	if msg.MessageID == "" {
		msg.MessageID = fmt.Sprintf("%d-%d", now.UnixNano(), m.seq)
	}
	if msg.Key == "" {
		msg.Key = msg.MessageID
	}
	if msg.TTL == 0 {
		msg.TTL = DefaultTTL
	}
	m.published++
	for id, s := range m.subs {
		if id != origin && s.live.Load() {
			s.deliver(msg)
		}
	}
	return msg, nil
}

// Published returns how many messages entered the mesh: through
// [Mesh.Publish], [Mesh.PublishVia], and put frames children sent to a
// substrate.
func (m *Mesh) Published() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.published
}

// Forwarded returns how many valid put frames the substrates wrote to
// connections registered under childID, all substrates together. A frame
// counts once the WebSocket write returned, not when the child read it.
func (m *Mesh) Forwarded(childID string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.forwarded[childID]
}

func (m *Mesh) countForward(childID string) {
	m.mu.Lock()
	m.forwarded[childID]++
	m.mu.Unlock()
}

// topology is the welcome's topology as substrate self sends it: one SYNC
// message per live substrate, itself included.
func (m *Mesh) topology(self string) []wire.Message {
	m.mu.Lock()
	live := m.liveLocked()
	m.mu.Unlock()
	now := time.Now().Unix()
	out := make([]wire.Message, 0, len(live))
	for _, s := range live {
		ni := s.nodeInfo()
		out = append(out, wire.Message{Type: "SYNC", From: self, Timestamp: now, NodeInfo: &ni})
	}
	return out
}

// alternatives is what a REPRAM substrate names in a goodbye when the test
// did not choose: its live peers, same enclave first, at most
// [MaxAlternatives].
func (m *Mesh) alternatives(self *Server) []wire.Parent {
	m.mu.Lock()
	live := m.liveLocked()
	m.mu.Unlock()
	var same, other []wire.Parent
	for _, s := range live {
		switch {
		case s == self:
		case s.cfg.Enclave == self.cfg.Enclave:
			same = append(same, s.Parent())
		default:
			other = append(other, s.Parent())
		}
	}
	out := append(same, other...)
	if len(out) > MaxAlternatives {
		out = out[:MaxAlternatives]
	}
	return out
}

// Close stops every substrate of the mesh (as [Server.Close]) and waits
// for all their goroutines. Publishing afterwards fails with [ErrMeshClosed].
func (m *Mesh) Close() {
	m.mu.Lock()
	m.closed = true
	subs := slices.Clone(m.all)
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range subs {
		wg.Go(s.Close)
	}
	wg.Wait()
	m.wg.Wait()
}
