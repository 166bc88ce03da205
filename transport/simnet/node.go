package simnet

import (
	"errors"
	"strconv"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport/engine"
	"github.com/repram/handover/transport/wire"
)

// Errors the simulated links report to the engines.
var (
	ErrRefused   = errors.New("simnet: connection refused")
	ErrLinkGone  = errors.New("simnet: connection closed by the substrate")
	ErrPingLost  = errors.New("simnet: no pong within the ping timeout")
	ErrBadFrame  = errors.New("simnet: frame failed to decode")
	errNoSuchURL = errors.New("simnet: no substrate at this URL")
)

// node is one transient node: its engine, its links and its accounting.
type node struct {
	idx     int32
	id      string
	enclave string
	eng     *engine.Engine
	links   []*simLink // open on the node's side
	closed  bool

	tickAt       int64 // the pending Tick event's time, -1 for none
	observeEvery int64

	welcomedOpen int   // open links that delivered a welcome
	everLinked   bool  // a welcome arrived once
	noLinkSince  int64 // -1 while a welcomed link is open
	noLink       int64 // accumulated time without one, after the first welcome

	owed, got      bitset
	droppedHealthy bitset // frames dropped because the node closed a healthy link
	missedCand     bitset // reached a healthy substrate just after the node left it
	nOwed, nGot    int
	dup            int
	transitions    int
	goodbyeAt      int64 // first goodbye of the substrate being left, -1 when none
	leftSub        *substrate
	rehome         int64 // last rehome time, -1 when never
	rehomes        int
	switchFrom     int64 // candidate_better of the migration in progress, -1 when none
	lastTransition fsm.Step
}

// bitset is a growable bitset over message indices.
type bitset []uint64

func (b *bitset) set(i int32) bool {
	w := int(i) >> 6
	for len(*b) <= w {
		*b = append(*b, 0)
	}
	m := uint64(1) << (uint(i) & 63)
	was := (*b)[w]&m != 0
	(*b)[w] |= m
	return was
}

func (b bitset) has(i int32) bool {
	w := int(i) >> 6
	return w < len(b) && b[w]&(1<<(uint(i)&63)) != 0
}

func (n *node) owe(msg int32) {
	if !n.owed.set(msg) {
		n.nOwed++
	}
}

// leaving notes that sub, which n is a child of, started a shutdown. A
// node already holding a welcomed link to another substrate (mid-overlap
// away from sub) has its new home: its rehome time is 0, not the time to
// some later welcome.
func (n *node) leaving(s *Sim, sub *substrate) {
	if n.goodbyeAt >= 0 {
		return
	}
	for _, lk := range n.links {
		if lk.welcomed && !lk.closed && lk.sub != sub {
			s.rehomed(n, 0)
			return
		}
	}
	n.goodbyeAt, n.leftSub = s.now, sub
}

// rehomed records n's rehome time d.
func (s *Sim) rehomed(n *node, d int64) {
	n.rehome = d
	n.rehomes++
	s.rehome = append(s.rehome, time.Duration(d))
	n.goodbyeAt, n.leftSub = -1, nil
}

func (n *node) link(id engine.LinkID) *simLink {
	for _, lk := range n.links {
		if lk.id == id {
			return lk
		}
	}
	return nil
}

// closeLocal marks lk closed on the node's side.
func (s *Sim) closeLocal(lk *simLink) {
	if lk.closed {
		return
	}
	lk.closed = true
	n := lk.node
	for i, o := range n.links {
		if o == lk {
			n.links = append(n.links[:i], n.links[i+1:]...)
			break
		}
	}
	if lk.welcomed {
		n.welcomedOpen--
		if n.welcomedOpen == 0 {
			n.noLinkSince = s.now
		}
	}
	s.release(lk)
}

// newLink makes a link in a free slot.
func (s *Sim) newLink(n *node, id engine.LinkID) *simLink {
	lk := &simLink{node: n, id: id, lastArrival: s.now}
	if k := len(s.freeLinks); k > 0 {
		lk.slot = s.freeLinks[k-1]
		s.freeLinks = s.freeLinks[:k-1]
		s.linkGen[lk.slot]++
	} else {
		lk.slot = int32(len(s.linkTab))
		s.linkTab = append(s.linkTab, nil)
		s.linkGen = append(s.linkGen, 0)
	}
	lk.gen = s.linkGen[lk.slot]
	s.linkTab[lk.slot] = lk
	return lk
}

