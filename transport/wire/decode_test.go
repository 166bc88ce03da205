package wire_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/repram/handover/transport/wire"
)

// TestKeyRules pins the one documented difference from encoding/json: keys
// that repeat, or that match a field only when case is folded, are refused
// as malformed where encoding/json binds them. Each frame here is one
// encoding/json accepts; keys that match exactly, escaped or not, and
// unknown keys stay accepted.
func TestKeyRules(t *testing.T) {
	const ping = `{"type":"PING","from":"a","timestamp":1,"message_id":"1-1"}`
	tests := []struct {
		name   string
		frame  string
		refuse bool
	}{
		{"exact keys", `{"type":"ping","payload":` + ping + `}`, false},
		{"escaped exact key", `{"\u0074ype":"ping","payload":{"\u0066rom":"a"}}`, false},
		{"unknown keys", `{"type":"ping","payload":{"froms":"a","extra":{"type":1,"type":2}},"x":1}`, false},
		{"envelope key in upper case", `{"TYPE":"ping","payload":{}}`, true},
		{"envelope key in mixed case", `{"type":"ping","Payload":{}}`, true},
		{"payload key in another case", `{"type":"ping","payload":{"From":"a"}}`, true},
		{"key with the Kelvin sign", `{"type":"put","payload":{"\u212aey":"k"}}`, true},
		{"key with a long s", `{"type":"ping","payload":{},"\u017fignature":"00"}`, true}, // ſ folds to s
		{"nested key in another case", `{"type":"topology_sync","payload":{"node_info":{"ID":"b"}}}`, true},
		{"duplicate envelope key", `{"type":"ping","type":"ping","payload":{}}`, true},
		{"duplicate payload", `{"type":"ping","payload":{},"payload":{}}`, true},
		{"duplicate payload key", `{"type":"ping","payload":{"from":"a","from":"b"}}`, true},
		{"duplicate with null", `{"type":"ping","payload":{"from":"a","from":null}}`, true},
		{"duplicate nested key", `{"type":"welcome","payload":{"topology":[{"node_info":{"id":"a","id":"b"}}]}}`, true},
		{"duplicate array", `{"type":"goodbye","payload":{"alternative_parents":[],"alternative_parents":[]}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := []byte(tt.frame)
			if _, err := oracleFrame(frame, nil); err != nil {
				t.Fatalf("encoding/json refuses the frame (%v): not a difference", err)
			}
			_, err := wire.DecodeFrame(frame, nil)
			if !tt.refuse {
				if err != nil {
					t.Fatalf("DecodeFrame = %v, want the frame accepted", err)
				}
				return
			}
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("DecodeFrame = %v, want ErrMalformed", err)
			}
			if !keyIssue(frame, wire.Type(""), false) && !keyIssue(frame, typeOf(t, frame), true) {
				t.Errorf("keyIssue does not see the key the decoder refuses: the differential fuzz test would miss it")
			}
		})
	}
}

func typeOf(t *testing.T, frame []byte) wire.Type {
	t.Helper()
	env, err := oracleDecode(frame, nil)
	if err != nil {
		t.Fatalf("oracleDecode: %v", err)
	}
	return env.Type
}

// TestDecoderReuse decodes frames of every kind with one Decoder and Frame
// and checks each result equals a fresh decode: nothing of one frame leaks
// into the next, and a failed decode leaves the Frame zero.
func TestDecoderReuse(t *testing.T) {
	var frames [][]byte
	for _, v := range loadVectors(t) {
		if bytes.Equal(v.secret, harnessSecret) {
			frames = append(frames, v.frame)
		}
	}
	d := wire.NewDecoder(harnessSecret)
	var f wire.Frame
	for round := range 2 {
		for i, frame := range frames {
			want, wantErr := wire.DecodeFrame(frame, harnessSecret)
			err := d.Decode(frame, &f)
			if (err == nil) != (wantErr == nil) || !reflect.DeepEqual(f, want) {
				t.Fatalf("round %d frame %d: reused Decoder gave %+v, %v; a new one %+v, %v", round, i, f, err, want, wantErr)
			}
			if err != nil && !reflect.DeepEqual(f, wire.Frame{}) {
				t.Fatalf("frame %d: Frame %+v left with error %v", i, f, err)
			}
		}
	}
}

// TestDecodeFrame checks the typed payload comes with its envelope and the
// raw payload bytes, for every type, and the payload's position in the
// envelope does not matter.
func TestDecodeFrame(t *testing.T) {
	msg := `{"type":"PUT","from":"sub-b","timestamp":1795600001,"message_id":"1-1","key":"k","data":"aGk=","ttl":300}`
	f, err := wire.DecodeFrame(signed("put", msg, harnessSecret), harnessSecret)
	if err != nil {
		t.Fatal(err)
	}
	want := wire.Message{Type: "PUT", From: "sub-b", Timestamp: 1795600001, MessageID: "1-1", Key: "k", Data: []byte("hi"), TTL: 300}
	if f.Type != wire.TypePut || string(f.Payload) != msg || !reflect.DeepEqual(f.Message, want) {
		t.Errorf("DecodeFrame = %+v", f)
	}
	if !reflect.DeepEqual(f.Hello, wire.Hello{}) || f.Welcome.Topology != nil || f.Goodbye.Reason != "" {
		t.Errorf("a put filled other payloads: %+v", f)
	}

	// Payload first, then type: decoded all the same.
	frame := []byte(`{"payload":` + msg + `,"signature":"` + wire.Sign(harnessSecret, []byte(msg)) + `","type":"put"}`)
	g, err := wire.DecodeFrame(frame, harnessSecret)
	if err != nil || !reflect.DeepEqual(g.Message, want) {
		t.Errorf("payload before type: %+v, %v", g.Message, err)
	}

	hello := `{"node_id":"t1","enclave":"default","address":"127.0.0.1","http_port":8080,"capabilities":{"inbound":"false"}}`
	f, err = wire.DecodeFrame(signed("hello", hello, harnessSecret), harnessSecret)
	if err != nil || f.Hello != (wire.Hello{NodeID: "t1", Enclave: "default", Address: "127.0.0.1", HTTPPort: 8080, Capabilities: wire.Capabilities{Inbound: "false"}}) {
		t.Errorf("hello: %+v, %v", f.Hello, err)
	}
}

// TestDecodeFrameRejects runs the envelope rejections of TestDecodeRejects
// and payload type errors through DecodeFrame, which must refuse the frame.
func TestDecodeFrameRejects(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"timestamp is a string", signed("put", `{"type":"PUT","timestamp":"1"}`, harnessSecret), wire.ErrMalformed},
		{"ttl is a fraction", signed("put", `{"type":"PUT","ttl":1.5}`, harnessSecret), wire.ErrMalformed},
		{"ttl has an exponent", signed("put", `{"type":"PUT","ttl":1e2}`, harnessSecret), wire.ErrMalformed},
		{"timestamp overflows int64", signed("put", `{"type":"PUT","timestamp":9223372036854775808}`, harnessSecret), wire.ErrMalformed},
		{"timestamp overflows int64 by far", signed("put", `{"type":"PUT","timestamp":10000000000000000000}`, harnessSecret), wire.ErrMalformed},
		{"timestamp under int64", signed("put", `{"type":"PUT","timestamp":-9223372036854775809}`, harnessSecret), wire.ErrMalformed},
		{"ttl overflows int", signed("put", `{"type":"PUT","ttl":18446744073709551616}`, harnessSecret), wire.ErrMalformed},
		{"data is not base64", signed("put", `{"type":"PUT","data":"!!"}`, harnessSecret), wire.ErrMalformed},
		{"data has a raw newline", signed("put", "{\"type\":\"PUT\",\"data\":\"aGk=\naGk=\"}", harnessSecret), wire.ErrMalformed},
		{"data byte out of range", signed("put", `{"type":"PUT","data":[256]}`, harnessSecret), wire.ErrMalformed},
		{"data byte further out of range", signed("put", `{"type":"PUT","data":[257]}`, harnessSecret), wire.ErrMalformed},
		{"data has four raw newlines", signed("put", "{\"type\":\"PUT\",\"data\":\"aGVs\n\n\n\nbG8=\"}", harnessSecret), wire.ErrMalformed},
		{"data byte negative", signed("put", `{"type":"PUT","data":[-1]}`, harnessSecret), wire.ErrMalformed},
		{"data byte a fraction", signed("put", `{"type":"PUT","data":[1.0]}`, harnessSecret), wire.ErrMalformed},
		{"data byte a string", signed("put", `{"type":"PUT","data":["1"]}`, harnessSecret), wire.ErrMalformed},
		{"node_info is an array", signed("topology_sync", `{"type":"SYNC","node_info":[]}`, harnessSecret), wire.ErrMalformed},
		{"topology is an object", signed("welcome", `{"topology":{}}`, harnessSecret), wire.ErrMalformed},
		{"parent port is a string", signed("goodbye", `{"alternative_parents":[{"http_port":"1"}]}`, harnessSecret), wire.ErrMalformed},
		{"capabilities is a string", signed("hello", `{"capabilities":"x"}`, harnessSecret), wire.ErrMalformed},
		{"depth is a float", signed("welcome", `{"your_position":{"depth":1.5}}`, harnessSecret), wire.ErrMalformed},
		// The signature is checked before the payload's content, as Decode
		// and then Message did.
		{"bad payload and bad signature", []byte(`{"type":"put","payload":{"ttl":"x"},"signature":"` + strings.Repeat("0", 64) + `"}`), wire.ErrBadSignature},
		{"bad payload, unsigned", []byte(`{"type":"put","payload":{"ttl":"x"}}`), wire.ErrUnsigned},
		{"bad payload, unknown type", []byte(`{"type":"putt","payload":{"ttl":"x"}}`), wire.ErrUnknownType},
		{"syntax error after an unknown type", []byte(`{"type":"putt","payload":{}`), wire.ErrMalformed},
		{"nesting at the limit", []byte(`{"type":"ping","payload":{"x":` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998) + `}}`), wire.ErrUnsigned},
		{"nesting over the limit", []byte(`{"type":"ping","payload":{"x":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}}`), wire.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := wire.DecodeFrame(tt.frame, harnessSecret)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DecodeFrame = %v, want %v", err, tt.want)
			}
			if !reflect.DeepEqual(f, wire.Frame{}) {
				t.Errorf("DecodeFrame returned %+v with its error", f)
			}
			if _, werr := oracleFrame(tt.frame, harnessSecret); !errors.Is(werr, tt.want) {
				t.Errorf("encoding/json's verdict is %v: the test is wrong", werr)
			}
		})
	}
}

// TestDecodeFramePrefixes cuts every golden frame at every byte: no strict
// prefix of a JSON object is JSON, so each must be refused as malformed, by
// DecodeFrame, Decode and encoding/json alike, and nothing may panic.
func TestDecodeFramePrefixes(t *testing.T) {
	d := wire.NewDecoder(harnessSecret)
	var f wire.Frame
	for _, v := range loadVectors(t) {
		for n := range len(v.frame) {
			prefix := v.frame[:n]
			if err := d.Decode(prefix, &f); !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("%s cut at %d (%q): Decoder.Decode = %v, want ErrMalformed", v, n, prefix, err)
			}
			if _, err := wire.Decode(prefix, harnessSecret); !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("%s cut at %d (%q): Decode = %v, want ErrMalformed", v, n, prefix, err)
			}
			if _, err := oracleFrame(prefix, harnessSecret); !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("%s cut at %d: encoding/json's verdict is %v", v, n, err)
			}
		}
	}
}

// TestDecodeFrameSyntax checks the scanner refuses what JSON refuses, in the
// envelope, in the payload's known fields and in fields it skips, and
// accepts the odd corners JSON allows; encoding/json must agree with every
// row.
func TestDecodeFrameSyntax(t *testing.T) {
	tests := []struct {
		name  string
		value string // put in a known field, then in an unknown one
		ok    bool
	}{
		{"leading zero", `01`, false},
		{"bare minus", `-`, false},
		{"fraction without digits", `1.`, false},
		{"exponent without digits", `1e`, false},
		{"exponent sign only", `1e+`, false},
		{"leading dot", `.5`, false},
		{"plus sign", `+1`, false},
		{"NaN", `NaN`, false},
		{"Infinity", `Infinity`, false},
		{"hex number", `0x10`, false},
		{"truncated literal", `nul`, false},
		{"misspelt literal", `tru`, false},
		{"capitalised literal", `True`, false},
		{"single quotes", `'a'`, false},
		{"raw control character", "\"a\x01b\"", false},
		{"raw tab", "\"a\tb\"", false},
		{"bad escape", `"\x41"`, false},
		{"short unicode escape", `"\u41"`, false},
		{"non-hex unicode escape", `"\u12G4"`, false},
		{"unterminated string", `"abc`, false},
		{"trailing comma in array", `[1,]`, false},
		{"trailing comma in object", `{"a":1,}`, false},
		{"missing colon", `{"a" 1}`, false},
		{"unquoted key", `{a:1}`, false},
		{"comment", `/* c */ 1`, false},
		{"NUL byte", "\x00", false},
		{"NUL byte after a value", "1\x00", false},
		{"negative zero", `-0`, true},
		{"exponent forms", `[1E5,1e-5,1.5E+5,-0.0e0]`, true},
		{"escapes", `"\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE80"`, true},
		{"DEL and non-ASCII raw", "\"\x7f\u00e9\u2028\"", true},
		{"nested empties", `[{},[],{"a":[{}]}]`, true},
	}
	for _, tt := range tests {
		for _, place := range []struct{ name, frame string }{
			{"in from", `{"type":"put","payload":{"type":"PUT","from":` + tt.value + `}}`},
			{"in ttl", `{"type":"put","payload":{"type":"PUT","ttl":` + tt.value + `}}`},
			{"in an unknown field", `{"type":"put","payload":{"type":"PUT","extra":` + tt.value + `}}`},
			{"in the envelope", `{"type":"put","payload":{},"extra":` + tt.value + `}`},
		} {
			t.Run(tt.name+" "+place.name, func(t *testing.T) {
				frame := []byte(place.frame)
				_, err := wire.DecodeFrame(frame, nil)
				_, werr := oracleFrame(frame, nil)
				if !tt.ok {
					if !errors.Is(err, wire.ErrMalformed) || !errors.Is(werr, wire.ErrMalformed) {
						t.Fatalf("DecodeFrame = %v, encoding/json %v; want both ErrMalformed", err, werr)
					}
					return
				}
				// Valid JSON: a type error in a typed field, fine elsewhere;
				// either way the same verdict as encoding/json.
				if (err == nil) != (werr == nil) {
					t.Fatalf("DecodeFrame = %v, encoding/json %v", err, werr)
				}
				if strings.Contains(place.name, "unknown") || strings.Contains(place.name, "envelope") {
					if err != nil {
						t.Fatalf("DecodeFrame = %v, want the skipped value accepted", err)
					}
				}
			})
		}
	}
}

// TestDecodeFrameValues decodes payloads whose values sit at the edges of
// what encoding/json does, and checks they come out as encoding/json makes
// them: strings with bad UTF-8 and surrogates (U+FFFD as encoding/json
// puts it), integers at their limits, data as base64 or an array, empty
// and null arrays, nulls that leave fields as they are.
func TestDecodeFrameValues(t *testing.T) {
	payloads := []struct{ typ, payload string }{
		{"put", `{"key":"\ud800\udc00|\udbff\udfff|\ud800|\udc00|\udc00\udc00|\ud800\ud800\udc00|\ud800\u0041|\ud800x"}`},
		{"put", "{\"key\":\"\xff|\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\xe2\x82|\xef\xbf\xbd|\u2028\x7f\"}"},
		{"put", `{"key":"\u0000\u001f\"\\\/\b\f\n\r\t\u00e9\u20AC"}`},
		{"put", `{"timestamp":-9223372036854775808,"ttl":9223372036854775807}`},
		{"put", `{"timestamp":-0,"ttl":0}`},
		{"put", `{"data":"aGVsbG8="}`},
		{"put", `{"data":"aGVs\nbG8="}`},
		{"put", `{"data":"aGVs\r\n\r\nbG8="}`},
		{"put", `{"data":"aGl="}`},
		{"put", `{"data":""}`},
		{"put", `{"data":[]}`},
		{"put", `{"data":[0,255,null,7]}`},
		{"put", `{"data":null,"from":null,"ttl":null,"node_info":null}`},
		{"topology_sync", `{"node_info":{}}`},
		{"welcome", `{"topology":[],"your_position":{}}`},
		{"welcome", `{"topology":null,"your_position":null}`},
		{"welcome", `{"topology":[null,{},{"node_info":{"id":"a"}}]}`},
		{"goodbye", `{"alternative_parents":[]}`},
		{"goodbye", `{"alternative_parents":[null,{"id":"p"}]}`},
		{"hello", `{"capabilities":{},"http_port":-1}`},
	}
	for _, p := range payloads {
		frame := signed(p.typ, p.payload, harnessSecret)
		want, err := oracleFrame(frame, harnessSecret)
		if err != nil {
			t.Fatalf("%s: encoding/json: %v", p.payload, err)
		}
		got, err := wire.DecodeFrame(frame, harnessSecret)
		if err != nil {
			t.Errorf("%s: DecodeFrame: %v", p.payload, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: DecodeFrame decoded\n%#v\nencoding/json\n%#v", p.payload, got, want)
		}
	}
}

// TestEnvelopePayloadTrailingBytes checks the Envelope methods, which decode
// a payload on its own, refuse bytes after it as json.Unmarshal did.
func TestEnvelopePayloadTrailingBytes(t *testing.T) {
	for _, p := range []string{"{\"type\":\"PUT\"}\x00", `{"type":"PUT"} {}`, `{"type":"PUT"`, ``} {
		env := wire.Envelope{Type: wire.TypePut, Payload: []byte(p)}
		if _, err := env.Message(); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("Message of payload %q = %v, want ErrMalformed", p, err)
		}
	}
}
