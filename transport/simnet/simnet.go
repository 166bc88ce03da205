// Package simnet drives transport/engine in virtual time over a simulated
// REPRAM network: substrates in a gossip mesh, transient nodes attached to
// them, and the faults REPRAM substrates really have (graceful shutdown,
// kill, SIGSTOP, capacity refusals).
//
// A [Sim] is an event queue ordered by virtual time, ties broken by the
// order events were scheduled. It runs no goroutine, reads no clock and
// opens no socket; with the same [Config.Seed] and the same calls it
// produces the same events, transitions and [Report], bit for bit.
//
// The network follows REPRAM TS:
//   - a message published on a substrate reaches every substrate (or, with
//     [SubstrateConfig.Peers], those that know the origin) after that
//     substrate's propagation Delay, which forwards it to its welcomed
//     children of its own enclave after the link's one-way latency (RTT/2),
//     except the origin itself: REPRAM never forwards a substrate's own
//     writes to its own children;
//   - a dial is connected after one RTT; the hello's welcome comes one RTT
//     after it is sent; a ping's pong one RTT after it is sent;
//   - a substrate over MaxChildren answers a hello with goodbye
//     "at capacity" and alternatives, then closes;
//   - a graceful shutdown sends goodbye twice, 500 ms apart, with up to 5
//     alternatives (its peers, same enclave first, dead ones included),
//     then closes every link;
//   - a killed substrate closes every link at once and refuses dials; a
//     hung one (SIGSTOP) sends nothing, answers nothing and lets dials hang,
//     while its links stay open, until it is resumed.
//
// REPRAM replaces a child's registration when the same node says hello
// twice; the engine must never do that, and a run in which it happens fails.
//
// Accounting (see [NodeReport]): a message is owed to a node when a
// substrate forwarded it on a link of the node's that was open (registered
// and not closed by the node); it is lost when owed and never delivered;
// it is missed when no substrate forwarded it to the node but one the node
// had just left in a healthy switch received it (the switch came too early).
package simnet

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/repram/handover/transport/engine"
	"github.com/repram/handover/transport/wire"
)

// Config configures a [Sim].
type Config struct {
	// Seed seeds the simulation; the engine of a node whose engine.Config
	// has no Seed gets one derived from it and the node's index.
	Seed uint64
	// Epoch is the wall-clock time of virtual time zero, as the engines see
	// it. Default 2026-01-01T00:00:00Z.
	Epoch time.Time
	// RTTSpread spreads the round trips: each node–substrate pair's RTT is
	// the substrate's times a factor drawn once per pair from the seed,
	// uniform in [1-RTTSpread, 1+RTTSpread]. 0: every node sees the
	// substrate's RTT. Must be below 1.
	RTTSpread float64
	// LinkRTT, when set, gives the round trip between node and substrate
	// from the substrate's current RTT (after RTTSpread), for other
	// distributions.
	LinkRTT func(node NodeID, sub int, base time.Duration) time.Duration
	// OnTransition, when set, is called for every transition an engine
	// takes, at the virtual time it took it.
	OnTransition func(node NodeID, tr engine.Transition)
	// NoChecks turns off the per-step invariant checks (link/state
	// agreement), for large runs.
	NoChecks bool
	// MaxEvents bounds one Run; 0 means 100 million.
	MaxEvents int
}

// SubstrateConfig describes one substrate.
type SubstrateConfig struct {
	// ID is the substrate's node id: letters, digits, '-', '_' or '.'.
	ID      string
	Enclave string
	// Delay is how long a published message takes to reach this substrate
	// through the mesh (0 for the origin itself is not implied: the origin
	// receives its own publishes after its Delay too).
	Delay time.Duration
	// RTT is the round trip between a node and this substrate, unless
	// Config.LinkRTT says otherwise.
	RTT time.Duration
	// MaxChildren is REPRAM_MAX_CHILDREN; 0 means unlimited.
	MaxChildren int
	// Peers, when non-nil, makes the mesh partial: the substrate receives
	// only the publishes whose origin is itself or one of Peers, and names
	// only Peers in goodbyes and welcomes. Nil: every substrate is a peer.
	Peers []string
	// Hidden substrates are never named to transient nodes (in a welcome's
	// topology or a goodbye's alternatives): a writers' substrate, say.
	// Their publishes reach the mesh as any other's.
	Hidden bool
}

