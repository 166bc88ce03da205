//go:build !race

package wire_test

import (
	"testing"

	"github.com/repram/handover/transport/wire"
)

// TestDecoderAllocs pins what a receive loop pays per signed put on the
// heap: the message's message_id and key strings and its data, and nothing
// else (the type is interned, the sender is the previous message's, the
// HMAC and scratch are reused).
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
	if allocs != 3 {
		t.Errorf("Decoder.Decode of a signed put: %v allocations, want 3 (message_id, key, data)", allocs)
	}
}
