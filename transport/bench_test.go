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
// send it signed puts as fast as the link takes them, each with its own
// message id: the receive path's source. The WebSocket library accepts the
// link, reads the hello, writes the welcome and answers pings and the close;
// the puts are encoded, signed and framed (RFC 6455 text frames, as the
// library frames them) before the clock starts, and written onto the same
// connection 64 KiB at a time, between the library's own writes: the source
// costs the shared machine little more than its system calls.
type blaster struct {
	srv    *httptest.Server
	stream []byte // the puts, framed, back to back
	ends   []int  // where each framed put ends in stream
	secret []byte
}

func newBlaster(tb testing.TB, secret []byte, n int) *blaster {
	tb.Helper()
	b := &blaster{secret: secret}
	b.stream, b.ends = putStream(tb, secret, n)
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(b.serve))
	b.srv.Listener = sharedListener{b.srv.Listener}
	b.srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, c)
	}
	b.srv.Start()
	tb.Cleanup(b.srv.Close)
	return b
}

// connKey finds a request's connection in its context.
type connKey struct{}

// sharedListener hands out connections that the library and the blaster
// both write to.
type sharedListener struct{ net.Listener }

func (l sharedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &sharedConn{Conn: c}, nil
}

// sharedConn serialises the writes of the library (pongs and the close,
// each a whole frame in one write while the blaster runs: they are far
// smaller than its 4 KiB buffer) and of the blaster (whole frames only).
type sharedConn struct {
	net.Conn
	mu sync.Mutex
}

func (c *sharedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.Write(p)
}

// putStream returns n signed puts of 256 bytes of data, message ids
// 1795600001123456789-000000000 upwards, each framed as a WebSocket text
// frame, back to back, and where each ends. The payloads are exactly what
// [wire.Encode] writes: one is encoded, and the others are that frame with
// the id's digits and the signature rewritten (encoding each would take the
// setup of a 300000-message run from a second to several). The first and
// the last are checked against wire.Encode.
func putStream(tb testing.TB, secret []byte, n int) ([]byte, []int) {
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
	if len(tmpl) < 126 || len(tmpl) > 0xffff {
		tb.Fatalf("a put of %d bytes: the framing here is for 126 to 65535", len(tmpl))
	}
	// A server's text frame of 126 to 65535 bytes: FIN and opcode 1, no
	// mask, length 126 and then the length in two bytes.
	framed := append([]byte{0x81, 126, byte(len(tmpl) >> 8), byte(len(tmpl))}, tmpl...)
	const hdr = 4
	digits := hdr + bytes.Index(tmpl, []byte(idPrefix)) + len(idPrefix)
	pStart := hdr + bytes.Index(tmpl, []byte(`"payload":`)) + len(`"payload":`)
	sigAt := hdr + bytes.LastIndex(tmpl, []byte(`"signature":"`)) + len(`"signature":"`)
	pEnd := len(framed) - 1 // the payload ends the envelope without a signature
	if len(secret) > 0 {
		pEnd = sigAt - len(`,"signature":"`)
	}
	mac := hmac.New(sha256.New, secret)
	var sum [sha256.Size]byte
	stream := make([]byte, n*len(framed))
	ends := make([]int, n)
	for i := range ends {
		f := stream[i*len(framed) : (i+1)*len(framed)]
		copy(f, framed)
		for j, v := digits+8, i; j >= digits; j, v = j-1, v/10 {
			f[j] = byte('0' + v%10)
		}
		if len(secret) > 0 {
			mac.Reset()
			mac.Write(f[pStart:pEnd])
			hex.Encode(f[sigAt:], mac.Sum(sum[:0]))
		}
		ends[i] = (i + 1) * len(framed)
	}
	for _, i := range []int{0, n - 1} {
		want, err := wire.Encode(wire.TypePut, msg(i), secret)
		if got := stream[ends[i]-len(tmpl) : ends[i]]; err != nil || !bytes.Equal(got, want) {
			tb.Fatalf("put %d: template frame\n%s\ndiffers from wire.Encode's\n%s (%v)", i, got, want, err)
		}
	}
	return stream, ends
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
	conn := r.Context().Value(connKey{}).(*sharedConn)
	for start, i := 0, 0; i < len(b.ends); start = b.ends[i-1] {
		for i < len(b.ends) && b.ends[i]-start <= 64<<10 {
			i++
		}
		if _, err := conn.Write(b.stream[start:b.ends[i-1]]); err != nil {
			return
		}
	}
	<-ctx.Done()
}

// BenchmarkReceive measures the receive path end to end over one loopback
// WebSocket: read, decode and verify (one pass), the event loop, the
// engine's dedup and the handler, with the delivery credits' back-pressure
// in the loop. The source shares the machine but encodes, signs and frames
// before the clock starts (see blaster). Compare the sub-benchmarks of one
// run: the secret's
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
