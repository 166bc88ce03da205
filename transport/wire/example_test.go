package wire_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/repram/handover/transport/wire"
)

// A receive loop keeps one Decoder and one Frame and decodes every frame of
// a link into them; what it keeps of a frame it copies out (the Message
// owns its strings and data; Frame.Payload aliases the frame).
func ExampleDecoder() {
	secret := []byte("cluster-secret")
	put := wire.Message{Type: "PUT", From: "sub-a", Timestamp: 1795600001, MessageID: "1795600001000000000-1",
		Key: "k", Data: []byte("v"), TTL: 60}
	frame, err := wire.Encode(wire.TypePut, put, secret)
	if err != nil {
		panic(err)
	}
	tampered := bytes.Replace(frame, []byte(`"ttl":60`), []byte(`"ttl":61`), 1)

	d := wire.NewDecoder(secret)
	var f wire.Frame
	for _, fr := range [][]byte{frame, tampered} {
		if err := d.Decode(fr, &f); err != nil {
			fmt.Println("dropped:", errors.Is(err, wire.ErrBadSignature))
			continue
		}
		fmt.Println(f.Type, f.Message.MessageID, string(f.Message.Data), f.Message.TTL)
	}
	// Output:
	// put 1795600001000000000-1 v 60
	// dropped: true
}
