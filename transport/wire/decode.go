package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
)

// Frame is one frame decoded by [Decoder.Decode]: the envelope and, for its
// type, the typed payload, read together in one pass over the frame.
//
// Keys must match the field names exactly: a key that differs from a field
// name only in case, or a field named twice in one object, makes the frame
// malformed. REPRAM writes its frames with JavaScript's JSON.stringify, which
// never does either; JavaScript reads such keys as other, unknown properties
// (and keeps the last of a repeated one) while encoding/json folds case and
// merges repeated objects, so accepting them would let the two ends of a link
// read one signed frame differently. This is the only way the decoder differs
// from encoding/json: everything else it accepts, encoding/json accepts with
// the same values, and everything encoding/json rejects, it rejects.
type Frame struct {
	Type Type
	// Payload is the payload's bytes exactly as received, the bytes the
	// signature covers. It aliases the frame passed to Decode.
	Payload []byte

	Message Message // for the gossip types
	Hello   Hello   // for TypeHello
	Welcome Welcome // for TypeWelcome
	Goodbye Goodbye // for TypeGoodbye
}

// Decoder decodes and verifies frames, reusing its HMAC state and scratch
// buffers from one frame to the next, so decoding a put allocates only the
// message's own strings and data. A Decoder is not safe for concurrent use:
// give each receiving goroutine its own.
//
// Why hand-written: timed in one run on this project's 2-core machine
// (thread CPU time; the signed 1.6 KB benchmark put decoded, verified and
// its message read), encoding/json costs 28 times a bare HMAC of the payload
// and 26 allocations; goccy/go-json and json-iterator, in the same two
// passes, 9 times (14 and 26 allocations, a fresh HMAC included);
// valyala/fastjson 3.3 times (14 allocations) without keeping the payload's
// raw bytes or decoding the data; this decoder 3.2 times and 4 allocations.
// encoding/json/v2 needs GOEXPERIMENT=jsonv2 in Go 1.26, which a library
// cannot ask of its users. The frame's shape is fixed, so one scan that
// decodes while it validates is the fastest way and the only one that keeps
// exact control of what is accepted.
type Decoder struct {
	mac hash.Hash // HMAC-SHA256 keyed with the secret; nil without one
	sum [sha256.Size]byte
	sig [sha256.Size]byte
	s   scanner
}

// NewDecoder returns a Decoder that verifies every frame's signature with
// secret, or accepts unsigned frames if secret is empty.
func NewDecoder(secret []byte) *Decoder {
	d := &Decoder{}
	if len(secret) > 0 {
		d.mac = hmac.New(sha256.New, secret)
	}
	return d
}

// DecodeFrame decodes one frame with a new [Decoder]; see [Decoder.Decode].
// A receive loop should keep a Decoder instead.
func DecodeFrame(frame, secret []byte) (Frame, error) {
	var f Frame
	err := NewDecoder(secret).Decode(frame, &f)
	return f, err
}

// Decode decodes frame into *f in one pass: the envelope, the signature
// (verified in constant time over the payload's raw bytes when the Decoder
// has a secret) and the payload for the envelope's type. *f is overwritten;
// on error it is left zero. Errors wrap exactly one of ErrMalformed,
// ErrUnknownType, ErrUnsigned and ErrBadSignature, ranked as [Decode] ranks
// them, and a payload that does not fit its type is ErrMalformed. Decode
// never panics, whatever the input.
func (d *Decoder) Decode(frame []byte, f *Frame) error {
	*f = Frame{}
	env, err := d.envelope(frame, f, true)
	if err == nil {
		err = d.verify(f, env)
	}
	if err == nil && env.payloadErr != nil {
		err = fmt.Errorf("%w: %s payload: %v", ErrMalformed, f.Type, env.payloadErr)
	}
	if err != nil {
		*f = Frame{}
	}
	return err
}

// envelope holds what a scan of the envelope found besides the Frame.
type envelope struct {
	sig        []byte // the signature's text, nil if absent or null
	payloadErr error  // the first type error inside the payload
}

