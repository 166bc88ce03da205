package wire_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"runtime"
	"testing"
	"time"

	"github.com/repram/handover/transport/wire"
)

// benchPut is a signed put of 1 KiB of data, a typical gossip frame.
func benchPut(b testing.TB) (wire.Message, []byte) {
	b.Helper()
	data := make([]byte, 1024)
	for i := range data {
		data[i] = byte(i)
	}
	m := wire.Message{Type: "PUT", From: "sub-b", Timestamp: 1795600001, MessageID: "1795600001123456789-42",
		Key: "k-onB-1795512539561", Data: data, TTL: 300}
	frame, err := wire.Encode(wire.TypePut, m, harnessSecret)
	if err != nil {
		b.Fatal(err)
	}
	return m, frame
}

// BenchmarkDecode decodes a signed put, verifying it or not, then decodes the
// gossip message as the event loop does.
func BenchmarkDecode(b *testing.B) {
	_, frame := benchPut(b)
	for _, bc := range []struct {
		name   string
		secret []byte
	}{{"secret", harnessSecret}, {"no-secret", nil}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				env, err := wire.Decode(frame, bc.secret)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := env.Message(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncode encodes and signs the same put.
func BenchmarkEncode(b *testing.B) {
	m, frame := benchPut(b)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.Encode(wire.TypePut, m, harnessSecret); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeFrame decodes and verifies the signed put, and reports
// the decode's cost as a ratio, x-hmac, to a bare HMAC-SHA256 of the same
// payload bytes (a reused keyed MAC: the floor of any verifying decoder).
// Batches of decodes alternate with batches of HMACs, each timed on the
// thread's CPU clock, so both see the same machine and the ratio survives a
// busy one; decode-cpu-ns and hmac-cpu-ns are those per-operation CPU times
// (ns/op is wall time, decodes and HMACs together). decoder is the receive
// path (a reused Decoder and Frame), DecodeFrame the one-shot call,
// Decode+Message the envelope API, Verify the HMAC check alone as Decode
// does it, and encoding-json the decoder this package used to have.
func BenchmarkDecodeFrame(b *testing.B) {
	_, frame := benchPut(b)
	env, err := wire.Decode(frame, harnessSecret)
	if err != nil {
		b.Fatal(err)
	}
	payload := env.Payload
	d := wire.NewDecoder(harnessSecret)
	var f wire.Frame
	for _, bc := range []struct {
		name   string
		decode func() error
	}{
		{"decoder", func() error { return d.Decode(frame, &f) }},
		{"DecodeFrame", func() error { _, err := wire.DecodeFrame(frame, harnessSecret); return err }},
		{"Decode+Message", func() error {
			env, err := wire.Decode(frame, harnessSecret)
			if err == nil {
				_, err = env.Message()
			}
			return err
		}},
		{"Verify", func() error {
			// Verify alone: a fresh HMAC and a hex decode, no JSON.
			if !wire.Verify(harnessSecret, payload, env.Signature) {
				b.Fatal("bad signature")
			}
			return nil
		}},
		{"encoding-json", func() error { _, err := oracleFrame(frame, harnessSecret); return err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const batch = 64
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			mac := hmac.New(sha256.New, harnessSecret)
			sum := make([]byte, 0, sha256.Size)
			var decodeT, macT time.Duration
			batches := 0
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			n := 0
			c0 := threadCPU()
			for b.Loop() {
				if err := bc.decode(); err != nil {
					b.Fatal(err)
				}
				if n++; n%batch == 0 {
					c1 := threadCPU()
					for range batch {
						mac.Reset()
						mac.Write(payload)
						sum = mac.Sum(sum[:0])
					}
					decodeT += c1 - c0
					c0 = threadCPU()
					macT += c0 - c1
					batches++
				}
			}
			if batches > 0 {
				ops := float64(batches * batch)
				b.ReportMetric(float64(decodeT.Nanoseconds())/ops, "decode-cpu-ns")
				b.ReportMetric(float64(macT.Nanoseconds())/ops, "hmac-cpu-ns")
				b.ReportMetric(float64(decodeT)/float64(macT), "x-hmac")
			}
		})
	}
}
