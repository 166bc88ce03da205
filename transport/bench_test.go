package transport

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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
	b := &blaster{secret: secret, frames: putFrames(tb, secret, n)}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(b.serve))
	b.srv.Listener = coalescingListener{b.srv.Listener}
	b.srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, c)
	}
	b.srv.Start()
	tb.Cleanup(b.srv.Close)
	return b
}

// connKey finds a request's connection in its context.
type connKey struct{}

// coalescingListener hands out connections that can coalesce their writes.
type coalescingListener struct{ net.Listener }

func (l coalescingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &coalescingConn{Conn: c}, nil
}

// coalescingConn is the blaster's socket. While coalescing, it gathers the
// frames the WebSocket library writes, one write each, and sends them 64 KiB
// at a time: what the socket carries is the same, but the source costs
// the shared machine one system call per ~100 frames, as a busy substrate
// whose frames queue in its socket buffer would, instead of one per frame.
type coalescingConn struct {
	net.Conn
	mu         sync.Mutex
	buf        []byte
	coalescing bool
}

func (c *coalescingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.coalescing {
		return c.Conn.Write(p)
	}
	c.buf = append(c.buf, p...)
	if len(c.buf) >= 64<<10 {
		return len(p), c.flushLocked()
	}
	return len(p), nil
}

func (c *coalescingConn) flushLocked() error {
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}

// coalesce starts or ends coalescing; ending it sends what is gathered.
func (c *coalescingConn) coalesce(on bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.coalescing = on
	if on {
		return nil
	}
	return c.flushLocked()
}

// putFrames returns n signed puts of 256 bytes of data, message ids
// 1795600001123456789-000000000 upwards, exactly as [wire.Encode] writes
// them: one is encoded, and the others are that frame with the id's digits
// and the signature rewritten (encoding each would take the setup of a
// 300000-message run from a second to several). The first and the last are
// checked against wire.Encode.
func putFrames(tb testing.TB, secret []byte, n int) [][]byte {
	tb.Helper()
	const idPrefix = "1795600001123456789-"
	now := time.Now().Unix()
	msg := func(i int) wire.Message {
		return wire.Message{Type: "PUT", From: "publisher", Timestamp: now,
			MessageID: fmt.Sprintf("%s%09d", idPrefix, i), Key: "k", Data: make([]byte, 256), TTL: 300}
	}
	tmpl, err := wire.Encode(wire.TypePut, msg(0), secret)
	if err != nil {
		tb.Fatal(err)
	}
	digits := bytes.Index(tmpl, []byte(idPrefix)) + len(idPrefix)
	pStart := bytes.Index(tmpl, []byte(`"payload":`)) + len(`"payload":`)
	sigAt := bytes.LastIndex(tmpl, []byte(`"signature":"`)) + len(`"signature":"`)
	pEnd := len(tmpl) - 1 // the payload ends the envelope without a signature
	if len(secret) > 0 {
		pEnd = sigAt - len(`,"signature":"`)
	}
	mac := hmac.New(sha256.New, secret)
	var sum [sha256.Size]byte
	buf := make([]byte, n*len(tmpl))
	frames := make([][]byte, n)
	for i := range frames {
		f := buf[i*len(tmpl) : (i+1)*len(tmpl) : (i+1)*len(tmpl)]
		copy(f, tmpl)
		for j, v := digits+8, i; j >= digits; j, v = j-1, v/10 {
			f[j] = byte('0' + v%10)
		}
		if len(secret) > 0 {
			mac.Reset()
			mac.Write(f[pStart:pEnd])
			hex.Encode(f[sigAt:], mac.Sum(sum[:0]))
		}
		frames[i] = f
	}
	for _, i := range []int{0, n - 1} {
		want, err := wire.Encode(wire.TypePut, msg(i), secret)
		if err != nil || !bytes.Equal(frames[i], want) {
			tb.Fatalf("put %d: template frame\n%s\ndiffers from wire.Encode's\n%s (%v)", i, frames[i], want, err)
		}
	}
	return frames
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
	// The writes run under no context, which would cost the library a
	// watcher per frame; they fail once the node closes the link.
	conn := r.Context().Value(connKey{}).(*coalescingConn)
	_ = conn.coalesce(true)
	for _, f := range b.frames {
		if err := c.Write(context.Background(), websocket.MessageText, f); err != nil {
			return
		}
	}
	if conn.coalesce(false) != nil {
		return
	}
	<-ctx.Done()
}

// BenchmarkReceive measures the receive path end to end over one loopback
// WebSocket: read, decode and verify (one pass), the event loop, the
// engine's dedup and the handler, with the delivery credits' back-pressure
// in the loop. The source shares the machine but encodes and signs before
// the clock starts. Compare the sub-benchmarks of one run: the secret's
// cost is their ratio. msgs/s is the throughput; cpu-µs/msg the CPU time
// of the whole process (source, receiver, GC) per message, which a busy
// machine changes far less than the throughput.
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
			start, cpu := time.Now(), processCPU()
			if err := n.Attach(context.Background(), bl.sub()); err != nil {
				b.Fatal(err)
			}
			select {
			case <-done:
			case <-time.After(time.Minute):
				b.Fatalf("delivered %d of %d; stats %+v", got.Load(), b.N, n.Status().Stats)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
			if cpu >= 0 {
				b.ReportMetric(float64(processCPU()-cpu)/float64(time.Microsecond)/float64(b.N), "cpu-µs/msg")
			}
		})
	}
}