var envelopeFields = []string{"type", "payload", "signature"}

// envelope scans frame, filling in f.Type, f.Payload and, if typed, the
// typed payload: in the same pass when the type comes before the payload
// (as REPRAM writes it), from the payload's bytes afterwards otherwise. The
// error is the envelope's, ranked as Decode ranks them.
func (d *Decoder) envelope(frame []byte, f *Frame, typed bool) (env envelope, err error) {
	s := &d.s
	s.reset(frame)
	done := !typed // the payload needs no more decoding
	var typeText []byte
	switch s.ws() {
	case '{':
		if s.beginObject() {
			var seen uint32
			for {
				k := s.key()
				switch s.field(k, envelopeFields, &seen, "envelope") {
				case 0:
					switch s.peek() {
					case '"':
						v, _ := s.str()
						f.Type = knownType(v)
						if f.Type == "" && len(v) > 0 {
							typeText = append(typeText[:0], v[:min(len(v), 128)]...)
						}
					case 'n':
						s.literal()
					default:
						s.wrongKind("envelope type", "a string")
					}
				case 1:
					start := s.pos
					if s.peek() == '{' && f.Type != "" && !done {
						env.payloadErr = s.payload(f)
						done = true
					} else {
						s.skip()
					}
					f.Payload = frame[start:s.pos]
				case 2:
					switch s.peek() {
					case '"':
						v, raw := s.str()
						if raw {
							env.sig = v
						} else {
							env.sig = append([]byte(nil), v...) // rare: escaped, in s.tmp
						}
					case 'n':
						s.literal()
					default:
						s.wrongKind("envelope signature", "a string")
					}
				default:
					s.skip()
				}
				if !s.moreMembers() {
					break
				}
			}
		}
	case 0:
		s.syntax("empty frame")
	default:
		kind := s.kind()
		s.skip()
		s.mistype("the frame is a JSON %s, want an object", kind)
	}
	if s.ws(); s.err == nil && s.pos < len(s.buf) {
		s.syntax("data after the frame")
	}
	switch {
	case s.err != nil:
		return env, fmt.Errorf("%w: %v", ErrMalformed, s.err)
	case s.typeErr != nil:
		return env, fmt.Errorf("%w: %v", ErrMalformed, s.typeErr)
	case f.Type == "" && typeText == nil:
		return env, fmt.Errorf("%w: no type", ErrMalformed)
	case f.Type == "":
		// A peer chooses the type: quote at most 32 characters of it.
		return env, fmt.Errorf("%w %.32q", ErrUnknownType, typeText)
	case len(f.Payload) == 0 || f.Payload[0] != '{':
		return env, fmt.Errorf("%w: %s payload is not an object", ErrMalformed, f.Type)
	}
	if !done {
		// The payload came before the type: decode its bytes now.
		env.payloadErr = decodePayloadBytes(s, f.Payload, f)
	}
	return env, nil
}

// knownType returns the envelope type v spells, or "" if none.
func knownType(v []byte) Type {
	switch string(v) {
	case "put":
		return TypePut
	case "ack":
		return TypeAck
	case "ping":
		return TypePing
	case "pong":
		return TypePong
	case "topology_sync":
		return TypeTopologySync
	case "hello":
		return TypeHello
	case "welcome":
		return TypeWelcome
	case "goodbye":
		return TypeGoodbye
	}
	return ""
}

// verify checks the signature the envelope scan found over f.Payload, if d
// has a secret, comparing the MACs in constant time.
func (d *Decoder) verify(f *Frame, env envelope) error {
	if d.mac == nil {
		return nil
	}
	if len(env.sig) == 0 {
		return fmt.Errorf("%w: %s", ErrUnsigned, f.Type)
	}
	// The hex may be in either case, as for Verify.
	ok := len(env.sig) == 2*sha256.Size
	if ok {
		_, err := hex.Decode(d.sig[:], env.sig)
		ok = err == nil
	}
	if ok {
		d.mac.Reset()
		d.mac.Write(f.Payload)
		ok = hmac.Equal(d.sig[:], d.mac.Sum(d.sum[:0]))
	}
	if !ok {
		return fmt.Errorf("%w on %s frame", ErrBadSignature, f.Type)
	}
	return nil
}

