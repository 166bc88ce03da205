package repramtest_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport"
	"github.com/repram/handover/transport/repramtest"
	"github.com/repram/handover/transport/repramtest/ledger"
)

// run is one transient node (transport.Node, default timings) attached to a
// real REPRAM cluster, with a ledger writing to it and keeping the books.
type run struct {
	t    *testing.T
	c    *repramtest.Cluster
	node *transport.Node
	led  *ledger.Ledger
	logs *syncBuffer

	mu    sync.Mutex
	types map[string]int // gossip handed to the handler, by type and key prefix
	trans []transport.Transition
	moved chan struct{} // a transition happened
	done  chan struct{} // the subscription ended
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 4<<20 {
		return len(p), nil
	}
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// newRun creates the node with secret (the cluster's unless given) and a
// ledger writing rate writes a second; nothing is attached or written yet.
func newRun(t *testing.T, c *repramtest.Cluster, secret string, rate float64, spread bool) *run {
	t.Helper()
	r := &run{t: t, c: c, logs: &syncBuffer{}, moved: make(chan struct{}, 1), done: make(chan struct{})}
	log := zerolog.New(r.logs).With().Timestamp().Logger().Level(zerolog.DebugLevel)
	var err error
	r.led, err = ledger.New(ledger.Config{Substrates: c.Ledger(), Prefix: fmt.Sprintf("hv-%d-", time.Now().UnixNano()),
		Rate: rate, Spread: spread, Node: func() (string, string) {
			st := r.node.Status()
			cand := ""
			if len(st.Candidates) > 0 {
				cand = st.Candidates[0].ID
			}
			return st.Primary.ID, cand
		}})
	if err != nil {
		t.Fatal(err)
	}
	r.node, err = transport.New(transport.Config{
		Identity: transport.Identity{NodeID: "handover-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")),
			Enclave: c.Nodes[0].Enclave, Address: "127.0.0.1"},
		Secret: transport.Secret(secret),
		Handler: func(g transport.Gossip) {
			r.led.Delivered(g)
			r.mu.Lock()
			if r.types == nil {
				r.types = map[string]int{}
			}
			r.types[string(g.Type)+"/"+string(g.Message.Type)+"/"+g.Message.Key[:min(3, len(g.Message.Key))]]++
			r.mu.Unlock()
		},
		Logger: &log,
	})
	if err != nil {
		t.Fatal(err)
	}
	ch := r.node.Subscribe(4096)
	go func() {
		defer close(r.done)
		for tr := range ch {
			r.led.Transition(tr)
			r.mu.Lock()
			r.trans = append(r.trans, tr)
			r.mu.Unlock()
			select {
			case r.moved <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		r.led.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.node.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		<-r.done
		if t.Failed() {
			t.Logf("transitions:\n%s\ntransport log (tail):\n%s", r.timeline(), tail(r.logs.String(), 12000))
		}
	})
	return r
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// timeline is the transitions so far, one a line.
func (r *run) timeline() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, tr := range r.trans {
		fmt.Fprintf(&b, "%s %s --%s--> %s primary=%q candidate=%q %s\n", tr.At.Format("15:04:05.000"),
			tr.Step.From, tr.Step.Event, tr.Step.To, tr.Primary, tr.Candidate, tr.Reason)
	}
	return b.String()
}

// transitions returns a copy of the transitions so far.
func (r *run) transitions() []transport.Transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]transport.Transition(nil), r.trans...)
}

// attach attaches to s and waits (bounded) for the node to be attached
// to it.
func (r *run) attach(s *repramtest.Substrate) {
	r.t.Helper()
	if err := r.node.Attach(context.Background(), s.Transport()); err != nil {
		r.t.Fatal(err)
	}
	if !r.waitFor(10*time.Second, func(st transport.Status) bool { return st.State == fsm.Attached && st.Primary.ID == s.ID }) {
		r.t.Fatalf("not attached to %s within 10s: %+v", s.ID, r.node.Status())
	}
}

// waitFor polls the node's status until cond holds or d passes.
func (r *run) waitFor(d time.Duration, cond func(transport.Status) bool) bool {
	deadline := time.Now().Add(d)
	for i := 0; i < 100000 && time.Now().Before(deadline); i++ {
		if cond(r.node.Status()) {
			return true
		}
		select {
		case <-r.moved:
		case <-time.After(10 * time.Millisecond):
		}
	}
	return cond(r.node.Status())
}

// settled waits until the node has a primary and is not migrating.
func settled(st transport.Status) bool {
	return st.Primary.ID != "" && (st.State == fsm.Attached || st.State == fsm.Cooldown)
}

// cycle feeds one evaluation cycle in which target is clearly better
// (1 ms against 10 ms) and every other substrate is as slow as the primary.
func (r *run) cycle(target string) {
	r.t.Helper()
	obs := transport.Observation{CurrentLatency: 10 * time.Millisecond}
	for _, s := range r.c.Nodes {
		if s.Exited() {
			continue
		}
		lat := 10 * time.Millisecond
		if s.ID == target {
			lat = time.Millisecond
		}
		obs.Candidates = append(obs.Candidates, transport.Candidate{Substrate: s.Transport(), Latency: lat})
	}
	if _, err := r.node.Observe(context.Background(), obs); err != nil {
		r.t.Fatalf("observe: %v", err)
	}
}

// migrate drives the default policy to move the node to target: cycles
// of 200 ms in which target is clearly better, until the node is attached
// to it (bounded), then cycles until the cooldown is over.
func (r *run) migrate(target string) {
	r.t.Helper()
	r.avoid(target)
	// 35 s: room for one migration cancelled at OverlapMax (15 s) and
	// retried, which a loaded machine causes (docs/interop.md).
	deadline := time.Now().Add(35 * time.Second)
	for i := 0; i < 300 && time.Now().Before(deadline); i++ {
		r.cycle(target)
		if r.waitFor(200*time.Millisecond, func(st transport.Status) bool { return settled(st) && st.Primary.ID == target }) {
			for j := 0; j < 5 && r.node.Status().State == fsm.Cooldown; j++ {
				r.cycle(target)
			}
			return
		}
	}
	r.t.Fatalf("no migration to %s within 35s: %+v", target, r.node.Status())
}

// avoid stops writing on target and waits for writes in flight there to
// land (ledger.Ledger.Avoid says why).
func (r *run) avoid(target string) {
	r.led.Avoid(target)
	time.Sleep(2 * time.Second)
}

// finish stops the writes, lets what was written arrive, and returns the
// ledger's report.
func (r *run) finish() ledger.Report {
	r.t.Helper()
	r.led.Stop()
	// Gossip in flight reaches the node within milliseconds on loopback;
	// wait until nothing new arrives for 500 ms (bounded by 5 s).
	last, stable := r.node.Status().Stats.Delivered, time.Now()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && time.Since(stable) < 500*time.Millisecond; {
		time.Sleep(50 * time.Millisecond)
		if d := r.node.Status().Stats.Delivered; d != last {
			last, stable = d, time.Now()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return r.led.Report(ctx)
}
