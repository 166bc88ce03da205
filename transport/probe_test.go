package transport

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/repram/handover/transport/substratetest"
)

func newTestProxy(t *testing.T, s *substratetest.Server, delay time.Duration) *substratetest.Proxy {
	t.Helper()
	p, err := substratetest.NewProxy(substratetest.ProxyConfig{Target: s.Addr(), Delay: delay})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// A probe measures through the proxy's delay and never registers: the
// node attached to the same substrate keeps its registration and its
// gossip.
func TestProbeMeasuresWithoutRegistering(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fastConfig())
	a := h.start("sub-a", 0)
	h.attach(a)
	stop := h.publishing(2 * time.Millisecond)
	defer stop()

	// Probes at once, while gossip flows: none registers, and each times
	// its own pings.
	const delay, probes = 5 * time.Millisecond, 3
	p := newTestProxy(t, a, delay)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	rtts, errs := make([]time.Duration, probes), make([]error, probes)
	for i := range probes {
		wg.Go(func() { rtts[i], errs[i] = Probe(ctx, Substrate{ID: a.ID(), URL: p.URL()}, ProbeOptions{Count: 3}) })
	}
	wg.Wait()
	for i, rtt := range rtts {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		// A lower bound the proxy guarantees, not a timing assertion.
		if rtt < 2*delay {
			t.Fatalf("probe through a %v one-way proxy measured %v", delay, rtt)
		}
	}
	if got := a.Children(); !slices.Equal(got, []string{"t1"}) {
		t.Fatalf("children after probing: %v, want only the attached node", got)
	}
	before := h.node.Status().Stats.Delivered
	h.eventually("gossip still flowing after the probes", func() bool { return h.node.Status().Stats.Delivered > before+5 })
	stop()
	h.exactlyOnce()
	if st := h.node.Status(); st.Primary.ID != "sub-a" || st.Stats.Detaches != 0 {
		t.Fatalf("probing disturbed the primary: %+v", st)
	}
}

func TestProbeErrors(t *testing.T) {
	t.Parallel()
	m := substratetest.NewMesh(substratetest.MeshConfig{})
	defer m.Close()
	s, err := m.Start(substratetest.Config{ID: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	url := s.URL()
	s.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Probe(ctx, Substrate{URL: url}, ProbeOptions{}); !errors.Is(err, ErrProbe) {
		t.Errorf("probe of a dead substrate: %v, want ErrProbe", err)
	}
	if _, err := Probe(ctx, Substrate{URL: url}, ProbeOptions{Count: -1}); !errors.Is(err, ErrProbe) {
		t.Errorf("negative count: %v, want ErrProbe", err)
	}
	live, err := m.Start(substratetest.Config{ID: "live"})
	if err != nil {
		t.Fatal(err)
	}
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	if _, err := Probe(done, Substrate{URL: live.URL()}, ProbeOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("probe with a cancelled context: %v, want context.Canceled", err)
	}
}
