package transport_test

import (
	"context"
	"fmt"
	"time"

	"github.com/repram/handover/transport"
	"github.com/repram/handover/transport/substratetest"
	"github.com/repram/handover/transport/wire"
)

// A node runtime embeds the driver: attach to a substrate, feed one
// observation per evaluation cycle, handle deduplicated gossip, close.
func Example() {
	secret := []byte("cluster-secret")
	mesh := substratetest.NewMesh(substratetest.MeshConfig{Secret: secret})
	defer mesh.Close()
	far, _ := mesh.Start(substratetest.Config{ID: "far"})
	near, _ := mesh.Start(substratetest.Config{ID: "near"})

	got := make(chan transport.Gossip, 16)
	node, err := transport.New(transport.Config{
		Identity: transport.Identity{NodeID: "t1", Enclave: substratetest.DefaultEnclave, Address: "127.0.0.1"},
		Secret:   secret,
		Handler:  func(g transport.Gossip) { got <- g },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	defer node.Close(ctx)
	transitions := node.Subscribe(64)

	farSub := transport.Substrate{ID: far.ID(), URL: far.URL(), Enclave: far.Enclave()}
	nearSub := transport.Substrate{ID: near.ID(), URL: near.URL(), Enclave: near.Enclave()}
	_ = node.Attach(ctx, farSub)
	waitFor(transitions, "attached")

	// One evaluation cycle each: "near" measures 5ms against 80ms.
	obs := transport.Observation{
		CurrentLatency: 80 * time.Millisecond,
		Candidates:     []transport.Candidate{{Substrate: nearSub, Latency: 5 * time.Millisecond}},
	}
	// The first cycles are the policy's cooldown after the join; then the
	// candidate must qualify twice in a row.
	for range 10 {
		if d, _ := node.Observe(ctx, obs); d.Event == "candidate_better" {
			break
		}
	}
	waitFor(transitions, "cooldown")
	fmt.Println("primary:", node.Status().Primary.ID)

	_, _ = mesh.Publish(wire.Message{Type: "PUT", From: "elsewhere", Key: "k", Data: []byte("hello")})
	g := <-got
	fmt.Printf("%s %s=%s via %s\n", g.Message.Type, g.Message.Key, g.Message.Data, g.Via)
	// Output:
	// primary: near
	// PUT k=hello via near
}

func waitFor(ch <-chan transport.Transition, state string) {
	for tr := range ch {
		if string(tr.Step.To) == state {
			return
		}
	}
}
