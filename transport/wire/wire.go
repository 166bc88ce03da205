// Package wire is the REPRAM attachment wire protocol as a REPRAM TypeScript
// node v2.1 speaks it: one JSON envelope per WebSocket text frame,
//
//	{"type": T, "payload": {...}, "signature": HEX}
//
// With a cluster secret, signature is the lowercase hex HMAC-SHA256 of the
// payload's exact bytes. A receiver decodes with a [Decoder], which reads
// the envelope and the typed payload in one pass over the frame, verifies
// over the raw payload bytes as received (never over a re-encoding) and
// compares in constant time; [Decode] and the [Envelope] methods are the
// same decoder in two steps. [Encode]
// emits compact JSON without HTML escaping, in JavaScript's JSON.stringify
// form, so a JavaScript peer that re-serializes the payload gets the bytes we
// signed.
package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// Type is an envelope's type.
type Type string

// The envelope types. Lifecycle: hello, welcome, goodbye. Gossip: the rest,
// whose payload is a [Message].
const (
	TypeHello        Type = "hello"
	TypeWelcome      Type = "welcome"
	TypeGoodbye      Type = "goodbye"
	TypePut          Type = "put"
	TypeAck          Type = "ack"
	TypePing         Type = "ping"
	TypePong         Type = "pong"
	TypeTopologySync Type = "topology_sync"
)

// IsGossip reports whether envelopes of type t carry a gossip [Message].
func (t Type) IsGossip() bool {
	switch t {
	case TypePut, TypeAck, TypePing, TypePong, TypeTopologySync:
		return true
	}
	return false
}

func (t Type) known() bool {
	return t == TypeHello || t == TypeWelcome || t == TypeGoodbye || t.IsGossip()
}

// Envelope is one decoded frame. Payload holds the payload's bytes exactly as
// received; decode it with [Envelope.Hello], [Envelope.Welcome],
// [Envelope.Goodbye] or [Envelope.Message].
type Envelope struct {
	Type      Type            `json:"type"`
	Payload   json.RawMessage `json:"payload"`
	Signature string          `json:"signature,omitempty"`
}

// Capabilities is the hello's capability set. REPRAM sends booleans as strings.
type Capabilities struct {
	Inbound string `json:"inbound"`
}

// Hello is sent by a transient node to ask a substrate for attachment.
type Hello struct {
	NodeID       string       `json:"node_id"`
	Enclave      string       `json:"enclave"`
	Address      string       `json:"address"`
	HTTPPort     int          `json:"http_port"`
	Capabilities Capabilities `json:"capabilities"`
}

// Position is where the welcome places the node in the overlay.
type Position struct {
	Depth    int    `json:"depth"`
	ParentID string `json:"parent_id"`
}

// Welcome accepts a hello.
type Welcome struct {
	Topology     []Message `json:"topology"`
	YourPosition Position  `json:"your_position"`
}

// Parent is an alternative substrate named in a goodbye.
type Parent struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	HTTPPort int    `json:"http_port"`
	Enclave  string `json:"enclave"`
}

// Goodbye refuses a hello (reason "at capacity") or announces a shutdown.
type Goodbye struct {
	Reason             string   `json:"reason"`
	AlternativeParents []Parent `json:"alternative_parents"`
}

// NodeInfo describes a node in a SYNC message.
type NodeInfo struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Port     int    `json:"port"`
	HTTPPort int    `json:"http_port"`
	Enclave  string `json:"enclave,omitempty"`
}

// Message is a gossip wire message. Field order matches the TypeScript
// node's, so re-encoding a received message reproduces its bytes.
type Message struct {
	Type      string    `json:"type"` // PUT, ACK, PING, PONG, SYNC
	From      string    `json:"from"`
	Timestamp int64     `json:"timestamp"` // unix seconds
	MessageID string    `json:"message_id"`
	To        string    `json:"to,omitempty"`
	Key       string    `json:"key,omitempty"`
	Data      []byte    `json:"data,omitempty"` // base64 on the wire
	TTL       int       `json:"ttl,omitempty"`  // seconds
	NodeInfo  *NodeInfo `json:"node_info,omitempty"`
}

// Errors returned by [Decode]. Each decode error wraps exactly one of them,
// so callers can count and log by kind with errors.Is.
var (
	ErrMalformed    = errors.New("wire: malformed frame")
	ErrUnknownType  = errors.New("wire: unknown envelope type")
	ErrUnsigned     = errors.New("wire: unsigned frame while a cluster secret is set")
	ErrBadSignature = errors.New("wire: bad signature")
	ErrTooLarge     = errors.New("wire: frame exceeds the read limit")
)

