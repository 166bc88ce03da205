package sockscale

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport"
	"github.com/repram/handover/transport/engine"
	"github.com/repram/handover/transport/substratetest"
	"github.com/repram/handover/transport/wire"
)

// heapNow is the live heap after a collection.
func heapNow() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestNodeMemory measures what one real embedded transport.Node costs: heap
// and goroutines with one idle link, then during an overlap (two links, the
// candidate withholding gossip so the overlap lasts). The substrates run in
// this process, so each figure includes the substrate side of the node's
// links; -v prints them. It asserts only that the node's state is what the
// figure claims to measure.
func TestNodeMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	secret := []byte("mem-secret")
	mesh := substratetest.NewMesh(substratetest.MeshConfig{Secret: secret})
	defer mesh.Close()
	var subs []transport.Substrate
	var servers []*substratetest.Server
	for _, id := range []string{"a", "b"} {
		s, err := mesh.Start(substratetest.Config{ID: id})
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, s)
		subs = append(subs, transport.Substrate{ID: id, URL: s.URL()})
		if id == "b" {
			s.UpdateFaults(func(f *substratetest.Faults) { f.NoForward = true })
		}
	}
	g0, h0 := runtime.NumGoroutine(), heapNow()
	n, err := transport.New(transport.Config{Identity: transport.Identity{NodeID: "mem"}, Secret: secret,
		Tuning: engine.Tuning{OverlapMax: time.Minute}, Handler: func(transport.Gossip) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		_ = n.Close(cctx)
	}()
	if err := n.Attach(ctx, subs[0]); err != nil {
		t.Fatal(err)
	}
	waitState(ctx, t, n, fsm.Attached)
	for range 20 {
		if _, err := mesh.Publish(wire.Message{Data: make([]byte, 64)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range servers { // idle: the substrates handled every message
		for s.Pending() > 0 {
			select {
			case <-ctx.Done():
				t.Fatalf("substrate %s still has %d messages pending", s.ID(), s.Pending())
			case <-time.After(2 * time.Millisecond):
			}
		}
	}
	g1, h1 := runtime.NumGoroutine(), heapNow()
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { // a stream the candidate withholds: the overlap cannot end
		defer close(done)
		for i := 0; i < 2000; i++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			_, _ = mesh.Publish(wire.Message{Data: make([]byte, 64)})
		}
	}()
	defer func() { close(stop); <-done }()
	for range 32 {
		if _, err := n.Observe(ctx, transport.Observation{CurrentLatency: 100 * time.Millisecond,
			Candidates: []transport.Candidate{{Substrate: subs[1], Latency: time.Millisecond}}}); err != nil {
			t.Fatal(err)
		}
		if n.Status().State == fsm.Overlapping {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitState(ctx, t, n, fsm.Overlapping)
	time.Sleep(50 * time.Millisecond) // the old link's stream builds up the overlap's state
	g2, h2 := runtime.NumGoroutine(), heapNow()
	if st := n.Status().State; st != fsm.Overlapping {
		t.Fatalf("state %s after the measure: the overlap figure would be wrong", st)
	}
	t.Logf("one transport.Node, both ends in this process: idle on one link %.1f KiB heap, %d goroutines; "+
		"overlapping on two %.1f KiB, %d goroutines", float64(int64(h1)-int64(h0))/1024, g1-g0,
		float64(int64(h2)-int64(h0))/1024, g2-g0)
}

// waitState waits (bounded by ctx) until n is in state want.
func waitState(ctx context.Context, t *testing.T, n *transport.Node, want fsm.State) {
	t.Helper()
	for n.Status().State != want {
		select {
		case <-ctx.Done():
			t.Fatalf("state %s, want %s", n.Status().State, want)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
