package transport_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/repram/handover/transport"
	"github.com/repram/handover/transport/engine"
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
		// Gossip crosses this loopback mesh within milliseconds, so the
		// overlap's margin (OverlapFloor to OverlapGrace) can be short; the
		// defaults (50ms to 1s) suit real networks.
		Tuning: engine.Tuning{OverlapFloor: 10 * time.Millisecond, OverlapGrace: 10 * time.Millisecond},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	defer node.Close(ctx)
	transitions := node.Subscribe(64)

	_ = node.Attach(ctx, ref(far))
	waitFor(transitions, "attached")

	// One evaluation cycle each: "near" measures 5ms against 80ms.
	obs := transport.Observation{
		CurrentLatency: 80 * time.Millisecond,
		Candidates:     []transport.Candidate{{Substrate: ref(near), Latency: 5 * time.Millisecond}},
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

// The common case needs only an identity, the cluster secret and a handler.
// Attach returns once the attempt has started; the node reports the outcome
// as transitions (or in Status).
func ExampleNode_Attach() {
	secret := []byte("cluster-secret")
	mesh := substratetest.NewMesh(substratetest.MeshConfig{Secret: secret})
	defer mesh.Close()
	sub, _ := mesh.Start(substratetest.Config{ID: "sub-a"})

	got := make(chan transport.Gossip, 1)
	node, err := transport.New(transport.Config{
		Identity: transport.Identity{NodeID: "t1", Enclave: substratetest.DefaultEnclave},
		Secret:   secret,
		Handler:  func(g transport.Gossip) { got <- g }, // deduplicated, one at a time, in order
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	defer node.Close(ctx)
	transitions := node.Subscribe(16)

	if err := node.Attach(ctx, transport.Substrate{ID: "sub-a", URL: sub.URL(), Enclave: sub.Enclave()}); err != nil {
		fmt.Println(err)
		return
	}
	waitFor(transitions, "attached")
	st := node.Status()
	fmt.Println(st.State, "to", st.Primary.ID)

	_, _ = mesh.Publish(wire.Message{Type: "PUT", From: "writer", Key: "greeting", Data: []byte("hi")})
	g := <-got
	fmt.Printf("got %s from %s via %s\n", g.Message.Key, g.Message.From, g.Via)
	// A second Attach is refused: once attached, the node moves by itself.
	fmt.Println(node.Attach(ctx, transport.Substrate{ID: "sub-a", URL: sub.URL()}) != nil)
	// Output:
	// attached to sub-a
	// got greeting from writer via sub-a
	// true
}

// Each evaluation cycle the runtime reports what it measured; the policy
// answers with its decision. A candidate must be clearly better (25 % lower
// latency here) in two cycles in a row, after the cooldown that follows the
// join, before the node migrates.
func ExampleNode_Observe() {
	mesh := substratetest.NewMesh(substratetest.MeshConfig{})
	defer mesh.Close()
	far, _ := mesh.Start(substratetest.Config{ID: "far"})
	near, _ := mesh.Start(substratetest.Config{ID: "near"})
	node, _ := transport.New(transport.Config{
		Identity: transport.Identity{NodeID: "t1", Enclave: substratetest.DefaultEnclave},
		// Gossip crosses this loopback mesh within milliseconds, so the
		// overlap's margin (OverlapFloor to OverlapGrace) can be short; the
		// defaults (50ms to 1s) suit real networks.
		Tuning: engine.Tuning{OverlapFloor: 10 * time.Millisecond, OverlapGrace: 10 * time.Millisecond},
	})
	ctx := context.Background()
	defer node.Close(ctx)
	transitions := node.Subscribe(64)
	_ = node.Attach(ctx, ref(far))
	waitFor(transitions, "attached")

	obs := transport.Observation{
		CurrentLatency: 80 * time.Millisecond,
		Candidates:     []transport.Candidate{{Substrate: ref(near), Latency: 70 * time.Millisecond}},
	}
	for cycle := 1; cycle <= 6; cycle++ {
		if cycle == 4 {
			obs.Candidates[0].Latency = 5 * time.Millisecond // near became much better
		}
		d, err := node.Observe(ctx, obs)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("cycle %d: near %v: %q\n", cycle, obs.Candidates[0].Latency, d.Event)
		if d.Event == "candidate_better" {
			break
		}
	}
	waitFor(transitions, "cooldown")
	fmt.Println("primary:", node.Status().Primary.ID)
	// Output:
	// cycle 1: near 70ms: ""
	// cycle 2: near 70ms: "cooldown_elapsed"
	// cycle 3: near 70ms: ""
	// cycle 4: near 5ms: ""
	// cycle 5: near 5ms: "candidate_better"
	// primary: near
}

// With Measure set, the node measures every candidate reported without a
// latency itself, with [transport.Probe] (WebSocket pings, no hello), on
// the caller's goroutine before the policy sees the cycle.
func ExampleObservation_measure() {
	mesh := substratetest.NewMesh(substratetest.MeshConfig{})
	defer mesh.Close()
	far, _ := mesh.Start(substratetest.Config{ID: "far"})
	near, _ := mesh.Start(substratetest.Config{ID: "near"})
	node, _ := transport.New(transport.Config{
		Identity: transport.Identity{NodeID: "t1", Enclave: substratetest.DefaultEnclave},
		// Gossip crosses this loopback mesh within milliseconds, so the
		// overlap's margin (OverlapFloor to OverlapGrace) can be short; the
		// defaults (50ms to 1s) suit real networks.
		Tuning: engine.Tuning{OverlapFloor: 10 * time.Millisecond, OverlapGrace: 10 * time.Millisecond},
	})
	ctx := context.Background()
	defer node.Close(ctx)
	transitions := node.Subscribe(64)
	_ = node.Attach(ctx, ref(far))
	waitFor(transitions, "attached")

	obs := transport.Observation{
		// The primary's latency as the runtime knows it; 0 would use the
		// round trip of the node's own heartbeats.
		CurrentLatency: 80 * time.Millisecond,
		// Latency 0: measure it. Loopback answers in well under 60ms.
		Candidates: []transport.Candidate{{Substrate: ref(near)}},
		Measure:    true,
	}
	for range 10 {
		if d, _ := node.Observe(ctx, obs); d.Event == "candidate_better" {
			break
		}
	}
	waitFor(transitions, "cooldown")
	fmt.Println("primary:", node.Status().Primary.ID)
	// Output:
	// primary: near
}

// Subscribe returns every transition from then on, with the path that
// classifies it; Close closes the channel after the close transition.
func ExampleNode_Subscribe() {
	mesh := substratetest.NewMesh(substratetest.MeshConfig{})
	defer mesh.Close()
	sub, _ := mesh.Start(substratetest.Config{ID: "sub-a"})
	node, _ := transport.New(transport.Config{Identity: transport.Identity{NodeID: "t1", Enclave: substratetest.DefaultEnclave}})
	transitions := node.Subscribe(16)

	ctx := context.Background()
	_ = node.Attach(ctx, ref(sub))
	for tr := range transitions {
		fmt.Printf("%s --%s--> %s «%s» primary=%q\n", tr.Step.From, tr.Step.Event, tr.Step.To, tr.Step.Path, tr.Primary)
		if tr.Step.To == "attached" {
			_ = node.Close(ctx)
		}
	}
	fmt.Println("channel closed")
	// Output:
	// detached --attach--> joining «join» primary=""
	// joining --handshake_ok--> attached «join» primary="sub-a"
	// attached --close--> closed «close» primary=""
	// channel closed
}

// Close closes every link with the WebSocket close handshake and waits,
// bounded by its context, for every goroutine the node started and for the
// handler to finish what was delivered. A closed node refuses commands.
func ExampleNode_Close() {
	mesh := substratetest.NewMesh(substratetest.MeshConfig{})
	defer mesh.Close()
	sub, _ := mesh.Start(substratetest.Config{ID: "sub-a"})
	node, _ := transport.New(transport.Config{Identity: transport.Identity{NodeID: "t1", Enclave: substratetest.DefaultEnclave}})
	transitions := node.Subscribe(16)
	_ = node.Attach(context.Background(), ref(sub))
	waitFor(transitions, "attached")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := node.Close(ctx); err != nil {
		fmt.Println("close:", err)
	}
	fmt.Println(node.Status().State)
	_, err := node.Observe(ctx, transport.Observation{})
	fmt.Println(errors.Is(err, transport.ErrClosed))
	fmt.Println(node.Close(ctx)) // idempotent
	// Output:
	// closed
	// true
	// <nil>
}

// A runtime that logs with log/slog passes its logger; the node's
// transitions are logged at info level, its decisions at debug.
func ExampleConfig_slogLogger() {
	mesh := substratetest.NewMesh(substratetest.MeshConfig{})
	defer mesh.Close()
	sub, _ := mesh.Start(substratetest.Config{ID: "sub-a"})

	keep := map[string]bool{slog.LevelKey: true, slog.MessageKey: true, "node": true, "from": true, "to": true, "event": true}
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if !keep[a.Key] {
				return slog.Attr{} // only the stable fields, for the example's output
			}
			return a
		},
	}))
	node, _ := transport.New(transport.Config{
		Identity:   transport.Identity{NodeID: "t1", Enclave: substratetest.DefaultEnclave},
		SlogLogger: logger,
	})
	transitions := node.Subscribe(16)
	_ = node.Attach(context.Background(), ref(sub))
	waitFor(transitions, "attached")
	_ = node.Close(context.Background())
	// Output:
	// level=INFO msg=transition node=t1 from=detached to=joining event=attach
	// level=INFO msg=transition node=t1 from=joining to=attached event=handshake_ok
	// level=INFO msg=transition node=t1 from=attached to=closed event=close
}

// ref names a test substrate for the node.
func ref(s *substratetest.Server) transport.Substrate {
	return transport.Substrate{ID: s.ID(), URL: s.URL(), Enclave: s.Enclave()}
}

// waitFor reads transitions until one enters state.
func waitFor(ch <-chan transport.Transition, state string) {
	for tr := range ch {
		if string(tr.Step.To) == state {
			return
		}
	}
}
