package wire_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/repram/handover/transport/wire"
)

// signed builds a frame the way a REPRAM node does, by string concatenation,
// so these tests do not depend on Encode.
func signed(typ, payload string, secret []byte) []byte {
	return []byte(`{"type":"` + typ + `","payload":` + payload + `,"signature":"` + wire.Sign(secret, []byte(payload)) + `"}`)
}

func TestDecodeRejects(t *testing.T) {
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	tests := []struct {
		name  string
		frame string
		want  error
	}{
		{"empty", ``, wire.ErrMalformed},
		{"null", `null`, wire.ErrMalformed},
		{"array", `[{"type":"put","payload":{}}]`, wire.ErrMalformed},
		{"empty array", `[]`, wire.ErrMalformed},
		{"number", `42`, wire.ErrMalformed},
		{"string", `"put"`, wire.ErrMalformed},
		{"bool", `true`, wire.ErrMalformed},
		{"binary garbage", "\xff\xfe\x00\x01\x89PNG\r\n", wire.ErrMalformed},
		{"truncated", `{"type":"put","payload":{"type":"PUT"`, wire.ErrMalformed},
		{"trailing data", `{"type":"ping","payload":{}} {}`, wire.ErrMalformed},
		{"trailing NUL", "{\"type\":\"ping\",\"payload\":{}}\x00", wire.ErrMalformed},
		{"trailing NUL after whitespace", "{\"type\":\"ping\",\"payload\":{}} \x00", wire.ErrMalformed},
		{"NUL for a value", "{\"type\":\"ping\",\"payload\":\x00}", wire.ErrMalformed},
		{"NUL for the type", "{\"type\":\x00,\"payload\":{}}", wire.ErrMalformed},
		{"deep nesting", deep, wire.ErrMalformed},
		{"empty object", `{}`, wire.ErrMalformed},
		{"empty type", `{"type":"","payload":{}}`, wire.ErrMalformed},
		{"type is a number", `{"type":5,"payload":{}}`, wire.ErrMalformed},
		{"type is null", `{"type":null,"payload":{}}`, wire.ErrMalformed},
		{"no payload", `{"type":"put"}`, wire.ErrMalformed},
		{"payload null", `{"type":"put","payload":null}`, wire.ErrMalformed},
		{"payload string", `{"type":"put","payload":"x"}`, wire.ErrMalformed},
		{"payload array", `{"type":"put","payload":[]}`, wire.ErrMalformed},
		{"payload number", `{"type":"hello","payload":1}`, wire.ErrMalformed},
		{"payload invalid JSON", `{"type":"put","payload":{"a":}}`, wire.ErrMalformed},
		{"signature is a number", `{"type":"ping","payload":{},"signature":5}`, wire.ErrMalformed},
		{"unknown type", `{"type":"subscribe","payload":{}}`, wire.ErrUnknownType},
		{"gossip type in upper case", `{"type":"PUT","payload":{}}`, wire.ErrUnknownType},
		{"type with space", `{"type":"put ","payload":{}}`, wire.ErrUnknownType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, secret := range [][]byte{nil, harnessSecret} {
				env, err := wire.Decode([]byte(tt.frame), secret)
				if !errors.Is(err, tt.want) {
					t.Fatalf("Decode(secret %q) = %v, want %v", secret, err, tt.want)
				}
				if env.Type != "" || env.Payload != nil {
					t.Errorf("Decode returned %+v with its error", env)
				}
			}
		})
	}
}

// TestDecodeErrorsAreExclusive checks each Decode error wraps exactly one
// sentinel, so counting by kind never counts a frame twice.
func TestDecodeErrorsAreExclusive(t *testing.T) {
	sentinels := []error{wire.ErrMalformed, wire.ErrUnknownType, wire.ErrUnsigned, wire.ErrBadSignature, wire.ErrTooLarge}
	for _, v := range loadVectors(t) {
		if v.want == nil {
			continue
		}
		_, err := wire.Decode(v.frame, v.secret)
		n := 0
		for _, s := range sentinels {
			if errors.Is(err, s) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %v wraps %d sentinels, want 1", v, err, n)
		}
	}
}

