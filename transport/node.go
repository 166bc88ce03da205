package transport

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/policy"
	"github.com/repram/handover/transport/engine"
	"github.com/repram/handover/transport/wire"
)

// Gossip is one deduplicated gossip message handed to the embedder.
type Gossip = engine.Gossip

// Transition is one transition the machine took, as subscribers see it.
type Transition = engine.Transition

// Stats counts what the node did. All counters only grow.
type Stats = engine.Stats

// Status is a snapshot of the node.
type Status struct {
	State      fsm.State
	Primary    Substrate
	Candidates []Substrate // racing candidates, in dial order
	PrimaryRTT time.Duration
	Stats      Stats
	// TransitionsDropped counts transitions not delivered to a full
	// subscriber channel.
	TransitionsDropped int
}

// Errors returned by the embedder API.
var (
	ErrDetached = errors.New("transport: no primary link: the node is detached or joining; retry after it attaches")
	ErrClosed   = errors.New("transport: node closed: create a new Node to attach again")
)

// Node is one transient node: a thin shell around the migration engine
// (package engine). One event loop goroutine owns the engine; it feeds it
// what the links, the timer and the API report, and carries out the effects
// it returns: dial, hello, ping, close, deliver, publish a transition. The
// loop decides nothing itself. Create a Node with [New], give it a
// substrate with [Node.Attach], feed [Node.Observe] once per evaluation
// cycle, and [Node.Close] it when done.
type Node struct {
	cfg  Config
	log  zerolog.Logger
	env  linkEnv
	root context.Context
	stop context.CancelFunc

	ready     chan *link // links with reports in their mailbox
	cmds      chan func()
	out       chan *Gossip // pointers: a full buffer's messages are allocated only when queued
	loopDone  chan struct{}
	delivDone chan struct{}
	wg        sync.WaitGroup // link goroutines
	closeOnce sync.Once

	mu     sync.Mutex
	status Status

	// Owned by the event loop.
	eng     *engine.Engine
	links   map[engine.LinkID]*link
	timer   *time.Timer
	subs    []chan Transition
	dropped int
	decided policy.Decision
	exiting bool
}

// New validates cfg and starts the node's event loop, detached. It refuses
// an identity that accepts inbound connections with [ErrSubstrateIdentity].
func New(cfg Config) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	pol := cfg.Decider
	if pol == nil {
		ev, err := policy.New(cfg.Policy)
		if err != nil {
			return nil, fmt.Errorf("transport: policy: %w", err)
		}
		pol = ev
	}
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	log := cfg.Logger.With().Str("node", cfg.Identity.NodeID).Logger()
	ecfg, err := engine.Config{NodeID: cfg.Identity.NodeID, Enclave: cfg.Identity.Enclave,
		Policy: pol, BreakBeforeMake: cfg.BreakBeforeMake, Tuning: cfg.Tuning, Seed: binary.LittleEndian.Uint64(seed[:]), Logger: log}.WithDefaults()
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	cfg.Tuning = ecfg.Tuning // resolved, for the probes' deadline
	eng, err := engine.New(ecfg)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	hello, err := wire.Encode(wire.TypeHello, cfg.helloPayload(), cfg.Secret)
	if err != nil {
		return nil, fmt.Errorf("transport: encode hello: %w", err)
	}
	root, stop := context.WithCancel(context.Background())
	n := &Node{
		cfg: cfg, log: log, root: root, stop: stop,
		ready: make(chan *link, 64), cmds: make(chan func()),
		out: make(chan *Gossip, cfg.DeliveryBuffer), loopDone: make(chan struct{}), delivDone: make(chan struct{}),
		eng: eng, links: map[engine.LinkID]*link{}, timer: time.NewTimer(time.Hour),
	}
	n.env = linkEnv{cfg: &n.cfg, hello: hello, ready: n.ready, loopDone: n.loopDone,
		credits: make(chan struct{}, cfg.DeliveryBuffer), wg: &n.wg}
	n.publish()
	go n.loop()
	go n.deliver()
	return n, nil
}

// enqueue runs f on the loop; false once the loop has exited.
func (n *Node) enqueue(f func()) bool {
	select {
	case n.cmds <- f:
		return true
	case <-n.loopDone:
		return false
	}
}