// payload decodes the object at s.pos as f.Type's payload and returns the
// first type error in it, leaving earlier type errors alone.
func (s *scanner) payload(f *Frame) error {
	saved := s.typeErr
	s.typeErr = nil
	switch {
	case f.Type.IsGossip():
		s.message(&f.Message, "message")
	case f.Type == TypeWelcome:
		s.welcome(&f.Welcome)
	case f.Type == TypeGoodbye:
		s.goodbye(&f.Goodbye)
	case f.Type == TypeHello:
		s.hello(&f.Hello)
	}
	err := s.typeErr
	s.typeErr = saved
	return err
}

// decodePayloadBytes decodes payload, a whole JSON text, as f.Type's payload
// with s, and returns the first syntax or type error.
func decodePayloadBytes(s *scanner, payload []byte, f *Frame) error {
	s.reset(payload)
	if s.ws() == 0 {
		return fmt.Errorf("%w: empty payload", errSyntax)
	}
	err := s.payload(f)
	if s.ws(); s.err == nil && s.pos < len(s.buf) {
		s.syntax("data after the payload")
	}
	if s.err != nil {
		return s.err
	}
	return err
}

// peek returns the byte at s.pos. It returns 0 only with a syntax error
// recorded: at the end of the frame, at a NUL byte or after an earlier one.
func (s *scanner) peek() byte {
	if s.err != nil {
		return 0
	}
	if s.pos >= len(s.buf) {
		s.syntax("unexpected end of JSON input")
		return 0
	}
	c := s.buf[s.pos]
	if c == 0 {
		s.syntax("NUL byte")
	}
	return c
}

// object starts a struct-valued field: it consumes '{' and reports whether
// members follow; null (a no-op, as in encoding/json) and other kinds (a
// type error) are consumed too and report false.
func (s *scanner) object(field string) bool {
	switch s.peek() {
	case '{':
		return s.beginObject()
	case 'n':
		s.literal()
	case 0:
	default:
		s.wrongKind(field, "an object")
	}
	return false
}

// array starts a slice-valued field like object; null sets *isNull.
func (s *scanner) array(field string, isNull *bool) bool {
	switch s.peek() {
	case '[':
		if !s.enter() {
			return false
		}
		if s.ws() == ']' {
			s.pos++
			s.depth--
			return false
		}
		return true
	case 'n':
		s.literal()
		*isNull = true
	case 0:
	default:
		s.wrongKind(field, "an array")
	}
	return false
}

var messageFields = []string{"type", "from", "timestamp", "message_id", "to", "key", "data", "ttl", "node_info"}

func (s *scanner) message(m *Message, where string) {
	if !s.object(where) {
		return
	}
	var seen uint32
	for {
		k := s.key()
		switch s.field(k, messageFields, &seen, where) {
		case 0:
			s.internInto(&m.Type, "type")
		case 1:
			s.fromInto(&m.From)
		case 2:
			intInto(s, &m.Timestamp, "timestamp", 64)
		case 3:
			s.stringInto(&m.MessageID, "message_id")
		case 4:
			s.stringInto(&m.To, "to")
		case 5:
			s.stringInto(&m.Key, "key")
		case 6:
			s.bytesInto(&m.Data, "data")
		case 7:
			intInto(s, &m.TTL, "ttl", strconv.IntSize)
		case 8:
			s.nodeInfo(&m.NodeInfo)
		default:
			s.skip()
		}
		if !s.moreMembers() {
			return
		}
	}
}

var nodeInfoFields = []string{"id", "address", "port", "http_port", "enclave"}

