package transport

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/policy"
	"github.com/repram/handover/transport/engine"
	"github.com/repram/handover/transport/substratetest"
	"github.com/repram/handover/transport/wire"
)

// TestMain checks for leaked goroutines. The socket tests mostly wait on
// loopback round trips and timers, not on the CPU, so unless -parallel is
// given they run eight at a time rather than GOMAXPROCS (two here; twelve
// starved handshakes in 2 runs of 12 at load ~6); four under the race
// detector, whose CPU cost would otherwise stretch the handshakes and probes
// some tests measure or race against.
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		parallel := "8"
		if raceEnabled {
			parallel = "4"
		}
		_ = flag.Set("test.parallel", parallel)
	}
	goleak.VerifyTestMain(m)
}

var testSecret = []byte("harness-test-secret")

// harness runs a simulated mesh and one transient node on loopback, and
// counts every delivery by message id.
type harness struct {
	t    *testing.T
	mesh *substratetest.Mesh
	node *Node

	mu        sync.Mutex
	delivered map[string]int
	steps     []Transition
	published []string
}

// fastConfig has timings short enough for tests; they are bounds, not
// assertions. OverlapGrace, the margin while no message came on both links,
// covers an old link stalled by a loaded machine; OverlapFloor can be short,
// since the old link delivers in order and a measured skew includes the
// machine's jitter.
func fastConfig() Config {
	return Config{
		Identity: Identity{NodeID: "t1", Enclave: substratetest.DefaultEnclave, Address: "127.0.0.1"},
		Secret:   testSecret,
		Tuning: engine.Tuning{
			HandshakeTimeout:  time.Second,
			OverlapFloor:      20 * time.Millisecond,
			OverlapGrace:      100 * time.Millisecond,
			OverlapMax:        2 * time.Second,
			HeartbeatInterval: 200 * time.Millisecond,
			RejoinBackoff:     20 * time.Millisecond,
			RejoinBackoffMax:  200 * time.Millisecond,
		},
	}
}

// timeoutConfig is fastConfig for a test whose candidate is meant to time
// out: its handshake timeout, 150ms, is still dozens of loopback handshakes
// long, and the test waits it out only once.
func timeoutConfig() Config {
	c := fastConfig()
	c.Tuning.HandshakeTimeout = 150 * time.Millisecond
	return c
}

// testGoodbyeGap is the mesh's gap between a shutdown's two goodbyes:
// shorter than REPRAM's 500ms, so shutdowns in tests are quick.
const testGoodbyeGap = 20 * time.Millisecond

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	return newHarnessGap(t, cfg, testGoodbyeGap)
}