// call runs f on the loop and waits for its result.
func (n *Node) call(ctx context.Context, f func() error) error {
	res := make(chan error, 1)
	select {
	case n.cmds <- func() { res <- f() }:
	case <-n.loopDone:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued, f runs: wait for it even past ctx, so a caller that sees
	// an error knows f did not run (an Observe retried after a timeout must
	// not count two cycles). The loop never blocks for long.
	return <-res
}

// publishEvery bounds how many gossip messages of a burst the loop handles
// before it refreshes the Status snapshot.
const publishEvery = 256

func (n *Node) loop() {
	defer close(n.loopDone)
	defer n.timer.Stop()
	unpublished := 0 // gossip steps since the last snapshot
	for !n.exiting {
		publish := true
		select {
		case l := <-n.ready:
			gossip, other := n.drain(l)
			// A burst of gossip changes only counters: the snapshot is
			// taken when the burst drains, or every publishEvery messages
			// of it.
			unpublished += gossip
			publish = other || len(n.ready) == 0 || unpublished >= publishEvery
		case f := <-n.cmds:
			f()
		case <-n.timer.C:
			n.step(time.Now(), engine.Tick{})
		}
		if publish {
			n.publish()
			unpublished = 0
		}
		if at, ok := n.eng.NextDeadline(); ok && !n.exiting {
			n.timer.Reset(time.Until(at))
		}
	}
}

// drain steps the engine through every report in l's mailbox, all at the
// time they are taken, and says how many were gossip and whether any was
// not.
func (n *Node) drain(l *link) (gossip int, other bool) {
	batch := l.take()
	now := time.Now()
	for i := range batch {
		if n.exiting {
			break
		}
		r := &batch[i]
		if r.in != nil {
			other = true
			n.step(now, r.in)
		} else {
			gossip++
			n.step(now, r.gossip)
		}
	}
	l.done(batch)
	return gossip, other
}

// step feeds one input that happened at now to the engine and carries out
// its effects.
func (n *Node) step(now time.Time, in engine.Input) error {
	effects, err := n.eng.Step(now, in)
	if err != nil {
		return err
	}
	delivered, transitioned := false, false
	for _, f := range effects {
		switch f := f.(type) {
		case engine.Dial:
			l := newLink(n.root, f.Link, f.Target)
			n.links[f.Link] = l
			n.wg.Add(1)
			go l.run(n.env)
		case engine.SendHello:
			if l := n.links[f.Link]; l != nil {
				l.sendHello()
			}
		case engine.Ping:
			if l := n.links[f.Link]; l != nil {
				l.ping(f.Timeout)
			}
		case engine.CloseLink:
			if l := n.links[f.Link]; l != nil {
				code := websocket.StatusNormalClosure
				if f.Code == engine.CloseAbort {
					code = 0
				}
				l.stop(code)
				delete(n.links, f.Link)
			}
		case engine.Deliver:
			delivered = true
			n.out <- f.Gossip // never blocks: the reader took a credit for it
		case engine.Transitioned:
			transitioned = true
		case engine.Decided:
			n.decided = f.Decision
		case engine.Closed:
			n.exiting = true
			close(n.out)
		}
	}
	if _, gossip := in.(engine.GossipReceived); gossip && !delivered {
		<-n.env.credits // a duplicate, stale or rejected message: its credit returns
	}
	if transitioned {
		// A subscriber told of a transition must find Status agreeing.
		n.publish()
		for _, f := range effects {
			if t, ok := f.(engine.Transitioned); ok {
				n.notify(t.Transition)
			}
		}
	}
	if n.exiting {
		for _, ch := range n.subs {
			close(ch) // after the close transition itself
		}
		n.subs = nil
	}
	return nil
}

// notify hands a transition to every subscriber without blocking the loop.
func (n *Node) notify(tr Transition) {
	for _, ch := range n.subs {
		select {
		case ch <- tr:
		default:
			n.dropped++
		}
	}
}

// deliver hands gossip to the handler and returns each message's credit.
func (n *Node) deliver() {
	defer close(n.delivDone)
	for g := range n.out {
		if n.cfg.Handler != nil {
			n.cfg.Handler(*g)
		}
		<-n.env.credits
	}
}

// Attach starts attaching to s. It returns once the attempt has started;
// watch [Node.Subscribe] or [Node.Status] for the outcome. It is refused
// unless the node is detached: once attached, the node migrates by itself.
func (n *Node) Attach(ctx context.Context, s Substrate) error {
	if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return fmt.Errorf("transport: substrate URL %q: want ws://HOST:PORT/v1/ws or wss://HOST:PORT/v1/ws", s.URL)
	}
	return n.call(ctx, func() error {
		if err := n.step(time.Now(), engine.Attach{Substrate: s}); err != nil {
			return fmt.Errorf("transport: %w", err)
		}
		return nil
	})
}

// Candidate is a substrate the embedder measured this cycle.
type Candidate = engine.Candidate