// NodeID identifies a node of a [Sim]: its index in the order of AddNode.
type NodeID int

// NodeConfig describes one transient node.
type NodeConfig struct {
	// Engine configures the node's engine. An empty NodeID becomes "n<index>".
	Engine engine.Config
	// Attach is the id of the substrate the node attaches to first; empty:
	// the node waits for Sim.Attach.
	Attach string
	// At is when it attaches.
	At time.Duration
	// ObserveEvery is the embedder's evaluation cycle: every ObserveEvery
	// the node is given an engine.Observe with the round trips of the
	// substrates its engine knows (0 for a dead or hung one). 0: never.
	ObserveEvery time.Duration
}

// Sim is a simulated network and the engines it drives. It is not safe for
// concurrent use.
type Sim struct {
	cfg   Config
	now   int64
	seq   uint64
	q     queue
	subs  []*substrate
	byID  map[string]*substrate
	byURL map[string]*substrate
	nodes []*node

	linkTab   []*simLink // by slot; nil when free
	linkGen   []uint32   // each slot's generation
	freeLinks []int32

	fns      []func()
	rates    []rate
	goodbyes []wire.Goodbye
	pings    []ping
	freePing []int32
	msgs     []msgRec
	gossipIn engine.GossipReceived // the input of every gossip frame, reused
	obsBuf   []engine.Candidate    // the candidates of every Observe, reused
	ids      string                // the ids of the current block of idBlock messages
	idEnds   [idBlock]int32        // where each id of the block ends in ids

	refusals    int
	rehome      []time.Duration
	switches    []time.Duration
	unowedDeliv int
	err         error
	events      int
	atNow       int // events run at the current instant
}

// rate is a PublishRate schedule.
type rate struct {
	origin int32
	period int64
	until  int64
}

// ping is an outstanding engine.Ping.
type ping struct {
	lk   *simLink
	sent int64
	gen  uint32
	done bool
}

// msgRec is one published message.
type msgRec struct {
	id     string
	at     int64
	unix   int64 // its timestamp: Unix seconds of the epoch plus at
	origin int32
}

// New returns an empty simulation at virtual time zero.
func New(cfg Config) *Sim {
	if cfg.Epoch.IsZero() {
		cfg.Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	cfg.RTTSpread = min(max(cfg.RTTSpread, 0), 0.99)
	if cfg.MaxEvents == 0 {
		cfg.MaxEvents = 100_000_000
	}
	return &Sim{cfg: cfg, byID: map[string]*substrate{}, byURL: map[string]*substrate{}}
}

// Now returns the current virtual time.
func (s *Sim) Now() time.Duration { return time.Duration(s.now) }

// Time returns the current virtual time as the engines see it.
func (s *Sim) Time() time.Time { return s.cfg.Epoch.Add(time.Duration(s.now)) }

// Err returns the first invariant violation, or nil.
func (s *Sim) Err() error { return s.err }

// fail records the first violation; Run stops at it.
func (s *Sim) fail(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf("simnet: at %v: "+format, append([]any{s.Now()}, args...)...)
	}
}

// URL returns the attachment URL of the substrate with the given id.
func URL(id string) string { return "ws://" + id + ":8080/v1/ws" }

