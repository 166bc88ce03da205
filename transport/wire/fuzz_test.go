package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/repram/handover/transport/wire"
)

// corpusDir holds extra FuzzDecode seeds in Go's corpus file format, kept at
// the repository root with the other test data. To keep an input the fuzzer
// found, move it from transport/wire/testdata/fuzz/FuzzDecode/ to here.
var corpusDir = filepath.Join("..", "..", "testdata", "fuzz", "FuzzDecode")

// frameCorpusDir holds FuzzDecodeFrame's own seeds, in the same format;
// FuzzDecodeFrame also runs FuzzDecode's.
var frameCorpusDir = filepath.Join("..", "..", "testdata", "fuzz", "FuzzDecodeFrame")

// FuzzDecode checks Decode never panics, that anything it accepts under a
// secret verifies, that each error wraps exactly one sentinel, and that a
// decoded payload re-encodes to a frame that decodes to the same payload.
func FuzzDecode(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(v.frame, v.secret)
		f.Add(v.frame, []byte(nil))
	}
	for _, seed := range loadCorpus(f, corpusDir) {
		if len(seed) != 2 {
			f.Fatalf("%s: a FuzzDecode seed has 2 values ([]byte frame, []byte secret), got %d", corpusDir, len(seed))
		}
		f.Add(seed[0], seed[1])
	}
	sentinels := []error{wire.ErrMalformed, wire.ErrUnknownType, wire.ErrUnsigned, wire.ErrBadSignature, wire.ErrTooLarge}
	f.Fuzz(func(t *testing.T, frame, secret []byte) {
		env, err := wire.Decode(frame, secret)
		if err != nil {
			n := 0
			for _, s := range sentinels {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("Decode error %v wraps %d sentinels, want 1", err, n)
			}
			return
		}
		if !env.Type.IsGossip() && env.Type != wire.TypeHello && env.Type != wire.TypeWelcome && env.Type != wire.TypeGoodbye {
			t.Fatalf("Decode accepted unknown type %q", env.Type)
		}
		if len(env.Payload) == 0 || env.Payload[0] != '{' {
			t.Fatalf("Decode accepted payload %q, not an object", env.Payload)
		}
		if len(secret) > 0 {
			if !wire.Verify(secret, env.Payload, env.Signature) {
				t.Fatalf("Decode accepted a frame whose signature does not verify")
			}
			if !asciiEqualFold(env.Signature, wire.Sign(secret, env.Payload)) {
				t.Fatalf("Decode accepted signature %q, the HMAC is %s", env.Signature, wire.Sign(secret, env.Payload))
			}
		}
		p, err := typed(env)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("payload decode error %v is not ErrMalformed", err)
			}
			return
		}
		want, err := wire.Marshal(p)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", p, err)
		}
		frame2, err := wire.Encode(env.Type, p, secret)
		if err != nil {
			t.Fatalf("Encode(%+v): %v", p, err)
		}
		env2, err := wire.Decode(frame2, secret)
		if err != nil {
			t.Fatalf("Decode(Encode(...)) = %v for frame %s", err, frame2)
		}
		if !bytes.Equal(env2.Payload, want) {
			t.Fatalf("re-encoded payload %s, want %s", env2.Payload, want)
		}
		p2, err := typed(env2)
		if err != nil {
			t.Fatalf("re-decoding our own payload %s: %v", env2.Payload, err)
		}
		if got, _ := wire.Marshal(p2); !bytes.Equal(got, want) {
			t.Fatalf("payload is not stable across a round trip:\n got %s\nwant %s", got, want)
		}
	})
}

// FuzzVerify checks Verify accepts exactly the HMAC of the payload, in
// either hex case, and nothing else.
func FuzzVerify(f *testing.F) {
	for _, v := range loadVectors(f) {
		env, err := wire.Decode(v.frame, nil)
		if err != nil {
			continue
		}
		f.Add([]byte(env.Payload), env.Signature, v.secret)
		f.Add([]byte(env.Payload), strings.ToUpper(env.Signature), v.secret)
	}
	f.Add([]byte(`{}`), "", []byte(nil))
	f.Add([]byte(`{}`), "K", []byte("k")) // U+212A folds to k in Unicode, never in hex
	f.Fuzz(func(t *testing.T, payload []byte, sig string, secret []byte) {
		want := wire.Sign(secret, payload)
		if got := wire.Verify(secret, payload, sig); got != asciiEqualFold(sig, want) {
			t.Fatalf("Verify(%q) = %v; the HMAC is %s", sig, got, want)
		}
		if !wire.Verify(secret, payload, want) {
			t.Fatalf("Verify rejects Sign's own signature %s", want)
		}
	})
}

