package simnet

import (
	"time"

	"github.com/repram/handover/transport/engine"
	"github.com/repram/handover/transport/wire"
)

// GoodbyeInterval is the time between REPRAM's two shutdown goodbyes; the
// links close right after the second.
const GoodbyeInterval = 500 * time.Millisecond

// MaxAlternatives is how many alternatives a REPRAM goodbye names at most.
const MaxAlternatives = 5

// substrate is one simulated REPRAM substrate.
type substrate struct {
	idx int32
	cfg SubstrateConfig
	url string
	rtt int64

	dead      bool  // killed, or shut down: dials are refused
	hung      bool  // SIGSTOPped: nothing is processed until resumed
	leaving   bool  // between the first goodbye and the close
	noForward bool  // welcomes but forwards nothing
	refuse    bool  // refuses connections
	badFrames bool  // every frame it sends fails to decode
	full      bool  // answers every hello "at capacity"
	slowHello int64 // how long it takes to answer a hello

	conns    []*simLink // open connections, registered or not
	children int        // registered ones
	refusals int        // hellos answered "at capacity"
	parked   []parked   // work held while hung
	welcome  *wire.Welcome
	departed []departure  // healthy closes of its links, newest last, for Missed
	peers    []*substrate // resolved Peers; nil until first used
	peersOK  bool
}

// departure is a node closing its link to a healthy substrate, keeping
// succ, a welcomed link to another.
type departure struct {
	node *node
	at   int64
	succ *simLink
}

// MissWindow is how long after a node left a healthy substrate for another
// a message reaching it, forwarded to the node by no substrate, counts as
// missed, as long as the link the node kept stays open and healthy.
const MissWindow = 2 * time.Second

// parked is work a hung substrate will do once resumed.
type parked struct {
	what kind // evArrive, evConnect, evHello, evPong
	lk   *simLink
	msg  int32
	ping int32
	gen  uint32
}

// healthy: alive, running, staying and forwarding.
func (sub *substrate) healthy() bool {
	return sub != nil && !sub.dead && !sub.hung && !sub.leaving && !sub.noForward && !sub.badFrames
}

func (sub *substrate) substrate() engine.Substrate {
	return engine.Substrate{ID: sub.cfg.ID, URL: sub.url, Enclave: sub.cfg.Enclave}
}

// receives reports whether a publish on origin reaches sub.
func (sub *substrate) receives(origin *substrate) bool {
	if sub == origin || sub.cfg.Peers == nil {
		return true
	}
	for _, p := range sub.cfg.Peers {
		if p == origin.cfg.ID {
			return true
		}
	}
	return false
}

// peerList is the substrate's peers: Peers in order, or every other
// substrate in the order added.
func (sub *substrate) peerList(s *Sim) []*substrate {
	if sub.peersOK {
		return sub.peers
	}
	sub.peers = sub.peers[:0]
	if sub.cfg.Peers == nil {
		for _, o := range s.subs {
			if o != sub && !o.cfg.Hidden {
				sub.peers = append(sub.peers, o)
			}
		}
	} else {
		for _, id := range sub.cfg.Peers {
			if o := s.byID[id]; o != nil && o != sub && !o.cfg.Hidden {
				sub.peers = append(sub.peers, o)
			}
		}
	}
	sub.peersOK = true
	return sub.peers
}

// alternatives are what a goodbye names: peers of the same enclave first,
// then the others, at most MaxAlternatives, dead ones included (REPRAM
// does not know).
func (sub *substrate) alternatives(s *Sim) []wire.Parent {
	var out []wire.Parent
	for pass := 0; pass < 2; pass++ {
		for _, p := range sub.peerList(s) {
			if same := p.cfg.Enclave == sub.cfg.Enclave; same == (pass == 0) && len(out) < MaxAlternatives {
				out = append(out, wire.Parent{ID: p.cfg.ID, Address: p.cfg.ID, HTTPPort: 8080, Enclave: p.cfg.Enclave})
			}
		}
	}
	return out
}

// welcomeFor is the welcome the substrate sends: the child's parent and
// the topology (a SYNC with each peer's node info).
func (sub *substrate) welcomeFor(s *Sim) wire.Welcome {
	if sub.welcome == nil {
		w := &wire.Welcome{YourPosition: wire.Position{Depth: 1, ParentID: sub.cfg.ID}}
		for _, p := range sub.peerList(s) {
			w.Topology = append(w.Topology, wire.Message{Type: "SYNC", From: sub.cfg.ID,
				NodeInfo: &wire.NodeInfo{ID: p.cfg.ID, Address: p.cfg.ID, Port: 9090, HTTPPort: 8080, Enclave: p.cfg.Enclave}})
		}
		sub.welcome = w
	}
	return *sub.welcome
}

// rttTo is the round trip between n and sub now.
func (s *Sim) rttTo(n *node, sub *substrate) int64 {
	rtt := sub.rtt
	if sp := s.cfg.RTTSpread; sp > 0 {
		u := float64(mix(s.cfg.Seed, uint64(n.idx)<<32|uint64(sub.idx))>>11) / (1 << 53) // uniform in [0, 1)
		rtt = int64(float64(rtt) * (1 - sp + 2*sp*u))
	}
	if s.cfg.LinkRTT != nil {
		return int64(s.cfg.LinkRTT(NodeID(n.idx), int(sub.idx), time.Duration(rtt)))
	}
	return rtt
}