func TestDecodeUnknownTypeErrorIsBounded(t *testing.T) {
	long := strings.Repeat("x", 1<<20)
	_, err := wire.Decode([]byte(`{"type":"`+long+`","payload":{}}`), nil)
	if !errors.Is(err, wire.ErrUnknownType) {
		t.Fatalf("Decode = %v, want ErrUnknownType", err)
	}
	if n := len(err.Error()); n > 200 {
		t.Errorf("error message is %d bytes long: a peer can blow up our logs", n)
	}
}

func TestDecodeSignature(t *testing.T) {
	payload := `{"type":"PING","from":"sub-a","timestamp":1,"message_id":"1-1"}`
	good := wire.Sign(harnessSecret, []byte(payload))
	frame := func(sig string) []byte {
		return []byte(`{"type":"ping","payload":` + payload + `,"signature":"` + sig + `"}`)
	}
	tests := []struct {
		name string
		sig  string
		want error
	}{
		{"lowercase hex", good, nil},
		// Decision: the HMAC bytes are what is authenticated, so the hex case
		// does not matter. REPRAM emits lowercase and so does Sign.
		{"uppercase hex", strings.ToUpper(good), nil},
		{"mixed case hex", strings.ToUpper(good[:32]) + good[32:], nil},
		{"empty", "", wire.ErrUnsigned},
		{"one digit off", good[:63] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", good[63])+1)%16]), wire.ErrBadSignature},
		{"truncated", good[:62], wire.ErrBadSignature},
		{"odd length", good[:63], wire.ErrBadSignature},
		{"too long", good + "00", wire.ErrBadSignature},
		{"not hex", "zz" + good[2:], wire.ErrBadSignature},
		{"base64 of the MAC", "dGhpcyBpcyBub3QgaGV4IGF0IGFsbCwgaXQgaXMgYmFzZTY0IQ==", wire.ErrBadSignature},
		{"with spaces", " " + good, wire.ErrBadSignature},
		{"sha256 prefix", "sha256=" + good, wire.ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := wire.Decode(frame(tt.sig), harnessSecret)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode = %v, want %v", err, tt.want)
			}
			if err == nil && string(env.Payload) != payload {
				t.Errorf("Payload = %s, want the raw bytes %s", env.Payload, payload)
			}
		})
	}
}

// TestDecodeVerifiesRawBytes checks the signature is checked over the payload
// exactly as received, not over a canonical re-encoding of it.
func TestDecodeVerifiesRawBytes(t *testing.T) {
	// Whitespace and an escaped character a re-encoding would change.
	payload := `{ "type": "PING", "from": "\u0073ub-a", "timestamp": 1, "message_id": "1-1" }`
	env, err := wire.Decode(signed("ping", payload, harnessSecret), harnessSecret)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if string(env.Payload) != payload {
		t.Errorf("Payload = %s, want %s", env.Payload, payload)
	}
	m, err := env.Message()
	if err != nil || m.From != "sub-a" {
		t.Errorf("Message = %+v, %v", m, err)
	}
	// Signing the compact form instead must fail.
	compact := `{"type":"PING","from":"sub-a","timestamp":1,"message_id":"1-1"}`
	f := []byte(`{"type":"ping","payload":` + payload + `,"signature":"` + wire.Sign(harnessSecret, []byte(compact)) + `"}`)
	if _, err := wire.Decode(f, harnessSecret); !errors.Is(err, wire.ErrBadSignature) {
		t.Errorf("Decode with a signature over another encoding = %v, want ErrBadSignature", err)
	}
}