// asciiEqualFold reports whether a and b are equal ignoring ASCII case only.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// loadCorpus reads seed files written in Go's fuzz corpus format ("go test
// fuzz v1", then one Go literal a line) holding only []byte and string values.
func loadCorpus(tb testing.TB, dir string) [][][]byte {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		tb.Fatalf("fuzz corpus: %v", err)
	}
	var seeds [][][]byte
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		name := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(name)
		if err != nil {
			tb.Fatalf("fuzz corpus: %v", err)
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if lines[0] != "go test fuzz v1" {
			tb.Fatalf("%s: not a Go fuzz corpus file (first line %q)", name, lines[0])
		}
		var seed [][]byte
		for _, line := range lines[1:] {
			lit, ok := strings.CutPrefix(line, "[]byte(")
			if !ok {
				lit, ok = strings.CutPrefix(line, "string(")
			}
			lit, ok2 := strings.CutSuffix(lit, ")")
			s, err := strconv.Unquote(lit)
			if !ok || !ok2 || err != nil {
				tb.Fatalf("%s: unsupported corpus line %q: want []byte(\"...\") or string(\"...\")", name, line)
			}
			seed = append(seed, []byte(s))
		}
		seeds = append(seeds, seed)
	}
	return seeds
}

// reused holds one Decoder per secret across fuzz inputs, so state left
// over from one frame that changed the next would show up as a difference.
var reused = map[string]*wire.Decoder{}

// FuzzDecodeFrame checks the one-pass decoder against the encoding/json
// decoder it replaced (oracle_test.go): the same verdict (sentinel) and, on
// success, the same type, raw payload and typed payload, deep-equal (nil
// and empty slices told apart). The one allowed difference is a frame whose
// keys repeat or fold case (see wire.Frame): the decoder may call it
// malformed; keyIssue, written on encoding/json's tokenizer, must agree that
// the frame has such a key. Decode, now a wrapper, is checked the same way,
// and a reused Decoder must give what a fresh one gives.
func FuzzDecodeFrame(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(v.frame, v.secret)
		f.Add(v.frame, []byte(nil))
	}
	for _, dir := range []string{corpusDir, frameCorpusDir} {
		for _, seed := range loadCorpus(f, dir) {
			if len(seed) != 2 {
				f.Fatalf("%s: a seed has 2 values ([]byte frame, []byte secret), got %d", dir, len(seed))
			}
			f.Add(seed[0], seed[1])
		}
	}
	f.Fuzz(func(t *testing.T, frame, secret []byte) {
		got, err := wire.DecodeFrame(frame, secret)
		want, werr := oracleFrame(frame, secret)
		checkVerdict(t, "DecodeFrame", frame, err, werr, true)
		if err == nil && werr == nil {
			if got.Type != want.Type || !bytes.Equal(got.Payload, want.Payload) {
				t.Fatalf("DecodeFrame = %s %s, encoding/json read %s %s", got.Type, got.Payload, want.Type, want.Payload)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("DecodeFrame decoded\n%#v\nencoding/json decoded\n%#v", got, want)
			}
		}
		if err != nil && !reflect.DeepEqual(got, wire.Frame{}) {
			t.Fatalf("DecodeFrame returned %+v with its error", got)
		}

		d := reused[string(secret)]
		if d == nil {
			if len(reused) >= 64 {
				clear(reused) // the fuzzer tries many secrets: bound the memory
			}
			d = wire.NewDecoder(secret)
			reused[string(secret)] = d
		}
		var again wire.Frame
		err2 := d.Decode(frame, &again)
		if (err2 == nil) != (err == nil) || (err == nil && !reflect.DeepEqual(again, got)) {
			t.Fatalf("a reused Decoder gave %+v, %v; a new one %+v, %v", again, err2, got, err)
		}

		env, err := wire.Decode(frame, secret)
		wenv, werr := oracleDecode(frame, secret)
		checkVerdict(t, "Decode", frame, err, werr, false)
		if err == nil && werr == nil && !reflect.DeepEqual(env, wenv) {
			t.Fatalf("Decode = %#v, encoding/json read %#v", env, wenv)
		}
	})
}

// checkVerdict fails t unless err, the decoder's verdict on frame, is the
// oracle's werr (the same sentinel), or the documented difference on keys.
func checkVerdict(t *testing.T, name string, frame []byte, err, werr error, payload bool) {
	t.Helper()
	sentinels := []error{wire.ErrMalformed, wire.ErrUnknownType, wire.ErrUnsigned, wire.ErrBadSignature, wire.ErrTooLarge}
	kind := func(err error) error {
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return s
			}
		}
		return err
	}
	if kind(err) == kind(werr) {
		return
	}
	if errors.Is(err, wire.ErrMalformed) {
		typ := wire.Type("")
		if env, err := oracleDecode(frame, nil); err == nil {
			typ = env.Type
		}
		if json.Valid(frame) && keyIssue(frame, typ, payload && typ != "") {
			return
		}
	}
	t.Fatalf("%s(%q) = %v; encoding/json's verdict is %v", name, frame, err, werr)
}
