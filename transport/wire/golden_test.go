package wire_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/repram/handover/transport/wire"
)

// goldenDir holds the golden frames, shared with other packages' tests.
var goldenDir = filepath.Join("..", "..", "testdata", "wire")

// harnessSecret is the cluster secret of every golden frame.
var harnessSecret = []byte("harness-test-secret")

// vector is one golden frame and what Decode must make of it.
type vector struct {
	file   string
	name   string
	secret []byte
	frame  []byte
	want   error // nil for a valid frame
}

func (v vector) String() string { return v.file + ":" + v.name }

// errKinds maps handover-golden.jsonl's err field to the sentinels.
var errKinds = map[string]error{
	"":              nil,
	"malformed":     wire.ErrMalformed,
	"unknown_type":  wire.ErrUnknownType,
	"unsigned":      wire.ErrUnsigned,
	"bad_signature": wire.ErrBadSignature,
}

// repramInvalid names the error each invalid captured frame must produce.
var repramInvalid = map[string]error{
	"put_bad_signature": wire.ErrBadSignature,
	"put_unsigned":      wire.ErrUnsigned,
	"null_frame":        wire.ErrMalformed,
}

// loadVectors reads both golden files. It fails the test on any line it does
// not understand, so a new vector cannot be skipped silently.
func loadVectors(tb testing.TB) []vector {
	tb.Helper()
	var out []vector
	readJSONL(tb, "repram-ts-2.1.jsonl", func(line []byte) {
		var r struct {
			Name  string `json:"name"`
			Frame string `json:"frame"`
			Valid *bool  `json:"valid"`
		}
		mustUnmarshalStrict(tb, line, &r)
		if r.Valid == nil {
			tb.Fatalf("repram-ts-2.1.jsonl: %s has no valid field", r.Name)
		}
		v := vector{file: "repram", name: r.Name, secret: harnessSecret, frame: []byte(r.Frame)}
		if !*r.Valid {
			want, ok := repramInvalid[r.Name]
			if !ok {
				tb.Fatalf("repram-ts-2.1.jsonl: invalid frame %s has no expected error: add it to repramInvalid", r.Name)
			}
			v.want = want
		}
		out = append(out, v)
	})
	readJSONL(tb, "handover-golden.jsonl", func(line []byte) {
		var r struct {
			Name   string `json:"name"`
			Secret string `json:"secret"`
			Frame  string `json:"frame"`
			Err    string `json:"err"`
		}
		mustUnmarshalStrict(tb, line, &r)
		want, ok := errKinds[r.Err]
		if !ok {
			tb.Fatalf("handover-golden.jsonl: %s: unknown err kind %q", r.Name, r.Err)
		}
		out = append(out, vector{file: "handover", name: r.Name, secret: []byte(r.Secret), frame: []byte(r.Frame), want: want})
	})
	return out
}

