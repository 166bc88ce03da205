package transport

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport/wire"
)

func TestAttachRejectsURLsThatCannotBeDialed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fastConfig())
	for _, u := range []string{"", "localhost:8080", "http://127.0.0.1:1/v1/ws", "ws://", "://x"} {
		if err := h.node.Attach(context.Background(), Substrate{URL: u}); err == nil {
			t.Errorf("Attach(%q) accepted", u)
		}
	}
	if st := h.node.Status(); st.State != fsm.Detached {
		t.Fatalf("state %s after rejected attaches", st.State)
	}
}

// A stopped link closes with the WebSocket close handshake, so the substrate
// sees a normal closure (and has processed what was sent before it), not a
// dropped connection.
func TestLinksCloseWithTheCloseHandshake(t *testing.T) {
	t.Parallel()
	closed := make(chan websocket.StatusCode, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		ctx := r.Context()
		if _, _, err := c.Read(ctx); err != nil { // hello
			return
		}
		welcome, _ := wire.Encode(wire.TypeWelcome, wire.Welcome{Topology: []wire.Message{},
			YourPosition: wire.Position{Depth: 1, ParentID: "raw"}}, testSecret)
		if err := c.Write(ctx, websocket.MessageText, welcome); err != nil {
			return
		}
		for {
			if _, _, err := c.Read(ctx); err != nil {
				closed <- websocket.CloseStatus(err)
				return
			}
		}
	}))
	defer srv.Close()
	n, err := New(fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, node: n}
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/ws"
	if err := n.Attach(context.Background(), Substrate{ID: "raw", URL: url}); err != nil {
		t.Fatal(err)
	}
	h.waitAttached("raw")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if code := <-closed; code != websocket.StatusNormalClosure {
		t.Fatalf("substrate saw close status %d, want %d (normal closure)", code, websocket.StatusNormalClosure)
	}
}

func TestSubscribersSeeTheCloseTransition(t *testing.T) {
	t.Parallel()
	n, err := New(fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	ch := n.Subscribe(4)
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var last Transition
	for tr := range ch {
		last = tr
	}
	if last.Step.Event != fsm.Close || last.Step.To != fsm.Closed {
		t.Fatalf("last transition %+v, want close to closed", last.Step)
	}
	if _, err := n.Observe(context.Background(), Observation{Measure: true}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Observe after Close = %v, want ErrClosed", err)
	}
	if err := n.Send(context.Background(), wire.TypePut, wire.Message{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close = %v, want ErrClosed", err)
	}
}
