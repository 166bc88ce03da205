package substratetest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/repram/handover/transport/substratetest"
)

// tcpServer accepts on loopback and runs handle for each connection until
// the test ends.
func tcpServer(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { handle(c) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func echo(c net.Conn) { _, _ = io.Copy(c, c); _ = c.Close() }

func newProxy(t *testing.T, cfg substratetest.ProxyConfig) *substratetest.Proxy {
	t.Helper()
	p, err := substratetest.NewProxy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func TestProxyKeepsBytesInOrderUnderJitterAndLoss(t *testing.T) {
	t.Parallel()
	p := newProxy(t, substratetest.ProxyConfig{Target: tcpServer(t, echo), Delay: time.Millisecond,
		Jitter: 5 * time.Millisecond, Loss: 0.2, RetransmitTimeout: 10 * time.Millisecond, Seed: 7})
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := make([]byte, 3<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range want {
		want[i] = byte(r.Uint32())
	}
	errc := make(chan error, 1)
	go func() {
		// Small writes, so many chunks get their own jitter and loss.
		for b := want; len(b) > 0; {
			n := min(len(b), 1000)
			if _, err := c.Write(b[:n]); err != nil {
				errc <- err
				return
			}
			b = b[n:]
		}
		errc <- c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("echo through the proxy: got %d bytes, want %d, equal prefix %d", len(got), len(want), commonPrefix(got, want))
	}
}

func commonPrefix(a, b []byte) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// A shorter delay never lets later bytes overtake earlier ones.
func TestProxySetDelayNeverReorders(t *testing.T) {
	t.Parallel()
	p := newProxy(t, substratetest.ProxyConfig{Target: tcpServer(t, echo), Delay: 80 * time.Millisecond})
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("first,")); err != nil {
		t.Fatal(err)
	}
	// Let the proxy read "first," with the long delay before shrinking it.
	time.Sleep(20 * time.Millisecond)
	p.SetDelay(0)
	if p.Delay() != 0 {
		t.Fatalf("Delay() = %v after SetDelay(0)", p.Delay())
	}
	if _, err := c.Write([]byte("second")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("first,second"))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != "first,second" {
		t.Fatalf("got %q: bytes were reordered", got)
	}
}

// Bytes are held at least the one-way delay in each direction: a lower
// bound the proxy guarantees, not a timing measurement.
func TestProxyDelaysBothDirections(t *testing.T) {
	t.Parallel()
	s := start(t, newMesh(t, substratetest.MeshConfig{}), substratetest.Config{ID: "s1"})
	const delay = 10 * time.Millisecond
	p := newProxy(t, substratetest.ProxyConfig{Target: s.Addr(), Delay: delay})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, p.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.CloseRead(ctx)
	start := time.Now()
	if err := ws.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(start); rtt < 2*delay {
		t.Fatalf("ping through a %v proxy answered in %v: delay not applied both ways", delay, rtt)
	}
	if err := ws.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
}

// A target that stops reading makes the proxy stop reading too: its
// buffers are bounded, so the sender's writes stall.
func TestProxyBuffersAreBounded(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	target := tcpServer(t, func(c net.Conn) {
		_ = c.(*net.TCPConn).SetReadBuffer(64 << 10) // fewer bytes to fill
		<-block
		_ = c.Close()
	})
	defer close(block)
	p := newProxy(t, substratetest.ProxyConfig{Target: target})
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A small send buffer: fewer bytes sit in the kernel before the stall.
	if err := c.(*net.TCPConn).SetWriteBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	// Far more than the proxy's 1 MiB per direction plus the kernel's
	// socket buffers on both connections.
	const bound = 64 << 20
	buf := make([]byte, 1<<20)
	total := 0
	for range 1000 {
		if err := c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		n, err := c.Write(buf)
		total += n
		if total > bound {
			t.Fatalf("the proxy took %d MiB from a sender while its target read nothing: its buffers are not bounded", total>>20)
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal(err)
		}
		if n == 0 {
			return // stalled: not one byte taken in 50ms
		}
	}
	t.Fatalf("writes into a target that never reads never stalled (%d MiB taken)", total>>20)
}

func TestProxyCloseEndsOpenConnections(t *testing.T) {
	p, err := substratetest.NewProxy(substratetest.ProxyConfig{Target: tcpServer(t, echo), Delay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("held for an hour")); err != nil {
		t.Fatal(err)
	}
	p.Close() // must not wait for the delay; goleak checks the goroutines
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after Close: %v, want the connection closed", err)
	}
	if _, err := net.Dial("tcp", p.Addr()); err == nil {
		t.Fatal("the proxy still accepts after Close")
	}
}

func TestNewProxyRejectsBadConfig(t *testing.T) {
	for _, cfg := range []substratetest.ProxyConfig{
		{},
		{Target: "127.0.0.1:1", Delay: -time.Second},
		{Target: "127.0.0.1:1", Jitter: -time.Second},
		{Target: "127.0.0.1:1", Loss: 1},
		{Target: "127.0.0.1:1", Loss: -0.1},
		{Target: "127.0.0.1:1", RetransmitTimeout: -time.Second},
	} {
		if p, err := substratetest.NewProxy(cfg); err == nil {
			p.Close()
			t.Errorf("substratetest.NewProxy(%+v) accepted it", cfg)
		}
	}
}