// release frees lk's slot once both sides closed it and the last frame
// sent on it arrived (to be counted if it was dropped): no event can
// matter to it any more, and those still queued are recognised as stale.
func (s *Sim) release(lk *simLink) {
	switch {
	case !lk.closed || lk.connected || s.linkTab[lk.slot] != lk:
	case s.now < lk.lastArrival:
		if !lk.releasing {
			lk.releasing = true
			s.pushLink(event{at: lk.lastArrival, kind: evRelease}, lk)
		}
	default:
		s.linkTab[lk.slot] = nil
		s.freeLinks = append(s.freeLinks, lk.slot)
	}
}

// pushLink schedules an event about lk.
func (s *Sim) pushLink(e event, lk *simLink) {
	e.link, e.gen = lk.slot, lk.gen
	s.push(e)
}

// linkOf returns the link an event is about, nil when it is gone.
func (s *Sim) linkOf(e event) *simLink {
	if lk := s.linkTab[e.link]; lk != nil && lk.gen == e.gen {
		return lk
	}
	return nil
}

// step feeds one input to n's engine, carries out the effects and checks
// the invariants.
func (s *Sim) step(n *node, in engine.Input) {
	if n.closed || s.err != nil {
		return
	}
	effs, err := n.eng.Step(s.Time(), in)
	if err != nil {
		s.fail("node %s refused %T: %v", n.id, in, err)
		return
	}
	for _, f := range effs {
		s.effect(n, f)
	}
	if !s.cfg.NoChecks {
		s.check(n)
	}
	if n.closed {
		return
	}
	if d, ok := n.eng.NextDeadline(); ok {
		at := max(int64(d.Sub(s.cfg.Epoch)), s.now)
		if n.tickAt < 0 || at < n.tickAt {
			n.tickAt = at
			s.push(event{at: at, kind: evTick, node: n.idx})
		}
	}
}

// effect carries out one effect of n's engine.
func (s *Sim) effect(n *node, f engine.Effect) {
	switch f := f.(type) {
	case engine.Dial:
		lk := s.newLink(n, f.Link)
		n.links = append(n.links, lk)
		sub := s.byURL[f.Target.URL]
		if sub == nil {
			s.pushLink(event{at: s.now, kind: evToNode, frame: frClosed, aux: -1}, lk)
			return
		}
		lk.sub = sub
		s.pushLink(event{at: s.now + s.rttTo(n, sub), kind: evConnect}, lk)
	case engine.SendHello:
		lk := n.link(f.Link)
		switch {
		case lk == nil || lk.sub == nil:
		case lk.connected:
			s.pushLink(event{at: s.now + s.rttTo(n, lk.sub)/2, kind: evHello}, lk)
		default:
			lk.helloWanted = true
		}
	case engine.Ping:
		lk := n.link(f.Link)
		if lk == nil || lk.sub == nil {
			return
		}
		i := s.newPing(lk)
		p := &s.pings[i]
		s.push(event{at: s.now + int64(f.Timeout), kind: evPingLost, aux: i, gen: p.gen})
		switch sub := lk.sub; {
		case !lk.connected:
			// closed by the substrate: the close is on its way
		case sub.hung:
			sub.parked = append(sub.parked, parked{what: evPong, lk: lk, ping: i, gen: p.gen})
		default:
			s.push(event{at: s.now + s.rttTo(n, sub), kind: evPong, aux: i, gen: p.gen})
		}
	case engine.CloseLink:
		if lk := n.link(f.Link); lk != nil {
			lk.closedHealthy = lk.registered && lk.sub.healthy()
			for _, o := range n.links {
				if o != lk && o.welcomed && !o.sub.healthy() {
					lk.closedHealthy = false // what it still forwards may be missing from a failing link
				}
			}
			if lk.closedHealthy {
				for _, o := range n.links {
					if o != lk && o.welcomed {
						lk.sub.departed = append(lk.sub.departed, departure{node: n, at: s.now, succ: o})
						break
					}
				}
			}
			s.closeLocal(lk)
			if lk.sub != nil {
				s.drop(lk)
			}
		}
	case engine.Deliver:
		m, err := strconv.Atoi(f.Gossip.Message.MessageID[1:])
		if err != nil || m < 0 || m >= len(s.msgs) {
			s.fail("node %s delivered unknown message %q", n.id, f.Gossip.Message.MessageID)
			return
		}
		if n.got.set(int32(m)) {
			n.dup++
		} else {
			n.nGot++
			if !n.owed.has(int32(m)) {
				s.unowedDeliv++
			}
		}
	case engine.Transitioned:
		s.transitioned(n, f.Transition)
	case engine.Closed:
		n.closed = true
	case engine.Decided:
	}
}

