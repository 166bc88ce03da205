package transport

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// wrappedTransport stands for what tracing and metrics libraries (otelhttp
// and the like) install as http.DefaultTransport: a RoundTripper that is not
// a *http.Transport.
type wrappedTransport struct{ http.RoundTripper }

// A node and a probe dial while http.DefaultTransport is wrapped: neither
// panics (a panic in the link's goroutine would end the process), the node
// attaches and the probe measures. Not parallel: it replaces a global every
// dialling test reads, and Go runs the parallel tests only after the
// sequential ones.
func TestDialWithWrappedDefaultTransport(t *testing.T) {
	orig := http.DefaultTransport
	http.DefaultTransport = wrappedTransport{orig}
	// Registered first, so it runs after the harness's cleanup closed the
	// node.
	t.Cleanup(func() { http.DefaultTransport = orig })

	h := newHarness(t, fastConfig())
	a := h.start("sub-a", 0)
	h.attach(a)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if rtt, err := Probe(ctx, sub(a), ProbeOptions{Count: 2}); err != nil || rtt <= 0 {
		t.Fatalf("probe with a wrapped DefaultTransport: rtt %v err %v", rtt, err)
	}
	if _, err := Probe(ctx, Substrate{URL: "ws://127.0.0.1:1/v1/ws"}, ProbeOptions{}); !errors.Is(err, ErrProbe) {
		t.Fatalf("probe of a closed port with a wrapped DefaultTransport: %v, want ErrProbe", err)
	}
}