func TestPayloadRejects(t *testing.T) {
	tests := []struct {
		name    string
		typ     string
		payload string
		decode  func(wire.Envelope) (any, error)
	}{
		{"http_port is a string", "hello", `{"node_id":"t1","http_port":"x"}`, hello},
		{"capabilities is a string", "hello", `{"node_id":"t1","capabilities":"inbound"}`, hello},
		{"topology is an object", "welcome", `{"topology":{}}`, welcome},
		{"depth is a float", "welcome", `{"topology":[],"your_position":{"depth":1.5}}`, welcome},
		{"alternative_parents is a string", "goodbye", `{"reason":"x","alternative_parents":"sub-a"}`, goodbye},
		{"timestamp is a string", "put", `{"type":"PUT","timestamp":"1"}`, message},
		{"timestamp overflows", "put", `{"type":"PUT","timestamp":1e400}`, message},
		{"data is not base64", "put", `{"type":"PUT","data":"!!"}`, message},
		{"ttl is negative float", "put", `{"type":"PUT","ttl":-0.5}`, message},
		{"node_info is an array", "topology_sync", `{"type":"SYNC","node_info":[]}`, message},
		{"hello read as a message", "hello", `{"node_id":"t1"}`, message},
		{"put read as a hello", "put", `{"type":"PUT"}`, hello},
		{"welcome read as a goodbye", "welcome", `{"topology":[]}`, goodbye},
		{"goodbye read as a welcome", "goodbye", `{"reason":"x"}`, welcome},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := wire.Decode(signed(tt.typ, tt.payload, harnessSecret), harnessSecret)
			if err != nil {
				t.Fatalf("Decode: %v (the envelope is well formed)", err)
			}
			if _, err := tt.decode(env); !errors.Is(err, wire.ErrMalformed) {
				t.Errorf("payload decode = %v, want ErrMalformed", err)
			}
		})
	}
}

func hello(e wire.Envelope) (any, error)   { return e.Hello() }
func welcome(e wire.Envelope) (any, error) { return e.Welcome() }
func goodbye(e wire.Envelope) (any, error) { return e.Goodbye() }
func message(e wire.Envelope) (any, error) { return e.Message() }

func TestIsGossip(t *testing.T) {
	for _, typ := range []wire.Type{wire.TypePut, wire.TypeAck, wire.TypePing, wire.TypePong, wire.TypeTopologySync} {
		if !typ.IsGossip() {
			t.Errorf("%s.IsGossip() = false", typ)
		}
	}
	for _, typ := range []wire.Type{wire.TypeHello, wire.TypeWelcome, wire.TypeGoodbye, "PUT", ""} {
		if typ.IsGossip() {
			t.Errorf("%q.IsGossip() = true", typ)
		}
	}
}