// transitioned does the accounting of one transition.
func (s *Sim) transitioned(n *node, tr engine.Transition) {
	n.transitions++
	n.lastTransition = tr.Step
	switch st := tr.Step; {
	case st.Event == fsm.CandidateBetter:
		n.switchFrom = s.now
	case st.Event == fsm.OverlapDone && n.switchFrom >= 0:
		s.switches = append(s.switches, time.Duration(s.now-n.switchFrom))
		n.switchFrom = -1
	case st.Path == fsm.PathCancel, st.Path == fsm.PathAccelerate, st.Path == fsm.PathDetach,
		st.Path == fsm.PathReattach, st.Path == fsm.PathForced, st.Path == fsm.PathSuspect:
		n.switchFrom = -1
	}
	if s.cfg.OnTransition != nil {
		s.cfg.OnTransition(NodeID(n.idx), tr)
	}
}

func (s *Sim) newPing(lk *simLink) int32 {
	if k := len(s.freePing); k > 0 {
		i := s.freePing[k-1]
		s.freePing = s.freePing[:k-1]
		p := &s.pings[i]
		p.lk, p.sent, p.done = lk, s.now, false
		p.gen++
		return i
	}
	s.pings = append(s.pings, ping{lk: lk, sent: s.now})
	return int32(len(s.pings) - 1)
}

// pingDone resolves a ping by its pong or its timeout, whichever is first.
func (s *Sim) pingDone(e event) {
	p := &s.pings[e.aux]
	if p.gen != e.gen || p.done {
		return
	}
	p.done = true
	lk := p.lk
	p.lk = nil
	s.freePing = append(s.freePing, e.aux)
	if lk.closed {
		return
	}
	if e.kind == evPong {
		s.step(lk.node, engine.PingDone{Link: lk.id, RTT: time.Duration(s.now - p.sent)})
		return
	}
	s.step(lk.node, engine.PingDone{Link: lk.id, Err: ErrPingLost})
}

// toNodeArrived hands a frame that reached its node to the engine.
func (s *Sim) toNodeArrived(lk *simLink, e event) {
	if lk.closed {
		if e.frame == frGossip && lk.closedHealthy {
			lk.node.droppedHealthy.set(e.msg)
		}
		return
	}
	n := lk.node
	switch e.frame {
	case frWelcome:
		lk.welcomed = true
		n.welcomedOpen++
		if n.welcomedOpen == 1 {
			if n.everLinked && n.noLinkSince >= 0 {
				n.noLink += s.now - n.noLinkSince
			}
			n.everLinked, n.noLinkSince = true, -1
		}
		if n.goodbyeAt >= 0 && lk.sub != n.leftSub {
			s.rehomed(n, s.now-n.goodbyeAt)
		}
		s.step(n, engine.Welcomed{Link: lk.id, Welcome: lk.sub.welcomeFor(s)})
	case frGoodbye:
		s.step(n, engine.GoodbyeReceived{Link: lk.id, Goodbye: s.goodbyes[e.aux]})
	case frGossip:
		m := s.msgs[e.msg]
		// One input reused for every frame (the engine keeps no reference
		// to it, and no frame arrives inside a step): no copy is boxed per
		// delivery, the run's most frequent step.
		in := &s.gossipIn
		*in = engine.GossipReceived{Link: lk.id, Type: wire.TypePut, Message: wire.Message{
			Type: "PUT", From: s.subs[m.origin].cfg.ID, Timestamp: m.unix, MessageID: m.id}}
		s.step(n, in)
	case frBad:
		s.step(n, engine.FrameRejected{Link: lk.id, Err: ErrBadFrame})
	case frClosed:
		s.closeLocal(lk)
		cause := ErrLinkGone
		switch {
		case e.aux < 0:
			cause = errNoSuchURL
		case !lk.welcomed && (lk.sub.dead || lk.sub.refuse) && !lk.registered:
			cause = ErrRefused
		}
		s.step(n, engine.LinkClosed{Link: lk.id, Err: cause})
	}
}