func readJSONL(tb testing.TB, name string, each func(line []byte)) {
	tb.Helper()
	f, err := os.Open(filepath.Join(goldenDir, name))
	if err != nil {
		tb.Fatalf("golden frames: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		each(sc.Bytes())
		n++
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	if n == 0 {
		tb.Fatalf("%s: no frames", name)
	}
}

func mustUnmarshalStrict(tb testing.TB, line []byte, v any) {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		tb.Fatalf("golden line %s: %v", line, err)
	}
}

// typed decodes env's payload into the struct its type calls for.
func typed(env wire.Envelope) (any, error) {
	switch env.Type {
	case wire.TypeHello:
		return env.Hello()
	case wire.TypeWelcome:
		return env.Welcome()
	case wire.TypeGoodbye:
		return env.Goodbye()
	default:
		return env.Message()
	}
}

// TestGoldenDecode decodes and verifies every golden frame, and checks that
// invalid ones fail with the right sentinel.
func TestGoldenDecode(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.String(), func(t *testing.T) {
			env, err := wire.Decode(v.frame, v.secret)
			if v.want != nil {
				if !errors.Is(err, v.want) {
					t.Fatalf("Decode = %v, want %v", err, v.want)
				}
				if env.Type != "" || env.Payload != nil {
					t.Errorf("Decode returned %+v with its error, want a zero Envelope", env)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if len(v.secret) > 0 && !wire.Verify(v.secret, env.Payload, env.Signature) {
				t.Errorf("Verify(payload, %s) = false after Decode accepted it", env.Signature)
			}
			if _, err := typed(env); err != nil {
				t.Fatalf("payload: %v", err)
			}
			// Without a secret any well-formed frame is accepted; under another
			// secret a signed frame is refused and an unsigned one is unsigned.
			if _, err := wire.Decode(v.frame, nil); err != nil {
				t.Errorf("Decode without a secret: %v", err)
			}
			wantOther := wire.ErrBadSignature
			if env.Signature == "" {
				wantOther = wire.ErrUnsigned
			}
			if _, err := wire.Decode(v.frame, []byte("some-other-secret")); !errors.Is(err, wantOther) {
				t.Errorf("Decode under another secret = %v, want %v", err, wantOther)
			}
		})
	}
}

// TestGoldenRoundTrip re-encodes every valid golden frame from its typed
// payload and checks the payload and the whole frame are reproduced byte for
// byte: what we send is what a REPRAM TS node sends.
func TestGoldenRoundTrip(t *testing.T) {
	for _, v := range loadVectors(t) {
		if v.want != nil {
			continue
		}
		t.Run(v.String(), func(t *testing.T) {
			env, err := wire.Decode(v.frame, v.secret)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			p, err := typed(env)
			if err != nil {
				t.Fatalf("payload: %v", err)
			}
			got, err := wire.Marshal(p)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if !bytes.Equal(got, env.Payload) {
				t.Errorf("Marshal(payload) differs from the captured payload\n got %s\nwant %s", got, env.Payload)
			}
			frame, err := wire.Encode(env.Type, p, v.secret)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !bytes.Equal(frame, v.frame) {
				t.Errorf("Encode differs from the captured frame\n got %s\nwant %s", frame, v.frame)
			}
		})
	}
}

// TestGoldenValues pins the decoded values of some frames, so a field that
// silently decodes to its zero value is caught.
func TestGoldenValues(t *testing.T) {
	frames := map[string]wire.Envelope{}
	for _, v := range loadVectors(t) {
		if v.want == nil {
			env, err := wire.Decode(v.frame, v.secret)
			if err != nil {
				t.Fatalf("%s: %v", v, err)
			}
			frames[v.String()] = env
		}
	}
	get := func(name string) wire.Envelope {
		t.Helper()
		env, ok := frames[name]
		if !ok {
			t.Fatalf("no valid golden frame %s", name)
		}
		return env
	}
	check := func(name string, got, want any, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want); g != w {
			t.Errorf("%s:\n got %s\nwant %s", name, g, w)
		}
	}

	h, err := get("repram:hello").Hello()
	check("repram:hello", h, wire.Hello{NodeID: "t1", Enclave: "default", Address: "127.0.0.1", Capabilities: wire.Capabilities{Inbound: "false"}}, err)

	w, err := get("repram:welcome").Welcome()
	check("repram:welcome", w.YourPosition, wire.Position{Depth: 1, ParentID: "sub-a-s"}, err)
	if len(w.Topology) != 2 || w.Topology[0].Type != "SYNC" || w.Topology[0].MessageID != "" ||
		*w.Topology[0].NodeInfo != (wire.NodeInfo{ID: "sub-b-s", Address: "127.0.0.1", Port: 19482, HTTPPort: 18482, Enclave: "default"}) {
		t.Errorf("repram:welcome topology = %+v", w.Topology)
	}

	m, err := get("repram:put_forwarded").Message()
	check("repram:put_forwarded", m, wire.Message{Type: "PUT", From: "sub-b-s", Timestamp: 1795512540,
		MessageID: "k-onB-1795512539561-1795512540627-1795512540627000000-1", Key: "k-onB-1795512539561",
		Data: []byte("hello"), TTL: 300}, err)

	m, err = get("repram:ack").Message()
	check("repram:ack", m, wire.Message{Type: "ACK", From: "sub-a-s", Timestamp: 1795512558,
		MessageID: "k10-1795512539561-1795512558670-t1probe", To: "t1", Key: "k10-1795512539561"}, err)

	g, err := get("repram:goodbye_shutdown").Goodbye()
	check("repram:goodbye_shutdown", g, wire.Goodbye{Reason: "shutdown",
		AlternativeParents: []wire.Parent{{ID: "sub-a-s", Address: "127.0.0.1", HTTPPort: 18481, Enclave: "default"}}}, err)

	g, err = get("handover:goodbye_at_capacity").Goodbye()
	check("handover:goodbye_at_capacity", g, wire.Goodbye{Reason: "at capacity", AlternativeParents: []wire.Parent{
		{ID: "sub-b", Address: "10.0.1.82", HTTPPort: 18482, Enclave: "eu-west"},
		{ID: "sub-c", Address: "sub-c.example.net", HTTPPort: 443, Enclave: "us-east"}}}, err)

	m, err = get("handover:put_data").Message()
	if err != nil || !bytes.Equal(m.Data, []byte{0x00, 0xff, 0xfe, 'h', 'i', '\n'}) {
		t.Errorf("handover:put_data data = %q, %v", m.Data, err)
	}

	m, err = get("handover:put_js_strings").Message()
	check("handover:put_js_strings", m, wire.Message{Type: "PUT", From: "nœud-日本-🚀", Timestamp: 1795600002,
		MessageID: "1795600002000000000-1",
		Key:       "<script>a&b</script>\u2028\u2029 \x00\x01\x1f\b\f\n\r\t\x7f\"\\/é",
		Data:      []byte("<>&\u2028"), TTL: 60}, err)
}

