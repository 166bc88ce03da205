package wire_test

import (
	"testing"

	"github.com/repram/handover/transport/wire"
)

// benchPut is a signed put of 1 KiB of data, a typical gossip frame.
func benchPut(b *testing.B) (wire.Message, []byte) {
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