// AddSubstrate adds a substrate. It fails on an invalid or duplicate id or
// a negative duration.
func (s *Sim) AddSubstrate(c SubstrateConfig) error {
	if c.ID == "" || strings.IndexFunc(c.ID, func(r rune) bool {
		return !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) >= 0 {
		return fmt.Errorf("simnet: substrate id %q: use letters, digits, '-', '_' or '.'", c.ID)
	}
	if s.byID[c.ID] != nil {
		return fmt.Errorf("simnet: substrate %q added twice", c.ID)
	}
	if c.Delay < 0 || c.RTT < 0 || c.MaxChildren < 0 {
		return fmt.Errorf("simnet: substrate %q: negative Delay, RTT or MaxChildren", c.ID)
	}
	sub := &substrate{idx: int32(len(s.subs)), cfg: c, url: URL(c.ID), rtt: int64(c.RTT)}
	s.subs = append(s.subs, sub)
	s.byID[c.ID] = sub
	s.byURL[sub.url] = sub
	for _, o := range s.subs {
		o.welcome = nil // topology changed: rebuild on the next welcome
	}
	return nil
}

// MustAddSubstrate is AddSubstrate for tests and fixed setups: it panics on
// an error.
func (s *Sim) MustAddSubstrate(c SubstrateConfig) {
	if err := s.AddSubstrate(c); err != nil {
		panic(err)
	}
}

// AddNode adds a transient node that attaches at c.At. It fails when the
// substrate is unknown or the engine config is invalid.
func (s *Sim) AddNode(c NodeConfig) (NodeID, error) {
	sub := s.byID[c.Attach]
	if sub == nil && c.Attach != "" {
		return 0, fmt.Errorf("simnet: node attaches to unknown substrate %q: add it first", c.Attach)
	}
	id := NodeID(len(s.nodes))
	ec := c.Engine
	if ec.NodeID == "" {
		ec.NodeID = "n" + strconv.Itoa(int(id))
	}
	if ec.Seed == 0 {
		ec.Seed = s.cfg.Seed*0x9e3779b97f4a7c15 + uint64(id) + 1
	}
	eng, err := engine.New(ec)
	if err != nil {
		return 0, fmt.Errorf("simnet: node %s: %w", ec.NodeID, err)
	}
	n := &node{idx: int32(id), id: ec.NodeID, enclave: ec.Enclave, eng: eng, tickAt: -1,
		observeEvery: int64(c.ObserveEvery), noLinkSince: -1, goodbyeAt: -1, switchFrom: -1}
	s.nodes = append(s.nodes, n)
	if sub != nil {
		s.At(c.At, func() { s.Attach(id, sub.cfg.ID) })
	}
	if c.ObserveEvery > 0 {
		s.push(event{at: int64(c.At + c.ObserveEvery), kind: evObserve, node: n.idx})
	}
	return id, nil
}

// Attach has node id attach to substrate sub now (the embedder's Attach).
// The engine refusing it (the node is not detached) fails the run.
func (s *Sim) Attach(id NodeID, sub string) {
	s.step(s.nodes[id], engine.Attach{Substrate: s.mustSub(sub).substrate()})
}

// Node returns the engine of node id, for inspection between runs. Do not
// step it.
func (s *Sim) Node(id NodeID) *engine.Engine { return s.nodes[id].eng }

// At runs f at virtual time d (now, if d has passed). f may call any
// method of the Sim but Run.
func (s *Sim) At(d time.Duration, f func()) {
	s.fns = append(s.fns, f)
	s.push(event{at: max(int64(d), s.now), kind: evFunc, aux: int32(len(s.fns) - 1)})
}

func (s *Sim) push(e event) {
	s.seq++
	e.seq = s.seq
	s.q.push(e)
}

// Publish publishes one message on substrate origin now and returns its
// index. It panics on an unknown substrate.
func (s *Sim) Publish(origin string) int {
	o := s.mustSub(origin)
	i := len(s.msgs)
	s.msgs = append(s.msgs, msgRec{id: s.msgID(i), at: s.now, unix: s.Time().Unix(), origin: o.idx})
	for _, sub := range s.subs {
		if sub.receives(o) {
			s.push(event{at: s.now + int64(sub.cfg.Delay), kind: evArrive, sub: sub.idx, msg: int32(i)})
		}
	}
	return i
}

// idBlock is how many message ids share one allocation.
const idBlock = 64

// msgID returns the id of message i, "m<i>", for i = len(s.msgs): the ids
// are cut from one string per idBlock messages (every id stays referenced
// by s.msgs anyway), not allocated one by one.
func (s *Sim) msgID(i int) string {
	k := i % idBlock
	if k == 0 {
		b := make([]byte, 0, idBlock*(len(strconv.Itoa(i+idBlock))+1))
		for j := range idBlock {
			b = append(b, 'm')
			b = strconv.AppendInt(b, int64(i+j), 10)
			s.idEnds[j] = int32(len(b))
		}
		s.ids = string(b)
	}
	start := int32(0)
	if k > 0 {
		start = s.idEnds[k-1]
	}
	return s.ids[start:s.idEnds[k]]
}

// PublishRate publishes perSecond messages a second on origin, evenly
// spaced, from virtual time from until until (inclusive).
func (s *Sim) PublishRate(origin string, perSecond float64, from, until time.Duration) {
	o := s.mustSub(origin)
	if perSecond <= 0 {
		return
	}
	r := rate{origin: o.idx, period: max(int64(float64(time.Second)/perSecond), 1), until: int64(until)}
	s.rates = append(s.rates, r)
	start := max(int64(from), s.now)
	if r.until >= start { // room for what it publishes, rather than growing as it goes
		s.msgs = slices.Grow(s.msgs, int((r.until-start)/r.period)+1)
	}
	s.push(event{at: start, kind: evPublish, sub: o.idx, aux: int32(len(s.rates) - 1)})
}

// Published returns how many messages were published so far.
func (s *Sim) Published() int { return len(s.msgs) }

// PublishedBetween counts the messages published in [from, to].
func (s *Sim) PublishedBetween(from, to time.Duration) int {
	lo, _ := slices.BinarySearchFunc(s.msgs, int64(from), func(m msgRec, t int64) int { return cmpInt(m.at, t) })
	hi, _ := slices.BinarySearchFunc(s.msgs, int64(to)+1, func(m msgRec, t int64) int { return cmpInt(m.at, t) })
	return hi - lo
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *Sim) mustSub(id string) *substrate {
	sub := s.byID[id]
	if sub == nil {
		panic(fmt.Sprintf("simnet: unknown substrate %q", id))
	}
	return sub
}

// maxAtOneInstant bounds the events of one virtual instant: more is a
// loop, not a busy network.
const maxAtOneInstant = 10_000_000

// ErrTooManyEvents is returned by Run when Config.MaxEvents events ran.
var ErrTooManyEvents = errors.New("simnet: too many events: raise Config.MaxEvents, or look for a loop of zero-delay events")

// Run runs every event up to and including virtual time until, then sets
// the clock to until. It returns the first invariant violation.
func (s *Sim) Run(until time.Duration) error {
	end := int64(until)
	for len(s.q) > 0 && s.q[0].at <= end && s.err == nil {
		if s.events++; s.events > s.cfg.MaxEvents {
			return ErrTooManyEvents
		}
		e := s.q.pop()
		if e.at > s.now {
			s.now, s.atNow = e.at, 0
		}
		if s.atNow++; s.atNow > maxAtOneInstant {
			return fmt.Errorf("simnet: at %v: %d events at one instant: a loop of zero-delay events (an engine deadline that never passes?)", s.Now(), s.atNow)
		}
		s.dispatch(e)
	}
	if s.err == nil && end > s.now {
		s.now = end
	}
	return s.err
}

func (s *Sim) dispatch(e event) {
	switch e.kind {
	case evFunc:
		f := s.fns[e.aux]
		s.fns[e.aux] = nil
		f()
	case evPublish:
		r := s.rates[e.aux]
		s.Publish(s.subs[r.origin].cfg.ID)
		if next := s.now + r.period; next <= r.until {
			s.push(event{at: next, kind: evPublish, sub: e.sub, aux: e.aux})
		}
	case evArrive:
		s.subs[e.sub].arrive(s, e.msg)
	case evConnect:
		if lk := s.linkOf(e); lk != nil {
			s.connect(lk)
		}
	case evHello:
		if lk := s.linkOf(e); lk != nil {
			lk.sub.hello(s, lk, e.aux == 1)
		}
	case evToNode:
		if lk := s.linkOf(e); lk != nil {
			s.toNodeArrived(lk, e)
		}
	case evPong, evPingLost:
		s.pingDone(e)
	case evTick:
		n := s.nodes[e.node]
		if n.tickAt == e.at && !n.closed {
			n.tickAt = -1
			s.step(n, engine.Tick{})
		}
	case evObserve:
		s.observe(s.nodes[e.node])
	case evShutdownEnd:
		s.subs[e.sub].shutdownEnd(s)
	case evRelease:
		if lk := s.linkOf(e); lk != nil {
			s.release(lk)
		}
	}
}