// nodeInfo reads node_info into *dst, which is nil: null leaves it so.
func (s *scanner) nodeInfo(dst **NodeInfo) {
	if s.peek() != '{' {
		s.object("node_info") // null, or a type error
		return
	}
	n := new(NodeInfo)
	*dst = n
	if !s.object("node_info") {
		return
	}
	var seen uint32
	for {
		k := s.key()
		switch s.field(k, nodeInfoFields, &seen, "node_info") {
		case 0:
			s.stringInto(&n.ID, "id")
		case 1:
			s.stringInto(&n.Address, "address")
		case 2:
			intInto(s, &n.Port, "port", strconv.IntSize)
		case 3:
			intInto(s, &n.HTTPPort, "http_port", strconv.IntSize)
		case 4:
			s.internInto(&n.Enclave, "enclave")
		default:
			s.skip()
		}
		if !s.moreMembers() {
			return
		}
	}
}

var helloFields = []string{"node_id", "enclave", "address", "http_port", "capabilities"}

func (s *scanner) hello(h *Hello) {
	if !s.object("hello") {
		return
	}
	var seen uint32
	for {
		k := s.key()
		switch s.field(k, helloFields, &seen, "hello") {
		case 0:
			s.stringInto(&h.NodeID, "node_id")
		case 1:
			s.internInto(&h.Enclave, "enclave")
		case 2:
			s.stringInto(&h.Address, "address")
		case 3:
			intInto(s, &h.HTTPPort, "http_port", strconv.IntSize)
		case 4:
			s.capabilities(&h.Capabilities)
		default:
			s.skip()
		}
		if !s.moreMembers() {
			return
		}
	}
}

var capabilitiesFields = []string{"inbound"}

func (s *scanner) capabilities(c *Capabilities) {
	if !s.object("capabilities") {
		return
	}
	var seen uint32
	for {
		k := s.key()
		switch s.field(k, capabilitiesFields, &seen, "capabilities") {
		case 0:
			s.internInto(&c.Inbound, "inbound")
		default:
			s.skip()
		}
		if !s.moreMembers() {
			return
		}
	}
}

var welcomeFields = []string{"topology", "your_position"}

func (s *scanner) welcome(w *Welcome) {
	if !s.object("welcome") {
		return
	}
	var seen uint32
	for {
		k := s.key()
		switch s.field(k, welcomeFields, &seen, "welcome") {
		case 0:
			var null bool
			w.Topology = []Message{}
			if s.array("topology", &null) {
				for {
					w.Topology = append(w.Topology, Message{})
					s.message(&w.Topology[len(w.Topology)-1], "topology element")
					if s.err != nil || !s.more(']') {
						break
					}
				}
			}
			if null {
				w.Topology = nil
			}
		case 1:
			s.position(&w.YourPosition)
		default:
			s.skip()
		}
		if !s.moreMembers() {
			return
		}
	}
}

var positionFields = []string{"depth", "parent_id"}

func (s *scanner) position(p *Position) {
	if !s.object("your_position") {
		return
	}
	var seen uint32
	for {
		k := s.key()
		switch s.field(k, positionFields, &seen, "your_position") {
		case 0:
			intInto(s, &p.Depth, "depth", strconv.IntSize)
		case 1:
			s.stringInto(&p.ParentID, "parent_id")
		default:
			s.skip()
		}
		if !s.moreMembers() {
			return
		}
	}
}

var goodbyeFields = []string{"reason", "alternative_parents"}

func (s *scanner) goodbye(g *Goodbye) {
	if !s.object("goodbye") {
		return
	}
	var seen uint32
	for {
		k := s.key()
		switch s.field(k, goodbyeFields, &seen, "goodbye") {
		case 0:
			s.stringInto(&g.Reason, "reason")
		case 1:
			var null bool
			g.AlternativeParents = []Parent{}
			if s.array("alternative_parents", &null) {
				for {
					g.AlternativeParents = append(g.AlternativeParents, Parent{})
					s.parent(&g.AlternativeParents[len(g.AlternativeParents)-1])
					if s.err != nil || !s.more(']') {
						break
					}
				}
			}
			if null {
				g.AlternativeParents = nil
			}
		default:
			s.skip()
		}
		if !s.moreMembers() {
			return
		}
	}
}

