//go:build !race

package wire_test

import (
	"testing"

	"github.com/repram/handover/transport/wire"
)

// TestDecoderAllocs pins what a receive loop pays per signed put on the
// heap: the message's from, message_id and key strings and its data, and
// nothing else (the type is interned, the HMAC and scratch are reused).
// The race detector changes allocation counts, hence the build tag.
func TestDecoderAllocs(t *testing.T) {
	_, frame := benchPut(t)
	d := wire.NewDecoder(harnessSecret)
	var f wire.Frame
	allocs := testing.AllocsPerRun(100, func() {
		if err := d.Decode(frame, &f); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 4 {
		t.Errorf("Decoder.Decode of a signed put: %v allocations, want 4 (from, message_id, key, data)", allocs)
	}
}
