package substratetest_test

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/repram/handover/transport/substratetest"
	"github.com/repram/handover/transport/wire"
)

// wait bounds every wait of these tests; nothing normally comes close.
const wait = 5 * time.Second

type frame struct {
	typ  websocket.MessageType
	data []byte
}

// client is a minimal transient node: it dials, sends frames and collects
// every frame it receives on a reader goroutine.
type client struct {
	t      testing.TB
	ws     *websocket.Conn
	secret []byte
	frames chan frame
	done   chan struct{}
	err    error // why the reader ended; read after done
}

func dial(t testing.TB, s *substratetest.Server, secret []byte) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, s.URL(), nil)
	if err != nil {
		t.Fatalf("dial %s: %v", s.URL(), err)
	}
	ws.SetReadLimit(4 << 20)
	c := &client{t: t, ws: ws, secret: secret, frames: make(chan frame, 4096), done: make(chan struct{})}
	go c.readLoop()
	t.Cleanup(c.close)
	return c
}

func (c *client) readLoop() {
	defer close(c.done)
	for {
		typ, data, err := c.ws.Read(context.Background())
		if err != nil {
			c.err = err
			return
		}
		c.frames <- frame{typ, data}
	}
}

func (c *client) close() {
	_ = c.ws.CloseNow()
	<-c.done
}

func (c *client) write(data []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, data); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) send(typ wire.Type, payload any, secret []byte) {
	c.t.Helper()
	data, err := wire.Encode(typ, payload, secret)
	if err != nil {
		c.t.Fatal(err)
	}
	c.write(data)
}

func (c *client) hello(id, enclave string) {
	c.t.Helper()
	c.send(wire.TypeHello, helloFor(id, enclave), c.secret)
}

func helloFor(id, enclave string) wire.Hello {
	return wire.Hello{NodeID: id, Enclave: enclave, Address: "127.0.0.1", Capabilities: wire.Capabilities{Inbound: "false"}}
}

// next returns the next frame, failing the test if none comes or the
// connection ends first.
func (c *client) next() frame {
	c.t.Helper()
	select {
	case f := <-c.frames:
		return f
	default:
	}
	select {
	case f := <-c.frames:
		return f
	case <-c.done:
		select {
		case f := <-c.frames:
			return f
		default:
		}
		c.t.Fatalf("connection ended while waiting for a frame: %v", c.err)
	case <-time.After(wait):
		c.t.Fatal("no frame within the wait")
	}
	return frame{}
}

// expect returns the next frame, which must be a valid frame of type typ.
func (c *client) expect(typ wire.Type) wire.Envelope {
	c.t.Helper()
	f := c.next()
	if f.typ != websocket.MessageText {
		c.t.Fatalf("want a text %s frame, got a %v frame %q", typ, f.typ, f.data)
	}
	env, err := wire.Decode(f.data, c.secret)
	if err != nil {
		c.t.Fatalf("want a valid %s frame: %v (%s)", typ, err, f.data)
	}
	if env.Type != typ {
		c.t.Fatalf("want a %s frame, got %s: %s", typ, env.Type, f.data)
	}
	return env
}

func (c *client) expectWelcome() wire.Welcome {
	c.t.Helper()
	w, err := c.expect(wire.TypeWelcome).Welcome()
	if err != nil {
		c.t.Fatal(err)
	}
	return w
}

func (c *client) expectPut() wire.Message {
	c.t.Helper()
	m, err := c.expect(wire.TypePut).Message()
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

func (c *client) expectGoodbye() wire.Goodbye {
	c.t.Helper()
	g, err := c.expect(wire.TypeGoodbye).Goodbye()
	if err != nil {
		c.t.Fatal(err)
	}
	return g
}

// expectEnd waits for the connection to end, with no frame before, and
// returns the close status (-1: no close frame).
func (c *client) expectEnd() websocket.StatusCode {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(wait):
		c.t.Fatal("connection still open")
	}
	select {
	case f := <-c.frames:
		c.t.Fatalf("unexpected frame before the end: %s", f.data)
	default:
	}
	return websocket.CloseStatus(c.err)
}

// quiet fails if a frame arrives within d. It can only miss a stray frame,
// never fail a correct substrate; tests use an ordering barrier instead
// wherever one exists.
func (c *client) quiet(d time.Duration) {
	c.t.Helper()
	select {
	case f := <-c.frames:
		c.t.Fatalf("unexpected frame: %s", f.data)
	case <-time.After(d):
	}
}

// marker sends a frame to childID through s after everything already queued
// for it; the client must see it next.
func marker(t testing.TB, s *substratetest.Server, childID string) {
	t.Helper()
	if err := s.SendRaw(childID, websocket.MessageText, []byte(`{"marker":true}`)); err != nil {
		t.Fatal(err)
	}
}

func (c *client) expectMarker() {
	c.t.Helper()
	if f := c.next(); string(f.data) != `{"marker":true}` {
		c.t.Fatalf("want the marker frame, got %s", f.data)
	}
}

// eventually polls cond until it holds, failing after the wait.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// hellos returns a channel that gets each hello s accepts.
func hellos(s *substratetest.Server) <-chan wire.Hello {
	ch := make(chan wire.Hello, 64)
	s.SetOnHello(func(h wire.Hello) { ch <- h })
	return ch
}

func recv[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatal("nothing received within the wait")
	}
	var zero T
	return zero
}

func contextWithWait() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), wait)
}