// Decode parses one frame and, when secret is non-empty, verifies its
// signature over the payload's raw bytes. It never panics on any input,
// including the JSON literal null, arrays and wrong field types. It reads
// the envelope only; the payload is decoded by the Envelope's methods. A
// receive loop should use a [Decoder] instead, which reads both in one pass
// with fewer allocations; Decode accepts and rejects envelopes exactly as
// it does (see [Frame] for the rules on keys).
func Decode(frame []byte, secret []byte) (Envelope, error) {
	d := NewDecoder(secret)
	var f Frame
	env, err := d.envelope(frame, &f, false)
	if err == nil {
		err = d.verify(&f, env)
	}
	if err != nil {
		return Envelope{}, err
	}
	return Envelope{Type: f.Type, Payload: bytes.Clone(f.Payload), Signature: string(env.sig)}, nil
}

// Hello decodes a hello payload.
func (e Envelope) Hello() (Hello, error) {
	f, err := e.decodePayload(TypeHello)
	return f.Hello, err
}

// Welcome decodes a welcome payload.
func (e Envelope) Welcome() (Welcome, error) {
	f, err := e.decodePayload(TypeWelcome)
	return f.Welcome, err
}

// Goodbye decodes a goodbye payload.
func (e Envelope) Goodbye() (Goodbye, error) {
	f, err := e.decodePayload(TypeGoodbye)
	return f.Goodbye, err
}

// Message decodes a gossip payload (put, ack, ping, pong, topology_sync).
func (e Envelope) Message() (Message, error) {
	if !e.Type.IsGossip() {
		return Message{}, fmt.Errorf("%w: %s is not a gossip envelope", ErrMalformed, e.Type)
	}
	f, err := e.decodePayload(e.Type)
	return f.Message, err
}

func (e Envelope) decodePayload(want Type) (Frame, error) {
	if e.Type != want {
		return Frame{}, fmt.Errorf("%w: want a %s payload, frame is %s", ErrMalformed, want, e.Type)
	}
	var s scanner
	f := Frame{Type: e.Type, Payload: e.Payload}
	if err := decodePayloadBytes(&s, e.Payload, &f); err != nil {
		return Frame{}, fmt.Errorf("%w: %s payload: %v", ErrMalformed, e.Type, err)
	}
	return f, nil
}

// Encode builds one frame of type t around payload, signed when secret is
// non-empty. The payload is compact JSON as JavaScript's JSON.stringify would
// write it: no HTML escaping, U+2028 and U+2029 unescaped.
func Encode(t Type, payload any, secret []byte) ([]byte, error) {
	if !t.known() {
		return nil, fmt.Errorf("%w %.32q", ErrUnknownType, t)
	}
	p, err := Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("wire: encode %s payload: %w", t, err)
	}
	if len(p) == 0 || p[0] != '{' {
		// A null payload crashes REPRAM TS substrates: never send one.
		return nil, fmt.Errorf("wire: %s payload must be a JSON object, got %.20s", t, p)
	}
	env := Envelope{Type: t, Payload: p}
	if len(secret) > 0 {
		env.Signature = Sign(secret, p)
	}
	return Marshal(env)
}

// Marshal writes v as compact JSON the way JavaScript's JSON.stringify does
// for the types of this package: no HTML escaping, and the line and
// paragraph separators U+2028 and U+2029 left as they are.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	out := bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
	return unescapeSeparators(out), nil
}

// unescapeSeparators turns encoding/json's \u2028 and \u2029 escapes back
// into the raw characters JSON.stringify emits. An escape is only one when
// it follows an even number of backslashes.
func unescapeSeparators(b []byte) []byte {
	if !bytes.Contains(b, []byte(`\u202`)) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+1 < len(b) {
			if b[i+1] == 'u' && i+5 < len(b) && b[i+2] == '2' && b[i+3] == '0' && b[i+4] == '2' &&
				(b[i+5] == '8' || b[i+5] == '9') {
				out = append(out, 0xE2, 0x80, 0xA8+(b[i+5]-'8'))
				i += 5
				continue
			}
			out = append(out, b[i], b[i+1])
			i++
			continue
		}
		out = append(out, b[i])
	}
	return out
}

// Sign returns the lowercase hex HMAC-SHA256 of payload keyed with secret.
func Sign(secret, payload []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(payload)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether sig is the signature of payload under secret,
// comparing in constant time. The hex may be in either case: what is
// authenticated is the MAC it spells, and [Sign] (like REPRAM) writes
// lowercase.
func Verify(secret, payload []byte, sig string) bool {
	got, err := hex.DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(payload)
	return hmac.Equal(got, m.Sum(nil))
}
