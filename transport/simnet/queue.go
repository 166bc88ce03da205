package simnet

import "github.com/repram/handover/transport/engine"

// kind is what an event does when its time comes.
type kind uint8

const (
	evFunc        kind = iota // run s.fns[aux] (At)
	evPublish                 // publish one message from substrate sub, then reschedule (PublishRate)
	evArrive                  // message msg reaches substrate sub through the mesh
	evConnect                 // the dial of lk completes (or is refused) at the node
	evHello                   // lk's hello reaches its substrate
	evToNode                  // a frame of lk reaches the node: what is in frame
	evPong                    // ping aux (generation gen) is answered at the node
	evPingLost                // ping aux (generation gen) times out at the node
	evTick                    // the node's engine deadline
	evObserve                 // the node's evaluation cycle
	evShutdownEnd             // the second goodbye and the close of a graceful shutdown
	evRelease                 // the last frame sent on a closed link has arrived: free its slot
)

// frame is what a substrate sends a node.
type frame uint8

const (
	frWelcome frame = iota
	frGoodbye       // aux indexes s.goodbyes
	frGossip        // msg
	frClosed        // the link is gone (refused, killed, closed by the substrate)
	frBad           // a frame the node's decoder rejects
)

// event is one entry of the queue. It is a value without pointers: a
// publish costs no allocation per recipient and the queue costs the
// garbage collector nothing. A link is named by its slot and generation.
type event struct {
	at    int64  // virtual nanoseconds since the start
	seq   uint64 // ties at the same instant run in scheduling order
	kind  kind
	frame frame
	gen   uint32 // of the link, or of the ping (evPong, evPingLost)
	sub   int32
	node  int32
	msg   int32
	aux   int32
	link  int32 // index in Sim.linkTab, valid while its generation is gen
}

// queue is a 4-ary min-heap of events by (at, seq): half the depth of a
// binary heap, so a pop (the hot path: one per event) moves an event
// through half as many levels.
type queue []event

func (q queue) less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}

func (q *queue) push(e event) {
	*q = append(*q, e)
	h := *q
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !h.less(i, p) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (q *queue) pop() event {
	h := *q
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h[n] = event{}
	h = h[:n]
	i := 0
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for k := c + 1; k < c+4 && k < n; k++ {
			if h.less(k, m) {
				m = k
			}
		}
		if !h.less(m, i) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*q = h
	return top
}

// simLink is one simulated WebSocket between a node and a substrate, keyed
// by the engine's link id.
type simLink struct {
	node *node
	id   engine.LinkID
	sub  *substrate
	slot int32  // in Sim.linkTab
	gen  uint32 // the slot's generation when it was made

	helloWanted bool // SendHello came before the connection existed
	connected   bool // the substrate holds the connection (index connIdx in sub.conns)
	registered  bool // the substrate welcomed it: a child
	forwarded   bool // a registered child the substrate forwards to (same enclave)
	welcomed    bool // the node received the welcome
	closed      bool // closed on the node's side: nothing reaches the engine any more
	// closedHealthy: the node closed it while its substrate, and that of
	// every other welcomed link the node kept, was healthy.
	closedHealthy bool
	releasing     bool // an evRelease is queued
	connIdx       int
	lastArrival   int64 // frames reach the node in the order they were sent
}