// TestMarshalLikeJSONStringify checks string escaping against bytes written
// by hand from the rules of JavaScript's JSON.stringify: <, >, &, U+2028,
// U+2029, U+007F and non-ASCII stay raw; ", \ are escaped; control
// characters are \b \f \n \r \t or \u00xx with lowercase hex; / stays raw.
func TestMarshalLikeJSONStringify(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // the JSON string literal, quotes included
	}{
		{"html", `<a href="x">&amp;</a>`, `"<a href=\"x\">&amp;</a>"`},
		{"line and paragraph separators", "a\u2028b\u2029c", "\"a\xe2\x80\xa8b\xe2\x80\xa9c\""},
		{"short escapes", "\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"other control characters", "\x00\x01\x0b\x0e\x1b\x1f", `"\u0000\u0001\u000b\u000e\u001b\u001f"`},
		{"delete", "\x7f", "\"\x7f\""},
		{"quote backslash slash", `"\/`, `"\"\\/"`},
		{"non-ASCII", "é日本🚀", "\"\xc3\xa9\xe6\x97\xa5\xe6\x9c\xac\xf0\x9f\x9a\x80\""},
		{"other U+202x stay raw", "\u2027\u202a\u202f", "\"\u2027\u202a\u202f\""},
		// Text that merely looks like an escape must stay text.
		{"literal backslash-u2028 text", `\u2028`, `"\\u2028"`},
		{"backslash before a separator", "\\\u2028", "\"\\\\\u2028\""},
		{"three backslashes then u2029 text", `\\\u2029`, `"\\\\\\u2029"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wire.Marshal(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("Marshal(%q)\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}

	// The same rules hold inside a whole gossip message and its frame.
	m := wire.Message{Type: "PUT", From: "a<b", Timestamp: 7, MessageID: "7-1", Key: "k&\u2028\x01\x7f", Data: []byte{0xff}, TTL: 1}
	wantPayload := "{\"type\":\"PUT\",\"from\":\"a<b\",\"timestamp\":7,\"message_id\":\"7-1\",\"key\":\"k&\u2028\\u0001\x7f\",\"data\":\"/w==\",\"ttl\":1}"
	got, err := wire.Marshal(m)
	if err != nil || string(got) != wantPayload {
		t.Fatalf("Marshal(message)\n got %s, %v\nwant %s", got, err, wantPayload)
	}
	frame, err := wire.Encode(wire.TypePut, m, harnessSecret)
	if err != nil {
		t.Fatal(err)
	}
	wantFrame := `{"type":"put","payload":` + wantPayload + `,"signature":"` + wire.Sign(harnessSecret, []byte(wantPayload)) + `"}`
	if string(frame) != wantFrame {
		t.Errorf("Encode\n got %s\nwant %s", frame, wantFrame)
	}
}

func TestEncode(t *testing.T) {
	h := wire.Hello{NodeID: "t1", Enclave: "default", Address: "127.0.0.1", Capabilities: wire.Capabilities{Inbound: "false"}}
	const payload = `{"node_id":"t1","enclave":"default","address":"127.0.0.1","http_port":0,"capabilities":{"inbound":"false"}}`

	unsigned, err := wire.Encode(wire.TypeHello, h, nil)
	if err != nil || string(unsigned) != `{"type":"hello","payload":`+payload+`}` {
		t.Errorf("Encode unsigned = %s, %v", unsigned, err)
	}
	// A pointer encodes like the value.
	ptr, err := wire.Encode(wire.TypeHello, &h, harnessSecret)
	if err != nil {
		t.Fatal(err)
	}
	sig := wire.Sign(harnessSecret, []byte(payload))
	if string(ptr) != `{"type":"hello","payload":`+payload+`,"signature":"`+sig+`"}` {
		t.Errorf("Encode signed = %s", ptr)
	}
	if sig != strings.ToLower(sig) || len(sig) != 64 {
		t.Errorf("Sign = %q, want 64 lowercase hex digits", sig)
	}
	// Decode accepts what Encode writes.
	env, err := wire.Decode(ptr, harnessSecret)
	if err != nil {
		t.Fatalf("Decode(Encode(...)): %v", err)
	}
	if got, err := env.Hello(); err != nil || got != h {
		t.Errorf("Hello = %+v, %v, want %+v", got, err, h)
	}
}

// TestEncodeRefusesNonObjects checks Encode never emits a null (which crashes
// a REPRAM TS substrate) or any other non-object payload.
func TestEncodeRefusesNonObjects(t *testing.T) {
	tests := []struct {
		name    string
		payload any
	}{
		{"nil", nil},
		{"nil pointer", (*wire.Hello)(nil)},
		{"nil map", map[string]int(nil)},
		{"raw null", []byte(nil)},
		{"string", "hello"},
		{"number", 1},
		{"array", []wire.Message{}},
		{"unmarshalable", map[string]any{"c": make(chan int)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, secret := range [][]byte{nil, harnessSecret} {
				frame, err := wire.Encode(wire.TypePut, tt.payload, secret)
				if err == nil {
					t.Fatalf("Encode(%#v) = %s, want an error", tt.payload, frame)
				}
				if frame != nil {
					t.Errorf("Encode returned %s with its error", frame)
				}
			}
		})
	}
}

func TestEncodeUnknownType(t *testing.T) {
	for _, typ := range []wire.Type{"", "PUT", "subscribe"} {
		if _, err := wire.Encode(typ, wire.Message{}, nil); !errors.Is(err, wire.ErrUnknownType) {
			t.Errorf("Encode(%q) = %v, want ErrUnknownType", typ, err)
		}
	}
}

func TestVerify(t *testing.T) {
	payload := []byte(`{"a":1}`)
	sig := wire.Sign(harnessSecret, payload)
	if !wire.Verify(harnessSecret, payload, sig) {
		t.Error("Verify rejects Sign's signature")
	}
	if wire.Verify([]byte("other"), payload, sig) {
		t.Error("Verify accepts a signature made with another secret")
	}
	if wire.Verify(harnessSecret, []byte(`{"a":2}`), sig) {
		t.Error("Verify accepts a signature over other bytes")
	}
	if wire.Verify(harnessSecret, append(bytes.Clone(payload), ' '), sig) {
		t.Error("Verify accepts a signature over other bytes (trailing space)")
	}
	if !wire.Verify(harnessSecret, payload, strings.ToUpper(sig)) {
		t.Error("Verify rejects upper-case hex; the documented choice is to accept it")
	}
	for _, bad := range []string{"", sig[:62], sig + "0", sig + "00", "g" + sig[1:]} {
		if wire.Verify(harnessSecret, payload, bad) {
			t.Errorf("Verify accepts %q", bad)
		}
	}
}