// newHarnessGap is newHarness with the given goodbye gap.
func newHarnessGap(t *testing.T, cfg Config, gap time.Duration) *harness {
	t.Helper()
	h := &harness{t: t, delivered: map[string]int{},
		mesh: substratetest.NewMesh(substratetest.MeshConfig{Secret: cfg.Secret, GoodbyeGap: gap})}
	cfg.Handler = func(g Gossip) {
		h.mu.Lock()
		h.delivered[g.Message.MessageID]++
		h.mu.Unlock()
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.node = n
	ch := n.Subscribe(1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for tr := range ch {
			h.mu.Lock()
			h.steps = append(h.steps, tr)
			h.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		<-done
		h.mesh.Close()
	})
	return h
}

func (h *harness) start(id string, delay time.Duration) *substratetest.Server {
	h.t.Helper()
	s, err := h.mesh.Start(substratetest.Config{ID: id, Delay: delay})
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func sub(s *substratetest.Server) Substrate {
	return Substrate{ID: s.ID(), URL: s.URL(), Enclave: s.Enclave()}
}

// eventually polls cond until it holds or the bound passes.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			st := h.node.Status()
			h.t.Fatalf("timed out waiting for %s; state %s primary %q candidates %v stats %+v\nsteps:\n%s",
				what, st.State, st.Primary.ID, st.Candidates, st.Stats, h.timeline())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *harness) attach(s *substratetest.Server) {
	h.t.Helper()
	if err := h.node.Attach(context.Background(), sub(s)); err != nil {
		h.t.Fatal(err)
	}
	h.waitAttached(s.ID())
}

// waitAttached waits for a settled attachment (attached or cooldown) to id.
func (h *harness) waitAttached(id string) {
	h.t.Helper()
	h.eventually("attached to "+id, func() bool {
		st := h.node.Status()
		return st.Primary.ID == id && len(st.Candidates) == 0 && (st.State == fsm.Attached || st.State == fsm.Cooldown)
	})
}

func (h *harness) waitState(s fsm.State) {
	h.t.Helper()
	h.eventually("state "+string(s), func() bool { return h.node.Status().State == s })
}

// observe feeds one cycle where each candidate has the given latency and
// the primary 100ms.
func (h *harness) observe(cands map[*substratetest.Server]time.Duration) policy.Decision {
	h.t.Helper()
	obs := Observation{CurrentLatency: 100 * time.Millisecond}
	for s, d := range cands {
		obs.Candidates = append(obs.Candidates, Candidate{Substrate: sub(s), Latency: d})
	}
	d, err := h.node.Observe(context.Background(), obs)
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

// publishOne publishes one message in the mesh and remembers its id.
func (h *harness) publishOne() error {
	msg, err := h.mesh.Publish(wire.Message{Type: "PUT", From: "publisher", Key: "k", Data: []byte("v"), TTL: 300})
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.published = append(h.published, msg.MessageID)
	h.mu.Unlock()
	return nil
}

// publishing publishes one message every gap in the background until the
// returned stop is called, or the test ends: the goroutine never outlives
// the test, whichever way it ends. It publishes at least one message even
// when stop comes before the goroutine first runs, so a check of what was
// published never finds nothing because of scheduling.
func (h *harness) publishing(gap time.Duration) (stop func()) {
	var quit atomic.Bool
	done := make(chan struct{})
	var failed error
	go func() {
		defer close(done)
		for first := true; first || !quit.Load(); first = false {
			if err := h.publishOne(); err != nil {
				failed = err
				return
			}
			time.Sleep(gap)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			quit.Store(true)
			<-done
			if failed != nil {
				h.t.Errorf("publish: %v", failed)
			}
		})
	}
	h.t.Cleanup(stop)
	return stop
}

// publishMore waits until n more messages were published, so that a check
// that follows covers traffic from after the moment it is called (a switch
// of primary, say).
func (h *harness) publishMore(n int) {
	h.t.Helper()
	from := h.publishedLen()
	h.eventually(fmt.Sprintf("%d more messages published", n), func() bool { return h.publishedLen() >= from+n })
}

// settle feeds empty cycles until the policy's cooldown after the last
// change of attachment is over.
func (h *harness) settle() {
	h.t.Helper()
	for range 5 {
		if h.observe(nil).Event == fsm.CooldownElapsed {
			return
		}
	}
	h.t.Fatal("the policy never ended its cooldown")
}

// exactlyOnce waits until every published message was delivered and checks
// none was delivered twice.
func (h *harness) exactlyOnce() {
	h.t.Helper()
	h.exactlyOnceFrom(0)
}

// exactlyOnceFrom waits until every message published from index first on
// was delivered, and checks no message was delivered twice.
func (h *harness) exactlyOnceFrom(first int) {
	h.t.Helper()
	h.mu.Lock()
	req := slices.Clone(h.published[min(first, len(h.published)):])
	h.mu.Unlock()
	if len(req) == 0 {
		h.t.Error("nothing required was published: the check proves nothing")
	}
	h.eventually(fmt.Sprintf("%d required messages delivered", len(req)), func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, id := range req {
			if h.delivered[id] == 0 {
				return false
			}
		}
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, n := range h.delivered {
		if n != 1 {
			h.t.Errorf("message %s delivered %d times", id, n)
		}
	}
}

func (h *harness) timeline() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b []byte
	for _, s := range h.steps {
		b = fmt.Appendf(b, "  %s --%s--> %s [%s] primary=%s candidate=%s: %s\n",
			s.Step.From, s.Step.Event, s.Step.To, s.Step.Path, s.Primary, s.Candidate, s.Reason)
	}
	return string(b)
}

// took reports whether some transition went to state to on event e.
func (h *harness) took(e fsm.Event, to fsm.State) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.steps {
		if s.Step.Event == e && s.Step.To == to {
			return true
		}
	}
	return false
}

// post hands the loop one input as a link's report, through a mailbox of
// its own; false once the loop has exited. Not for GossipReceived: the loop
// would wait for the delivery credit no reader took.
func (n *Node) post(in engine.Input) bool {
	return new(link).postInput(n.env, in)
}
