package substratetest

import (
	"slices"
	"time"

	"github.com/coder/websocket"

	"github.com/repram/handover/transport/wire"
)

// Corruption makes a substrate send broken frames instead of valid ones.
type Corruption int

// The corruption modes. Each applies to every frame built after it is set
// (welcome, goodbye, put, ack); frames already queued are sent as they were.
const (
	// CorruptNone sends valid frames.
	CorruptNone Corruption = iota
	// CorruptMalformed sends the first half of each frame: not JSON.
	CorruptMalformed
	// CorruptUnsigned sends each frame without its signature.
	CorruptUnsigned
	// CorruptBadSignature signs each frame with a wrong secret. Without a
	// mesh secret it adds a signature a node with no secret ignores.
	CorruptBadSignature
	// CorruptNull sends the JSON literal null instead of each frame.
	CorruptNull
	// CorruptBinary sends each valid frame as a binary WebSocket message.
	CorruptBinary
)

// String returns the mode's name.
func (c Corruption) String() string {
	switch c {
	case CorruptNone:
		return "none"
	case CorruptMalformed:
		return "malformed"
	case CorruptUnsigned:
		return "unsigned"
	case CorruptBadSignature:
		return "bad-signature"
	case CorruptNull:
		return "null"
	case CorruptBinary:
		return "binary"
	}
	return "corruption(?)"
}

// Faults is the set of faults a substrate injects. The zero value is a
// healthy substrate. Faults are read when a frame arrives or is built, so a
// change applies to what happens next, never to frames already queued
// (except Hang, which holds them until it is cleared).
type Faults struct {
	// Refuse answers every hello with a goodbye of reason "at capacity"
	// naming RefuseAlternatives, then closes the connection (status 1000).
	Refuse bool
	// RefuseAlternatives are the goodbye's alternative_parents. Nil names
	// the substrate's live peers, same enclave first, at most
	// [MaxAlternatives], as REPRAM does; an empty non-nil slice names none.
	RefuseAlternatives []wire.Parent
	// MuteHello never answers a hello and keeps the connection open.
	MuteHello bool
	// WelcomeDelay delays each welcome. The connection is read meanwhile,
	// so WebSocket pings are answered.
	WelcomeDelay time.Duration
	// NoForward welcomes but never forwards gossip, as REPRAM does for a
	// child whose hello named another enclave.
	NoForward bool
	// WelcomeParentID, when set, is the welcome's your_position.parent_id
	// instead of the substrate's own id.
	WelcomeParentID string
	// Corrupt replaces every frame sent with a broken one.
	Corrupt Corruption
	// NoRead makes the substrate stop reading its connections: frames,
	// WebSocket pings and close frames from children go unread (their
	// heartbeats fail, their writes eventually block), while it keeps
	// writing to them. Stopping the substrate reopens reading.
	NoRead bool
	// Hang freezes the substrate as SIGSTOP freezes a process: it reads
	// nothing (no frames, no WebSocket pings, so no pongs; see NoRead),
	// writes nothing (no welcome, no forwarded gossip, no ack, no
	// heartbeat ping) and keeps every connection open. Frames built while
	// it hangs wait in each child's queue and are written once it is
	// cleared; a queue that fills meanwhile loses its newest frames, never
	// the connection; [Server.Send] and [Server.SendRaw] wait until
	// the hang ends. Stopping the substrate ends the hang.
	Hang bool
}

func (f Faults) clone() Faults {
	f.RefuseAlternatives = cloneParents(f.RefuseAlternatives)
	return f
}

// cloneParents copies ps, keeping nil and empty apart.
func cloneParents(ps []wire.Parent) []wire.Parent {
	if ps == nil {
		return nil
	}
	return append(make([]wire.Parent, 0, len(ps)), ps...)
}

// Faults returns the substrate's current faults.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.clone()
}

// SetFaults replaces all the substrate's faults at once.
func (s *Server) SetFaults(f Faults) {
	s.updateFaults(func(cur *Faults) { *cur = f.clone() })
}

// ClearFaults makes the substrate healthy again.
func (s *Server) ClearFaults() { s.SetFaults(Faults{}) }

// UpdateFaults changes some of the substrate's faults and keeps the others:
//
//	s.UpdateFaults(func(f *substratetest.Faults) { f.MuteHello = true })
//
// fn runs with the substrate locked: it must not call the substrate.
func (s *Server) UpdateFaults(fn func(*Faults)) { s.updateFaults(fn) }

func (s *Server) updateFaults(fn func(*Faults)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.faults)
	s.gate.set((s.faults.NoRead || s.faults.Hang) && s.state != stopped)
	s.hold.set(s.faults.Hang && s.state != stopped)
}

// encode builds one outgoing frame of type t, broken as c says; the frame's
// valid field reports whether it is intact.
func (m *Mesh) encode(t wire.Type, payload any, c Corruption) (outFrame, error) {
	secret := m.cfg.Secret
	if c == CorruptUnsigned {
		secret = nil
	}
	if c == CorruptBadSignature {
		secret = append(slices.Clone(secret), "-wrong"...)
	}
	data, err := wire.Encode(t, payload, secret)
	if err != nil {
		return outFrame{}, err
	}
	f := outFrame{typ: websocket.MessageText, data: data, valid: c == CorruptNone}
	switch c {
	case CorruptMalformed:
		f.data = data[:len(data)/2]
	case CorruptNull:
		f.data = []byte("null")
	case CorruptBinary:
		f.typ = websocket.MessageBinary
	}
	return f, nil
}