// Observation is one evaluation cycle's measurements.
type Observation struct {
	// CurrentLatency is the primary's latency; 0 uses the round trip the
	// node's own pings measured.
	CurrentLatency time.Duration
	Candidates     []Candidate
	// Measure makes Observe measure every candidate whose Latency is 0
	// with [Probe] (Config's TLSConfig and HTTPHeader, bounded by ctx and
	// the handshake timeout) before the policy sees the cycle. The probes
	// run concurrently on the caller's goroutine, never on the event loop;
	// a candidate that cannot be probed stays unmeasured.
	Measure bool
}

// Observe feeds one evaluation cycle to the policy, which may start a
// migration. Call it once per cycle. It returns the policy's decision.
func (n *Node) Observe(ctx context.Context, obs Observation) (policy.Decision, error) {
	select {
	case <-n.loopDone:
		return policy.Decision{}, ErrClosed
	default:
	}
	if obs.Measure {
		obs = n.measure(ctx, obs)
	}
	var d policy.Decision
	err := n.call(ctx, func() error {
		if err := n.step(time.Now(), engine.Observe{CurrentLatency: obs.CurrentLatency, Candidates: obs.Candidates}); err != nil {
			return ErrClosed
		}
		d = n.decided
		return nil
	})
	return d, err
}

// Send writes one frame through the current primary: a clear [ErrDetached]
// while there is none. The write runs on the caller's goroutine, bounded by
// ctx, never on the event loop. A ctx that expires mid-write (a primary that
// stopped reading) leaves a partial WebSocket frame, so the link is closed:
// the node then treats the primary as dead and reattaches, and a Send to it
// meanwhile returns an error wrapping [ErrDetached].
func (n *Node) Send(ctx context.Context, t wire.Type, payload any) error {
	frame, err := wire.Encode(t, payload, n.cfg.Secret)
	if err != nil {
		return err
	}
	var conn *websocket.Conn
	if err := n.call(ctx, func() error {
		id, _, ok := n.eng.Primary()
		if l := n.links[id]; ok && l != nil {
			conn = l.conn.Load()
		}
		if conn == nil {
			return ErrDetached
		}
		return nil
	}); err != nil {
		return err
	}
	if err := conn.Write(ctx, websocket.MessageText, frame); err != nil {
		return sendError(t, err)
	}
	return nil
}

// sendError says why a write through the primary failed. A connection
// already closed when the write began means the primary is lost and the node
// is reattaching: the error wraps [ErrDetached], so a caller knows to retry
// once it has. That happens when the substrate goes away between the lookup
// and the write, and after a Send whose ctx expired just as its write ended:
// the WebSocket library then closes the connection, though that write
// returned nil.
func sendError(t wire.Type, err error) error {
	if errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("transport: send %s: the primary link has closed (%w): %w", t, err, ErrDetached)
	}
	return fmt.Errorf("transport: send %s through primary: %w", t, err)
}

// Status returns a snapshot of the state, links and counters; the caller
// owns it (its Candidates are a copy).
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.status
	s.Candidates = slices.Clone(s.Candidates)
	return s
}

// Subscribe returns a channel of every transition from now on. Sends never
// block the loop: a full channel loses the transition (counted in
// Status.TransitionsDropped). The channel is closed by Close.
func (n *Node) Subscribe(buffer int) <-chan Transition {
	ch := make(chan Transition, buffer)
	if !n.enqueue(func() { n.subs = append(n.subs, ch) }) {
		close(ch)
	}
	return ch
}

// Close closes every link and stops the node. It waits, bounded by ctx, for
// every goroutine the node started and for the handler to finish what was
// already delivered.
func (n *Node) Close(ctx context.Context) error {
	n.closeOnce.Do(func() {
		n.enqueue(func() { _ = n.step(time.Now(), engine.Close{}) })
	})
	done := make(chan struct{})
	go func() {
		<-n.loopDone
		// The loop stopped every link cleanly; let their close handshakes
		// finish before cancelling what is left.
		n.wg.Wait()
		n.stop()
		<-n.delivDone
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		n.stop() // cut the close handshakes short
		return fmt.Errorf("transport: close: %w (links or the handler are still finishing)", ctx.Err())
	}
}

// publish copies the loop's view into the snapshot Status reads.
func (n *Node) publish() {
	s := Status{State: n.eng.State(), Candidates: n.eng.Candidates(), PrimaryRTT: n.eng.PrimaryRTT(),
		Stats: n.eng.Stats(), TransitionsDropped: n.dropped}
	_, s.Primary, _ = n.eng.Primary()
	n.mu.Lock()
	n.status = s
	n.mu.Unlock()
}
