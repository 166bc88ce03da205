package transport

import (
	"bytes"
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
// write it n signed puts as fast as the link takes them, each with its own
// message id: the receive path's source, with as little work of its own as
// a real substrate can do (one id patched and one HMAC per frame).
type blaster struct {
	srv    *httptest.Server
	n      atomic.Int64 // frames to send once welcomed
	secret []byte
}

func newBlaster(tb testing.TB, secret []byte) *blaster {
	tb.Helper()
	b := &blaster{secret: secret}
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
	data := make([]byte, 256)
	now := time.Now().Unix()
	// The id's counter is fixed-width, so every payload has the same
	// length and only its digits change.
	payload, err := wire.Marshal(wire.Message{Type: "PUT", From: "publisher", Timestamp: now,
		MessageID: "1795600001123456789-0000000000", Key: "k", Data: data, TTL: 300})
	if err != nil {
		return
	}
	digits := bytes.Index(payload, []byte("-0000000000")) + 1
	n := b.n.Load()
	var frame bytes.Buffer
	for i := range n {
		copy(payload[digits:], fmt.Sprintf("%010d", i))
		frame.Reset()
		frame.WriteString(`{"type":"put","payload":`)
		frame.Write(payload)
		if len(b.secret) > 0 {
			frame.WriteString(`,"signature":"` + wire.Sign(b.secret, payload) + `"`)
		}
		frame.WriteByte('}')
		if err := c.Write(ctx, websocket.MessageText, frame.Bytes()); err != nil {
			return
		}
	}
	<-ctx.Done()
}

// BenchmarkReceive measures the receive path end to end over one loopback
// WebSocket: read, decode and verify (one pass), the event loop, the
// engine's dedup and the handler, with the delivery credits' back-pressure
// in the loop. The source signs each frame on the same machine. Compare the
// sub-benchmarks of one run: the secret's cost is their ratio.
func BenchmarkReceive(b *testing.B) {
	for _, bc := range []struct {
		name   string
		secret []byte
	}{{"no-secret", nil}, {"secret", testSecret}} {
		b.Run(bc.name, func(b *testing.B) {
			bl := newBlaster(b, bc.secret)
			bl.n.Store(int64(b.N))
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