// observe gives n its periodic evaluation cycle over every substrate its
// engine knows.
func (s *Sim) observe(n *node) {
	if n.closed {
		return
	}
	s.push(event{at: s.now + n.observeEvery, kind: evObserve, node: n.idx})
	s.observeNow(n, nil)
}

// Observe gives node id one evaluation cycle now, as its embedder would:
// the round trips of the substrates named (every substrate its engine
// knows when none is named), 0 for one that would not answer a probe.
func (s *Sim) Observe(id NodeID, subs ...string) {
	var ss []engine.Substrate
	for _, name := range subs {
		ss = append(ss, s.mustSub(name).substrate())
	}
	if ss == nil {
		ss = []engine.Substrate{}
	}
	s.observeNow(s.nodes[id], ss)
}

func (s *Sim) observeNow(n *node, subs []engine.Substrate) {
	if n.closed {
		return
	}
	if len(subs) == 0 {
		subs = n.eng.Known()
	}
	// The candidates' slice is reused: the engine reads it within the
	// step and keeps none of it.
	obs := engine.Observe{Candidates: s.obsBuf[:0]}
	defer func() { s.obsBuf = obs.Candidates[:0] }()
	if _, cur, ok := n.eng.Primary(); ok {
		if sub := s.byURL[cur.URL]; sub != nil && !sub.dead && !sub.hung {
			obs.CurrentLatency = time.Duration(s.rttTo(n, sub))
		}
	}
	for _, k := range subs {
		c := engine.Candidate{Substrate: k}
		if sub := s.byURL[k.URL]; sub != nil && !sub.dead && !sub.hung && !sub.refuse {
			c.Latency = time.Duration(s.rttTo(n, sub))
		}
		obs.Candidates = append(obs.Candidates, c)
	}
	s.step(n, obs)
}

// Close closes node id's engine (the embedder's Close).
func (s *Sim) Close(id NodeID) { s.step(s.nodes[id], engine.Close{}) }

// check verifies after every step that the engine's state, its links and
// the simulated links agree: the state holds the links it stands for
// (fsm.Links), every link the engine holds is open here, and every link
// open here is one the engine holds (none leaked).
func (s *Sim) check(n *node) {
	st := n.eng.State()
	pid, _, hasPrimary := n.eng.Primary()
	cands := n.eng.Candidates()
	wantPrimary, minC, maxC := shape(st)
	if hasPrimary != wantPrimary || len(cands) < minC || len(cands) > maxC {
		s.fail("node %s in %s holds primary=%v and %d candidates", n.id, st, hasPrimary, len(cands))
		return
	}
	held := len(cands)
	if hasPrimary {
		held++
		if n.link(pid) == nil {
			s.fail("node %s: primary link %d is closed in the network", n.id, pid)
			return
		}
	}
	if held != len(n.links) {
		s.fail("node %s in %s: engine holds %d links, %d are open in the network (a link leaked or was lost)",
			n.id, st, held, len(n.links))
	}
}

// shape is which links a state stands for, as fsm.Links.CheckStep states it.
func shape(st fsm.State) (primary bool, minCand, maxCand int) {
	const many = 1 << 30
	switch st {
	case fsm.Joining:
		return false, 1, many
	case fsm.Attached, fsm.Cooldown:
		return true, 0, 0
	case fsm.Handshaking:
		return true, 1, many
	case fsm.Overlapping:
		return true, 1, 1
	}
	return false, 0, 0
}
