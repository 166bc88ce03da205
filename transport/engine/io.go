package engine

import (
	"fmt"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/policy"
	"github.com/repram/handover/transport/wire"
)

// Substrate names a substrate node a transient node can attach to.
type Substrate struct {
	ID      string // substrate node id; may be empty for a first attach, learned from the welcome
	URL     string // ws://HOST:HTTP_PORT/v1/ws or wss://...
	Enclave string
}

// LinkID names one link (one WebSocket) for the life of an engine. Ids are
// never reused, so a report from a link the engine has forgotten is
// recognised as stale.
type LinkID uint64

// Input is something that happened: an embedder command, a link's report or
// the passing of time. The shell hands each one to [Engine.Step].
type Input interface{ input() }

// Embedder commands.
type (
	// Attach asks for a first attachment to Substrate. Refused with
	// [ErrNotDialable] when Substrate has no URL or is this node, and with
	// [ErrNotDetached] unless the engine is detached.
	Attach struct{ Substrate Substrate }
	// Observe ends one evaluation cycle with what was measured in it.
	Observe struct {
		// CurrentLatency is the primary's latency; 0 uses the round trip
		// the engine's own pings measured.
		CurrentLatency time.Duration
		Candidates     []Candidate
	}
	// Close shuts the engine down: every link is closed.
	Close struct{}
)

// Candidate is a substrate measured this cycle.
type Candidate struct {
	Substrate
	Latency time.Duration // 0 = not measured this cycle
}

// Link reports. Link is the id from the [Dial] effect that opened it.
type (
	// Welcomed: the link received a valid welcome.
	Welcomed struct {
		Link    LinkID
		Welcome wire.Welcome
	}
	// GoodbyeReceived: the substrate said goodbye (a refusal or a shutdown).
	GoodbyeReceived struct {
		Link    LinkID
		Goodbye wire.Goodbye
	}
	// GossipReceived: one verified gossip frame, decoded. Step takes it
	// by value or by pointer (the engine keeps no reference to it): a
	// shell reusing one *GossipReceived boxes no copy of it per frame.
	GossipReceived struct {
		Link    LinkID
		Type    wire.Type
		Message wire.Message
	}
	// FrameRejected: a frame failed to decode, verify or fit the read limit.
	FrameRejected struct {
		Link LinkID
		Err  error
	}
	// PingDone: a [Ping] effect's outcome. Err is nil when the pong came
	// back after RTT. Starved marks an unanswered ping that proves nothing:
	// the shell's reader was parked on back-pressure and could not read the
	// pong.
	PingDone struct {
		Link    LinkID
		RTT     time.Duration
		Err     error
		Starved bool
	}
	// LinkClosed: the link is gone (dial failed, peer closed, read error).
	LinkClosed struct {
		Link LinkID
		Err  error
	}
)

// Tick tells the engine that time has passed: the shell steps it at
// [Engine.NextDeadline] (and may step it at any other time).
type Tick struct{}

func (Attach) input()          {}
func (Observe) input()         {}
func (Close) input()           {}
func (Welcomed) input()        {}
func (GoodbyeReceived) input() {}
func (GossipReceived) input()  {}
func (FrameRejected) input()   {}
func (PingDone) input()        {}
func (LinkClosed) input()      {}
func (Tick) input()            {}

// Effect is something the shell must do. [Engine.Step] returns them in the
// order they must be carried out.
type Effect interface {
	effect()
	fmt.Stringer
}

// CloseCode is how a link is closed.
type CloseCode int

// The close codes.
const (
	CloseNormal CloseCode = iota // the WebSocket close handshake, status 1000
	CloseAbort                   // drop the connection at once: the peer is dead, failed or leaving
)

func (c CloseCode) String() string {
	if c == CloseAbort {
		return "abort"
	}
	return "normal"
}

// The effects.
type (
	// Dial opens link Link to Target. Reports for it carry Link.
	Dial struct {
		Link   LinkID
		Target Substrate
	}
	// SendHello sends this node's hello on Link as soon as it is connected.
	SendHello struct{ Link LinkID }
	// Ping sends a WebSocket ping on Link and reports [PingDone] within Timeout.
	Ping struct {
		Link    LinkID
		Timeout time.Duration
	}
	// CloseLink closes Link; no report from it matters any more.
	CloseLink struct {
		Link LinkID
		Code CloseCode
	}
	// Deliver hands one deduplicated gossip message to the embedder. The
	// pointer is the shell's to keep: the engine never touches it again
	// (and an effect holding only a pointer costs no allocation of its own).
	Deliver struct{ Gossip *Gossip }
	// Transitioned reports a transition the machine took.
	Transitioned struct{ Transition Transition }
	// Decided reports the policy's decision for an [Observe].
	Decided struct{ Decision policy.Decision }
	// Closed: the engine is closed; every link was told to close.
	Closed struct{}
)

func (Dial) effect()         {}
func (SendHello) effect()    {}
func (Ping) effect()         {}
func (CloseLink) effect()    {}
func (Deliver) effect()      {}
func (Transitioned) effect() {}
func (Decided) effect()      {}
func (Closed) effect()       {}

func (d Dial) String() string      { return fmt.Sprintf("dial %d %s", d.Link, d.Target.ID) }
func (s SendHello) String() string { return fmt.Sprintf("hello %d", s.Link) }
func (p Ping) String() string      { return fmt.Sprintf("ping %d", p.Link) }
func (c CloseLink) String() string { return fmt.Sprintf("close %d %s", c.Link, c.Code) }
func (d Deliver) String() string {
	return fmt.Sprintf("deliver %s via %s", d.Gossip.Message.MessageID, d.Gossip.Via)
}
func (t Transitioned) String() string {
	return fmt.Sprintf("%s --%s--> %s", t.Transition.Step.From, t.Transition.Step.Event, t.Transition.Step.To)
}
func (d Decided) String() string { return fmt.Sprintf("decided %q", d.Decision.Event) }
func (Closed) String() string    { return "closed" }

// Gossip is one deduplicated gossip message handed to the embedder.
type Gossip struct {
	Type    wire.Type    // put, ack, ping, pong, topology_sync
	Message wire.Message // as received; forwarded messages keep their origin's from and message_id
	Via     string       // id of the substrate whose link delivered it
}

// Transition is one transition the machine took.
type Transition struct {
	At        time.Time
	Step      fsm.Step
	Primary   string // substrate id of the primary after the transition, "" for none
	Candidate string // substrate ids of the candidates after the transition, comma-separated, "" for none
	Reason    string // what caused the event, for timelines and logs
}
