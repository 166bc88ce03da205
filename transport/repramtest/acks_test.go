package repramtest_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/repram/handover/transport"
	"github.com/repram/handover/transport/repramtest"
	"github.com/repram/handover/transport/wire"
)

// TestInteropAcks: a node writes through its substrate on a full mesh of
// three (replication 3). REPRAM acknowledges a write once per substrate that
// stored it, all with the write's message_id: the substrate at once, then
// each mesh peer's ACK relayed by it. The handler gets each of them once, so
// an embedder can count a quorum. Then the node keeps writing while it
// migrates to rb: the ACKs, which come only on the link the write went out
// on, must not hold the overlap until OverlapMax cancels it.
func TestInteropAcks(t *testing.T) {
	const writes, substrates = 3, 3
	c := repramtest.Start(t, substrates, repramtest.Options{Replication: substrates})
	if err := c.Announce(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitMesh(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	const id = "handover-interop-acks"
	var mu sync.Mutex
	acks := map[string]map[string]int{} // write id → sender → ACKs delivered
	n, err := transport.New(transport.Config{
		Identity: transport.Identity{NodeID: id, Enclave: c.Nodes[0].Enclave, Address: "127.0.0.1"},
		Secret:   transport.Secret("handover-interop"),
		Handler: func(g transport.Gossip) {
			if g.Type != wire.TypeAck {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if acks[g.Message.MessageID] == nil {
				acks[g.Message.MessageID] = map[string]int{}
			}
			acks[g.Message.MessageID][g.Message.From]++
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Attach(ctx, c.Node("ra").Transport()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000 && n.Status().Primary.ID != "ra"; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if p := n.Status().Primary.ID; p != "ra" {
		t.Fatalf("not attached to ra within 10s: primary %q", p)
	}
	var ids []string
	for i := range writes {
		mid := fmt.Sprintf("%d-%d", time.Now().UnixNano(), i)
		ids = append(ids, mid)
		msg := wire.Message{Type: "PUT", From: id, Timestamp: time.Now().Unix(), MessageID: mid,
			Key: fmt.Sprintf("acks-%s", mid), Data: []byte("x"), TTL: 300}
		if err := n.Send(ctx, wire.TypePut, msg); err != nil {
			t.Fatal(err)
		}
	}
	complete := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, mid := range ids {
			if len(acks[mid]) < substrates {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !complete(); {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // a late duplicate would land now
	mu.Lock()
	for _, mid := range ids {
		senders := slices.Sorted(maps.Keys(acks[mid]))
		if len(senders) != substrates {
			t.Errorf("write %s: ACKs delivered from %v, want one from each of the %d substrates", mid, senders, substrates)
		}
		for from, k := range acks[mid] {
			if k != 1 {
				t.Errorf("write %s: %d ACKs from %s delivered, want 1", mid, k, from)
			}
		}
	}
	mu.Unlock()

	stop, done := make(chan struct{}), make(chan struct{})
	// The node writes through its primary, and a publisher on rc, which the
	// new link delivers, makes the ACKs relayed from rc look like messages
	// the new link is missing, were they tracked.
	go func() { // 20 writes a second each, bounded
		defer close(done)
		for i := range 2000 {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			mid := fmt.Sprintf("%d-w%d", time.Now().UnixNano(), i)
			_ = n.Send(ctx, wire.TypePut, wire.Message{Type: "PUT", From: id, Timestamp: time.Now().Unix(), MessageID: mid,
				Key: "acks-" + mid, Data: []byte("x"), TTL: 300})
			_ = c.Client().Put(ctx, c.Node("rc").HTTP(), fmt.Sprintf("acks-pub-%s-%d", id, i), []byte("v"), 300)
		}
	}()
	// rb clearly better, every 200 ms, until the default policy has moved
	// the node there (bounded: OverlapMax is 15 s).
	for deadline := time.Now().Add(25 * time.Second); time.Now().Before(deadline); {
		st := n.Status()
		if st.Stats.Migrations > 0 || st.Stats.Cancelled > 0 {
			break
		}
		obs := transport.Observation{CurrentLatency: 10 * time.Millisecond, Candidates: []transport.Candidate{
			{Substrate: c.Node("rb").Transport(), Latency: time.Millisecond},
			{Substrate: c.Node("rc").Transport(), Latency: 10 * time.Millisecond}}}
		if _, err := n.Observe(ctx, obs); err != nil {
			t.Fatalf("observe: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	close(stop)
	<-done
	st := n.Status()
	if st.Stats.Migrations != 1 || st.Stats.Cancelled != 0 || st.Primary.ID != "rb" {
		t.Errorf("writing while migrating to rb: %d migrations, %d cancelled, primary %q; want 1, 0, rb",
			st.Stats.Migrations, st.Stats.Cancelled, st.Primary.ID)
	}
	mu.Lock()
	defer mu.Unlock()
	for mid, by := range acks {
		for from, k := range by {
			if k != 1 {
				t.Errorf("write %s: %d ACKs from %s delivered, want 1", mid, k, from)
			}
		}
	}
	t.Logf("ACKs of the first writes by sender: %v; %d writes acknowledged in all; stats %+v", acksOf(acks, ids), len(acks), st.Stats)
}

// acksOf is the part of acks about ids.
func acksOf(acks map[string]map[string]int, ids []string) map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, mid := range ids {
		out[mid] = acks[mid]
	}
	return out
}
