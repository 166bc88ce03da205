package transport

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/repram/handover/transport/substratetest"
	"github.com/repram/handover/transport/wire"
)

// BenchmarkReceive measures the receive path end to end over a loopback
// link: a substrate forwards, the link reads, decodes and verifies, the loop
// dedups and the handler receives. Compare the two sub-benchmarks in one run:
// the secret's cost is their ratio.
func BenchmarkReceive(b *testing.B) {
	for _, bc := range []struct {
		name   string
		secret []byte
	}{{"no-secret", nil}, {"secret", testSecret}} {
		b.Run(bc.name, func(b *testing.B) {
			mesh := substratetest.NewMesh(substratetest.MeshConfig{Secret: bc.secret, QueueSize: 1 << 14})
			defer mesh.Close()
			s, err := mesh.Start(substratetest.Config{ID: "sub-a"})
			if err != nil {
				b.Fatal(err)
			}
			var got atomic.Int64
			cfg := fastConfig()
			cfg.Secret = bc.secret
			cfg.Handler = func(Gossip) { got.Add(1) }
			n, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer n.Close(context.Background())
			if err := n.Attach(context.Background(), sub(s)); err != nil {
				b.Fatal(err)
			}
			for deadline := time.Now().Add(5 * time.Second); n.Status().Primary.ID == ""; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					b.Fatal("never attached")
				}
			}
			msg := wire.Message{Type: "PUT", From: "publisher", Key: "k", Data: make([]byte, 256), TTL: 300}
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				if _, err := mesh.Publish(msg); err != nil {
					b.Fatal(err)
				}
				// Keep at most a few thousand in flight so the substrate's
				// queue never drops the child.
				for int64(i)-got.Load() > 4000 {
					time.Sleep(50 * time.Microsecond)
				}
			}
			for deadline := time.Now().Add(30 * time.Second); got.Load() < int64(b.N); time.Sleep(50 * time.Microsecond) {
				if time.Now().After(deadline) {
					b.Fatalf("delivered %d of %d", got.Load(), b.N)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}
