package substratetest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/coder/websocket"

	"github.com/repram/handover/transport/substratetest"
	"github.com/repram/handover/transport/wire"
)

// A transient node attaches to one substrate of a two-substrate mesh and
// receives a message published in the mesh; then the substrate shuts down,
// naming its peer as the alternative parent.
func Example() {
	secret := []byte("cluster-secret")
	mesh := substratetest.NewMesh(substratetest.MeshConfig{Secret: secret, GoodbyeGap: 10 * time.Millisecond})
	defer mesh.Close()
	a, _ := mesh.Start(substratetest.Config{ID: "sub-a"})
	b, _ := mesh.Start(substratetest.Config{ID: "sub-b", Delay: 5 * time.Millisecond})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, a.URL(), nil)
	if err != nil {
		panic(err)
	}
	defer ws.CloseNow()
	read := func() wire.Envelope {
		_, data, err := ws.Read(ctx)
		if err != nil {
			panic(err)
		}
		env, err := wire.Decode(data, secret)
		if err != nil {
			panic(err)
		}
		return env
	}

	hello, _ := wire.Encode(wire.TypeHello, wire.Hello{NodeID: "t1", Enclave: "default", Address: "127.0.0.1"}, secret)
	_ = ws.Write(ctx, websocket.MessageText, hello)
	w, _ := read().Welcome()
	fmt.Println("welcomed by", w.YourPosition.ParentID, "with", len(w.Topology), "substrates in the topology")

	_, _ = mesh.Publish(wire.Message{Key: "greeting", Data: []byte("hello")})
	put, _ := read().Message()
	fmt.Printf("%s %s=%s\n", put.Type, put.Key, put.Data)

	go a.Shutdown(nil, false)
	g, _ := read().Goodbye()
	fmt.Println("goodbye:", g.Reason, "-> try", g.AlternativeParents[0].ID, g.AlternativeParents[0] == b.Parent())
	_, _, err = ws.Read(ctx)
	fmt.Println("then closed with", websocket.CloseStatus(err))
	// Output:
	// welcomed by sub-a with 2 substrates in the topology
	// PUT greeting=hello
	// goodbye: shutdown -> try sub-b true
	// then closed with StatusGoingAway
}
