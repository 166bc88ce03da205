package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/repram/handover/transport/wire"
)

// This file keeps the encoding/json decoder that the one-pass decoder
// replaced, as the oracle of the differential tests, and an independent
// detector of the one deliberate difference (keys, see wire.Frame).

// oracleEnvelope is wire.Envelope as encoding/json decoded it.
type oracleEnvelope struct {
	Type      wire.Type       `json:"type"`
	Payload   json.RawMessage `json:"payload"`
	Signature string          `json:"signature,omitempty"`
}

// oracleDecode is the former wire.Decode, on encoding/json.
func oracleDecode(frame []byte, secret []byte) (wire.Envelope, error) {
	var env oracleEnvelope
	if err := json.Unmarshal(frame, &env); err != nil {
		return wire.Envelope{}, fmt.Errorf("%w: %v", wire.ErrMalformed, err)
	}
	if env.Type == "" {
		return wire.Envelope{}, fmt.Errorf("%w: no type", wire.ErrMalformed)
	}
	if !env.Type.IsGossip() && env.Type != wire.TypeHello && env.Type != wire.TypeWelcome && env.Type != wire.TypeGoodbye {
		return wire.Envelope{}, fmt.Errorf("%w %.32q", wire.ErrUnknownType, env.Type)
	}
	if len(env.Payload) == 0 || env.Payload[0] != '{' {
		return wire.Envelope{}, fmt.Errorf("%w: %s payload is not an object", wire.ErrMalformed, env.Type)
	}
	if len(secret) > 0 {
		if env.Signature == "" {
			return wire.Envelope{}, fmt.Errorf("%w: %s", wire.ErrUnsigned, env.Type)
		}
		if !wire.Verify(secret, env.Payload, env.Signature) {
			return wire.Envelope{}, fmt.Errorf("%w on %s frame", wire.ErrBadSignature, env.Type)
		}
	}
	return wire.Envelope{Type: env.Type, Payload: []byte(env.Payload), Signature: env.Signature}, nil
}

// oracleFrame decodes like wire.DecodeFrame with the former decoder: the
// envelope, then the payload for its type with json.Unmarshal.
func oracleFrame(frame, secret []byte) (wire.Frame, error) {
	env, err := oracleDecode(frame, secret)
	if err != nil {
		return wire.Frame{}, err
	}
	f := wire.Frame{Type: env.Type, Payload: env.Payload}
	var dst any
	switch {
	case env.Type.IsGossip():
		dst = &f.Message
	case env.Type == wire.TypeHello:
		dst = &f.Hello
	case env.Type == wire.TypeWelcome:
		dst = &f.Welcome
	default:
		dst = &f.Goodbye
	}
	if err := json.Unmarshal(env.Payload, dst); err != nil {
		return wire.Frame{}, fmt.Errorf("%w: %s payload: %v", wire.ErrMalformed, env.Type, err)
	}
	return f, nil
}

// schema is the shape of the objects whose keys the decoder checks.
type schema struct {
	fields map[string]*schema // an object's known keys
	elem   *schema            // an array's elements
}

func object(fields map[string]*schema) *schema { return &schema{fields: fields} }

var (
	leaf          = &schema{}
	nodeInfoShape = object(map[string]*schema{"id": leaf, "address": leaf, "port": leaf, "http_port": leaf, "enclave": leaf})
	messageShape  = object(map[string]*schema{"type": leaf, "from": leaf, "timestamp": leaf, "message_id": leaf,
		"to": leaf, "key": leaf, "data": leaf, "ttl": leaf, "node_info": nodeInfoShape})
	payloadShapes = map[wire.Type]*schema{
		wire.TypeHello: object(map[string]*schema{"node_id": leaf, "enclave": leaf, "address": leaf, "http_port": leaf,
			"capabilities": object(map[string]*schema{"inbound": leaf})}),
		wire.TypeWelcome: object(map[string]*schema{"topology": {elem: messageShape},
			"your_position": object(map[string]*schema{"depth": leaf, "parent_id": leaf})}),
		wire.TypeGoodbye: object(map[string]*schema{"reason": leaf, "alternative_parents": {elem: object(map[string]*schema{
			"id": leaf, "address": leaf, "http_port": leaf, "enclave": leaf})}}),
	}
)

// keyIssue reports whether frame, a valid JSON text, has a key that the
// decoder refuses and encoding/json accepts: one named twice in an object
// the decoder reads, or one equal to a known key only when case is folded.
// With payload false only the envelope is looked at; otherwise the payload
// too, as the payload of type typ. It walks encoding/json's token stream,
// so it shares no code with the decoder.
func keyIssue(frame []byte, typ wire.Type, payload bool) bool {
	env := object(map[string]*schema{"type": leaf, "payload": leaf, "signature": leaf})
	if payload {
		shape := messageShape
		if s, ok := payloadShapes[typ]; ok {
			shape = s
		}
		env.fields["payload"] = shape
	}
	dec := json.NewDecoder(bytes.NewReader(frame))
	dec.UseNumber()
	found, err := walk(dec, env)
	if err != nil && !errors.Is(err, io.EOF) {
		panic(fmt.Sprintf("keyIssue on a frame encoding/json accepted: %v", err))
	}
	return found
}

// walk reads one value from dec, checking its keys against sh (nil: any).
func walk(dec *json.Decoder, sh *schema) (bool, error) {
	tok, err := dec.Token()
	if err != nil {
		return false, err
	}
	found := false
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return false, err
			}
			k := kt.(string)
			var sub *schema
			if sh != nil && sh.fields != nil {
				if s, ok := sh.fields[k]; ok {
					found = found || seen[k]
					seen[k] = true
					sub = s
				} else {
					for name := range sh.fields {
						found = found || strings.EqualFold(k, name)
					}
				}
			}
			f, err := walk(dec, sub)
			if err != nil {
				return false, err
			}
			found = found || f
		}
		if _, err := dec.Token(); err != nil {
			return false, err
		}
	case json.Delim('['):
		var sub *schema
		if sh != nil {
			sub = sh.elem
		}
		for dec.More() {
			f, err := walk(dec, sub)
			if err != nil {
				return false, err
			}
			found = found || f
		}
		if _, err := dec.Token(); err != nil {
			return false, err
		}
	}
	return found, nil
}