// TestGoldenDecodeFrame decodes every golden frame in one pass and checks
// the verdict, that the payload is the frame's bytes as they are, that the
// typed payload is the one the envelope API decodes, and that it encodes
// back to the same bytes.
func TestGoldenDecodeFrame(t *testing.T) {
	d := map[bool]*wire.Decoder{}
	for _, v := range loadVectors(t) {
		t.Run(v.String(), func(t *testing.T) {
			f, err := wire.DecodeFrame(v.frame, v.secret)
			if v.want != nil {
				if !errors.Is(err, v.want) {
					t.Fatalf("DecodeFrame = %v, want %v", err, v.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeFrame: %v", err)
			}
			env, err := wire.Decode(v.frame, v.secret)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if f.Type != env.Type || !bytes.Equal(f.Payload, env.Payload) || !bytes.Contains(v.frame, f.Payload) {
				t.Fatalf("DecodeFrame = %s %s, Decode %s %s", f.Type, f.Payload, env.Type, env.Payload)
			}
			want, err := typed(env)
			if err != nil {
				t.Fatalf("payload: %v", err)
			}
			var got any
			switch {
			case f.Type.IsGossip():
				got = f.Message
			case f.Type == wire.TypeHello:
				got = f.Hello
			case f.Type == wire.TypeWelcome:
				got = f.Welcome
			default:
				got = f.Goodbye
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("DecodeFrame payload\n%#v\nDecode then %s()\n%#v", got, f.Type, want)
			}
			if p, err := wire.Marshal(got); err != nil || !bytes.Equal(p, f.Payload) {
				t.Errorf("Marshal(payload) = %s, %v; the frame has %s", p, err, f.Payload)
			}
			signed := len(v.secret) > 0
			if d[signed] == nil {
				d[signed] = wire.NewDecoder(v.secret)
			}
			var again wire.Frame
			if err := d[signed].Decode(v.frame, &again); err != nil || !reflect.DeepEqual(again, f) {
				t.Errorf("a reused Decoder gave %+v, %v", again, err)
			}
		})
	}
}