var parentFields = []string{"id", "address", "http_port", "enclave"}

func (s *scanner) parent(p *Parent) {
	if !s.object("alternative parent") {
		return
	}
	var seen uint32
	for {
		k := s.key()
		switch s.field(k, parentFields, &seen, "alternative parent") {
		case 0:
			s.stringInto(&p.ID, "id")
		case 1:
			s.stringInto(&p.Address, "address")
		case 2:
			intInto(s, &p.HTTPPort, "http_port", strconv.IntSize)
		case 3:
			s.internInto(&p.Enclave, "enclave")
		default:
			s.skip()
		}
		if !s.moreMembers() {
			return
		}
	}
}

// fromInto is stringInto for a message's sender, which repeats from one
// message to the next: the last sender read is kept, and reused instead of
// allocated again when the next message names it too.
func (s *scanner) fromInto(dst *string) {
	if s.peek() != '"' {
		s.stringInto(dst, "from")
		return
	}
	v, _ := s.str()
	if s.err != nil {
		return
	}
	if string(v) != s.from {
		s.from = string(v)
	}
	*dst = s.from
}

// internInto is stringInto for fields whose values are mostly a few
// constants, which it returns without allocating.
func (s *scanner) internInto(dst *string, field string) {
	if s.peek() != '"' {
		s.stringInto(dst, field)
		return
	}
	v, _ := s.str()
	if s.err != nil {
		return
	}
	switch string(v) {
	case "PUT":
		*dst = "PUT"
	case "ACK":
		*dst = "ACK"
	case "PING":
		*dst = "PING"
	case "PONG":
		*dst = "PONG"
	case "SYNC":
		*dst = "SYNC"
	case "default":
		*dst = "default"
	case "false":
		*dst = "false"
	case "true":
		*dst = "true"
	default:
		*dst = string(v)
	}
}

// bytesInto reads a []byte field as encoding/json does: a base64 string
// (standard alphabet, padded; CR and LF ignored), an array of numbers
// 0-255, or null for nil.
func (s *scanner) bytesInto(dst *[]byte, field string) {
	switch s.peek() {
	case '"':
		// Fast path: up to the next quote there is nothing but padded
		// base64, so the string needs no scan of its own. The decoder
		// refuses every other byte but CR and LF (which JSON refuses raw);
		// it skips those, so it returns fewer bytes than the length implies
		// exactly when there are any.
		start := s.pos + 1
		if q := bytes.IndexByte(s.buf[start:], '"'); q >= 0 && q%4 == 0 {
			seg := s.buf[start : start+q]
			out := make([]byte, base64.StdEncoding.DecodedLen(q))
			n, err := base64.StdEncoding.Decode(out, seg)
			if pad := len(seg) - len(bytes.TrimRight(seg, "=")); err == nil && n == len(out)-pad {
				s.pos = start + q + 1
				*dst = out[:n]
				return
			}
		}
		v, _ := s.str()
		if s.err != nil {
			return
		}
		out := make([]byte, base64.StdEncoding.DecodedLen(len(v)))
		n, err := base64.StdEncoding.Decode(out, v)
		if err != nil {
			s.mistype("%s: %v", field, err)
			return
		}
		*dst = out[:n]
	case 'n':
		s.literal()
		*dst = nil
	case '[':
		var null bool
		out := []byte{}
		if s.array(field, &null) {
			for {
				var b byte
				switch c := s.peek(); {
				case c == '-' || '0' <= c && c <= '9':
					num := s.number()
					v, ok := parseInt(num, 9) // 0..255 fits in 9 signed bits
					if s.err == nil && (!ok || v < 0 || num[0] == '-') {
						s.mistype("%s: %.40s is not a byte", field, num)
					}
					b = byte(v)
				case c == 'n':
					s.literal()
				case c == 0:
				default:
					s.wrongKind(field+" element", "a number")
				}
				out = append(out, b)
				if s.err != nil || !s.more(']') {
					break
				}
			}
		}
		*dst = out
	case 0:
	default:
		s.wrongKind(field, "base64 text")
	}
}