// mix is SplitMix64 of seed and x: a pair's draw, without storing it.
func mix(seed, x uint64) uint64 {
	z := seed + 0x9e3779b97f4a7c15*(x+1)
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// send schedules a frame from lk's substrate to its node, after the
// one-way latency and after every frame sent on lk before it.
func (s *Sim) send(lk *simLink, f frame, msg, aux int32) {
	if lk.sub.badFrames && f != frClosed {
		f = frBad
	}
	at := max(s.now+s.rttTo(lk.node, lk.sub)/2, lk.lastArrival)
	lk.lastArrival = at
	s.pushLink(event{at: at, kind: evToNode, frame: f, msg: msg, aux: aux}, lk)
}

// drop forgets a connection on the substrate's side.
func (s *Sim) drop(lk *simLink) {
	if !lk.connected {
		return
	}
	sub := lk.sub
	last := len(sub.conns) - 1
	moved := sub.conns[last]
	sub.conns[lk.connIdx] = moved
	moved.connIdx = lk.connIdx
	sub.conns[last] = nil
	sub.conns = sub.conns[:last]
	lk.connected = false
	if lk.registered {
		lk.registered, lk.forwarded = false, false
		sub.children--
	}
	s.release(lk)
}

// closeLink closes lk from the substrate's side: forgotten now, the close
// reaches the node after every frame already sent.
func (s *Sim) closeLink(lk *simLink) {
	s.send(lk, frClosed, 0, 0)
	s.drop(lk)
}

// goodbye sends a goodbye with the substrate's alternatives on lk.
func (s *Sim) goodbye(lk *simLink, reason string) {
	s.goodbyes = append(s.goodbyes, wire.Goodbye{Reason: reason, AlternativeParents: lk.sub.alternatives(s)})
	s.send(lk, frGoodbye, 0, int32(len(s.goodbyes)-1))
}

// arrive handles message msg reaching the substrate through the mesh.
func (sub *substrate) arrive(s *Sim, msg int32) {
	switch {
	case sub.dead:
		return
	case sub.hung:
		sub.parked = append(sub.parked, parked{what: evArrive, msg: msg})
		return
	case sub.noForward:
		return
	}
	k := 0
	for k < len(sub.departed) && s.now-sub.departed[k].at > int64(MissWindow) {
		k++
	}
	sub.departed = sub.departed[k:]
	for _, d := range sub.departed {
		// Not what the successor never forwards anyway: its own writes.
		if !d.succ.closed && d.succ.sub.healthy() && s.msgs[msg].origin != d.succ.sub.idx {
			d.node.missedCand.set(msg)
		}
	}
	if s.msgs[msg].origin == sub.idx {
		return // REPRAM never forwards a substrate's own writes to its children
	}
	for _, lk := range sub.conns {
		if lk.forwarded {
			if !sub.badFrames { // a corrupt frame owes nothing
				lk.node.owe(msg)
			}
			s.send(lk, frGossip, msg, 0)
		}
	}
}

// hello handles lk's hello reaching the substrate.
// delayed is set when a slow substrate already held it.
func (sub *substrate) hello(s *Sim, lk *simLink, delayed bool) {
	switch {
	case lk.closed || !lk.connected:
		return // closed by either side meanwhile
	case sub.hung:
		sub.parked = append(sub.parked, parked{what: evHello, lk: lk})
		return
	case sub.leaving:
		s.goodbye(lk, "shutting down")
		s.closeLink(lk)
		return
	case sub.slowHello > 0 && !delayed:
		s.pushLink(event{at: s.now + sub.slowHello, kind: evHello, aux: 1}, lk)
		return
	case sub.full || sub.cfg.MaxChildren > 0 && sub.children >= sub.cfg.MaxChildren:
		sub.refusals++
		s.refusals++
		s.goodbye(lk, "at capacity")
		s.closeLink(lk)
		return
	}
	for _, o := range sub.conns {
		if o.registered && o.node == lk.node {
			s.fail("node %s said hello twice to substrate %s (links %d and %d): REPRAM replaces the first registration",
				lk.node.id, sub.cfg.ID, o.id, lk.id)
			return
		}
	}
	lk.registered = true
	lk.forwarded = lk.node.enclave == sub.cfg.Enclave
	sub.children++
	s.send(lk, frWelcome, 0, 0)
}

// connect completes lk's dial at the node, one RTT after it began.
func (s *Sim) connect(lk *simLink) {
	sub := lk.sub
	switch {
	case lk.closed:
		return
	case sub.dead || sub.refuse:
		lk.lastArrival = s.now
		s.pushLink(event{at: s.now, kind: evToNode, frame: frClosed}, lk)
		return
	case sub.hung:
		sub.parked = append(sub.parked, parked{what: evConnect, lk: lk})
		return
	}
	lk.connected, lk.connIdx = true, len(sub.conns)
	sub.conns = append(sub.conns, lk)
	if lk.helloWanted {
		s.pushLink(event{at: s.now + s.rttTo(lk.node, sub)/2, kind: evHello}, lk)
	}
}

// Kill kills substrate id (SIGKILL): every link closes at once, frames
// already sent still arrive, and dials are refused until Restart.
func (s *Sim) Kill(id string) {
	sub := s.mustSub(id)
	for _, p := range sub.parked {
		if p.what == evConnect && !p.lk.closed { // a dial a stopped process never accepted: reset
			p.lk.lastArrival = max(p.lk.lastArrival, s.now)
			s.pushLink(event{at: s.now + s.rttTo(p.lk.node, sub)/2, kind: evToNode, frame: frClosed}, p.lk)
		}
	}
	sub.dead, sub.hung, sub.leaving, sub.parked = true, false, false, nil
	for len(sub.conns) > 0 {
		s.closeLink(sub.conns[len(sub.conns)-1])
	}
}

// Restart brings a killed or shut down substrate back, empty.
func (s *Sim) Restart(id string) {
	sub := s.mustSub(id)
	sub.dead, sub.leaving = false, false
}

// Shutdown starts a graceful shutdown of substrate id: goodbye now and
// GoodbyeInterval later, each with up to MaxAlternatives alternatives, then
// every link closes and the substrate is dead. Hellos meanwhile are
// answered with the same goodbye.
func (s *Sim) Shutdown(id string) {
	sub := s.mustSub(id)
	if sub.dead || sub.leaving {
		return
	}
	sub.leaving = true
	for _, lk := range sub.conns {
		if lk.registered {
			lk.node.leaving(s, sub)
			s.goodbye(lk, "shutting down")
		}
	}
	s.push(event{at: s.now + int64(GoodbyeInterval), kind: evShutdownEnd, sub: sub.idx})
}

func (sub *substrate) shutdownEnd(s *Sim) {
	if !sub.leaving {
		return // killed meanwhile
	}
	for _, lk := range sub.conns {
		if lk.registered {
			s.goodbye(lk, "shutting down")
		}
	}
	s.Kill(sub.cfg.ID)
}

// Hang stops substrate id (SIGSTOP): it sends nothing, forwards nothing,
// answers no ping, hello or dial; its links stay open. Resume undoes it.
func (s *Sim) Hang(id string) { s.mustSub(id).hung = true }

// Resume continues a hung substrate (SIGCONT): what it received meanwhile
// is processed now, in order.
func (s *Sim) Resume(id string) {
	sub := s.mustSub(id)
	if !sub.hung {
		return
	}
	sub.hung = false
	work := sub.parked
	sub.parked = nil
	for _, p := range work {
		if sub.hung || sub.dead {
			break
		}
		switch p.what {
		case evArrive:
			sub.arrive(s, p.msg)
		case evConnect:
			if !p.lk.closed {
				s.pushLink(event{at: s.now + s.rttTo(p.lk.node, sub)/2, kind: evConnect}, p.lk)
			}
		case evHello:
			sub.hello(s, p.lk, false)
		case evPong:
			if !p.lk.closed {
				s.push(event{at: s.now + s.rttTo(p.lk.node, sub)/2, kind: evPong, aux: p.ping, gen: p.gen})
			}
		}
	}
}

// SetNoForward makes substrate id stop (or resume) forwarding gossip.
func (s *Sim) SetNoForward(id string, on bool) { s.mustSub(id).noForward = on }

// SetRefuse makes substrate id refuse (or accept) new connections.
func (s *Sim) SetRefuse(id string, on bool) { s.mustSub(id).refuse = on }

// SetMaxChildren changes substrate id's capacity; 0 means unlimited.
func (s *Sim) SetMaxChildren(id string, n int) { s.mustSub(id).cfg.MaxChildren = n }

// SetBadFrames makes every frame substrate id sends fail to decode at the
// node (a corrupt or forged stream), or stops it.
func (s *Sim) SetBadFrames(id string, on bool) { s.mustSub(id).badFrames = on }

// SetFull makes substrate id answer every hello with goodbye "at
// capacity" (or stops it), whatever its MaxChildren.
func (s *Sim) SetFull(id string, on bool) { s.mustSub(id).full = on }

// SetSlowHello makes substrate id take d to answer a hello (a loaded
// substrate); 0 answers at once.
func (s *Sim) SetSlowHello(id string, d time.Duration) { s.mustSub(id).slowHello = int64(d) }

// SetRTT changes the round trip between nodes and substrate id; frames
// already in flight keep their time.
func (s *Sim) SetRTT(id string, rtt time.Duration) { s.mustSub(id).rtt = int64(rtt) }

// SetDelay changes substrate id's propagation delay for later publishes.
func (s *Sim) SetDelay(id string, d time.Duration) { s.mustSub(id).cfg.Delay = d }

// Children returns how many children substrate id has registered.
func (s *Sim) Children(id string) int { return s.mustSub(id).children }
