package transport

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/repram/handover/transport/wire"
)

// blaster is a substrate that does nothing but welcome one child and then
// write it signed puts as fast as the link takes them, each with its own
// message id, encoded and signed before the clock starts: the receive
// path's source, costing the machine only its writes.
type blaster struct {
	srv    *httptest.Server
	frames [][]byte
	secret []byte
}

func newBlaster(tb testing.TB, secret []byte, n int) *blaster {
	tb.Helper()
	b := &blaster{secret: secret, frames: make([][]byte, n)}
	data := make([]byte, 256)
	now := time.Now().Unix()
	for i := range b.frames {
		f, err := wire.Encode(wire.TypePut, wire.Message{Type: "PUT", From: "publisher", Timestamp: now,
			MessageID: fmt.Sprintf("1795600001123456789-%d", i), Key: "k", Data: data, TTL: 300}, secret)
		if err != nil {
			tb.Fatal(err)
		}
		b.frames[i] = f
	}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	tb.Cleanup(b.srv.Close)
	return b
}

func (b *blaster) sub() Substrate {
	return Substrate{ID: "blaster", URL: "ws" + strings.TrimPrefix(b.srv.URL, "http") + "/v1/ws"}
}

func (b *blaster) serve(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := r.Context()
	if _, _, err := c.Read(ctx); err != nil { // the hello
		return
	}
	welcome, err := wire.Encode(wire.TypeWelcome, wire.Welcome{YourPosition: wire.Position{Depth: 1, ParentID: "blaster"}}, b.secret)
	if err != nil || c.Write(ctx, websocket.MessageText, welcome) != nil {
		return
	}
	ctx = c.CloseRead(ctx) // pings are answered; ctx ends when the node closes the link
	for _, f := range b.frames {
		if err := c.Write(ctx, websocket.MessageText, f); err != nil {
			return
		}
	}
	<-ctx.Done()
}

// BenchmarkReceive measures the receive path end to end over one loopback
// WebSocket: read, decode and verify (one pass), the event loop, the
// engine's dedup and the handler, with the delivery credits' back-pressure
// in the loop. The source shares the machine but encodes and signs before
// the clock starts. Compare the sub-benchmarks of one run: the secret's
// cost is their ratio.
func BenchmarkReceive(b *testing.B) {
	for _, bc := range []struct {
		name   string
		secret []byte
	}{{"no-secret", nil}, {"secret", testSecret}} {
		b.Run(bc.name, func(b *testing.B) {
			bl := newBlaster(b, bc.secret, b.N)
			var got atomic.Int64
			done := make(chan struct{})
			cfg := fastConfig()
			cfg.Secret = bc.secret
			cfg.Handler = func(Gossip) {
				if got.Add(1) == int64(b.N) {
					close(done)
				}
			}
			n, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer n.Close(context.Background())
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			if err := n.Attach(context.Background(), bl.sub()); err != nil {
				b.Fatal(err)
			}
			select {
			case <-done:
			case <-time.After(time.Minute):
				b.Fatalf("delivered %d of %d; stats %+v", got.Load(), b.N, n.Status().Stats)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}
