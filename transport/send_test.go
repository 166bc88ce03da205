package transport

import (
	"context"
	"errors"
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

// stallConn is a client connection whose writes, once armed, wait until the
// connection is closed and then end as if they had gone through: a write
// that outlasts its ctx by a hair, the way a loaded machine schedules it.
type stallConn struct {
	net.Conn
	armed  atomic.Bool
	once   sync.Once
	closed chan struct{}
}

func (c *stallConn) Write(p []byte) (int, error) {
	if c.armed.Load() {
		<-c.closed
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *stallConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// A write whose ctx expires just as it ends: the WebSocket library closes
// the connection (its write deadline is a ctx.AfterFunc that closes it) and
// may still report the write as done, so the next write finds the
// connection closed, with no context.DeadlineExceeded in its error. Send
// reports that write as a lost primary: the error wraps ErrDetached and
// says the link has closed. This is how TestSendToPrimaryThatStopsReading
// could end on an error that was not DeadlineExceeded on a loaded machine.
func TestSendAfterAWriteCutAtItsEndIsErrDetached(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			if _, _, err := c.Read(r.Context()); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	var sc *stallConn
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		sc = &stallConn{Conn: c, closed: make(chan struct{})}
		return sc, nil
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Body != nil {
		_ = resp.Body.Close()
	}
	defer conn.CloseNow()
	frame := []byte(`{"type":"put"}`)
	if err := conn.Write(ctx, websocket.MessageText, frame); err != nil {
		t.Fatalf("a write through a healthy connection: %v", err)
	}

	sc.armed.Store(true)
	short, cancelShort := context.WithTimeout(context.Background(), time.Millisecond)
	err = conn.Write(short, websocket.MessageText, frame)
	cancelShort()
	t.Logf("the write cut at its end returned %v", err)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the write whose ctx expired: %v, want nil or context.DeadlineExceeded", err)
	}

	err = conn.Write(ctx, websocket.MessageText, frame)
	if err == nil {
		t.Fatal("a write after the library closed the connection went through")
	}
	t.Logf("the next write returned %v", err)
	got := sendError(wire.TypePut, err)
	if !errors.Is(got, ErrDetached) || !errors.Is(got, net.ErrClosed) {
		t.Fatalf("the next write: %v, want an error wrapping ErrDetached and net.ErrClosed", got)
	}
	if !strings.Contains(got.Error(), "primary link has closed") {
		t.Errorf("the error does not say the primary link has closed: %v", got)
	}
	if other := sendError(wire.TypePut, context.DeadlineExceeded); errors.Is(other, ErrDetached) {
		t.Errorf("a write cut by its own ctx: %v, want it not classified as ErrDetached", other)
	}
}
