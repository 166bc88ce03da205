package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport/substratetest"
	"github.com/repram/handover/transport/wire"
)

func (h *harness) publishedLen() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.published)
}

// logSink captures a node's zerolog output for assertions on logged reasons.
type logSink struct {
	mu    sync.Mutex
	lines [][]byte
	part  bytes.Buffer
}

// newLogSink makes cfg log everything, at debug level, into the sink.
func newLogSink(cfg *Config) *logSink {
	s := &logSink{}
	l := zerolog.New(s).Level(zerolog.DebugLevel)
	cfg.Logger = &l
	return s
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.part.Write(p)
	for {
		line, err := s.part.ReadBytes('\n')
		if err != nil {
			s.part.Write(line) // an incomplete line waits for the rest
			return len(p), nil
		}
		s.lines = append(s.lines, line)
	}
}

func (s *logSink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lines)
}

// has reports whether a line from index since on has message msg and every
// field of want (a field's value must contain the wanted text).
func (s *logSink) has(since int, msg string, want map[string]string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, line := range s.lines[min(since, len(s.lines)):] {
		var e map[string]any
		if json.Unmarshal(line, &e) != nil || e["message"] != msg {
			continue
		}
		ok := true
		for k, v := range want {
			if got, _ := e[k].(string); !strings.Contains(got, v) {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(bytes.Join(s.lines, nil))
}

// Back-pressure, the fault that is not an event. A primary that stops
// reading: the node's Send is bounded by its ctx and never blocks the event
// loop; a write cut short by the ctx leaves a partial WebSocket frame, so
// the library closes the link, the node sees old_died and reattaches
// elsewhere. Heartbeats and the suspicion timeout would find the dead
// reader too (an unanswered ping): they are a minute apart here, and sub-a
// stops reading only once it has answered the first ping, so the Send is
// what breaks it however slow the machine.
func TestSendToPrimaryThatStopsReading(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.Tuning.HeartbeatInterval = time.Minute
	cfg.Tuning.SuspectMin, cfg.Tuning.SuspectMax = time.Minute, time.Minute
	cfg.Tuning.HandshakeTimeout = 5 * time.Second // a bound: sub-b's welcome waits for the test
	h, a, b, _ := setup(t, cfg)
	// sub-b answers the node's hello only once the test has stopped
	// sending: a Send meant for sub-a never reaches it as the new primary
	// (cut mid-frame by its ctx, it would break sub-b too).
	hold := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(hold) }) }
	t.Cleanup(release)
	b.SetOnHello(func(wire.Hello) { <-hold })
	h.eventually("sub-a answered the first ping", func() bool { return h.node.Status().PrimaryRTT > 0 })
	a.UpdateFaults(func(f *substratetest.Faults) { f.NoRead = true })

	done := make(chan struct{})
	loopErr := make(chan error, 1)
	go func() {
		defer close(loopErr)
		for {
			select {
			case <-done:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := h.node.Observe(ctx, Observation{})
			cancel()
			if err != nil {
				loopErr <- fmt.Errorf("the event loop did not answer while a Send was blocked: %w", err)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	// The timeout is the expected outcome once the socket buffers are
	// full. Before that, a write of big takes well under it on a quiet
	// machine, but may take most of it under -race on a loaded one: one
	// that ends as its ctx expires is the case handled below.
	const sendTimeout = 200 * time.Millisecond
	big := wire.Message{Type: "PUT", From: "t1", Timestamp: time.Now().Unix(), MessageID: "big", Data: make([]byte, 256<<10)}
	// send is one Send bounded by sendTimeout; late says it returned nil
	// after its ctx had expired. A Send that outlives its ctx by far (a
	// write that ignores it) fails the test rather than hanging it.
	send := func(timeout time.Duration) (late bool, err error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		res := make(chan error, 1)
		go func() { res <- h.node.Send(ctx, wire.TypePut, big) }()
		select {
		case err = <-res:
		case <-time.After(10 * time.Second):
			t.Fatalf("a Send to a primary that does not read outlived its %v ctx by 10s: the write is not bounded by its ctx", timeout)
		}
		return err == nil && ctx.Err() != nil, err
	}
	var (
		err        error
		late, prev bool
		sends      int
	)
	for sends = 1; sends <= 1000; sends++ {
		prev = late
		if late, err = send(sendTimeout); err != nil {
			break
		}
	}
	close(done)
	if e := <-loopErr; e != nil {
		t.Fatal(e)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		t.Logf("send %d blocked until its ctx expired: %v", sends, err)
	case errors.Is(err, ErrDetached) && prev:
		// The write before returned as its ctx expired: the library closes
		// the connection then, though the write went through
		// (TestSendAfterAWriteCutAtItsEndIsErrDetached), so this Send
		// found the primary gone.
		t.Logf("send %d ended as its ctx expired and the library closed the link; send %d: %v", sends-1, sends, err)
	default:
		t.Fatalf("after %d sends to a primary that does not read: %v, want context.DeadlineExceeded "+
			"(or ErrDetached right after a send that ended as its ctx expired)", sends, err)
	}
	// Under load the ctx may also expire before the write starts, and the
	// link is then intact: Send encodes big within it, which takes about
	// 45ms under -race on a quiet machine, more than the whole 200ms at
	// load 12 (50 such sends in a row in 1 run of 20). More sends break
	// it mid-frame, each with a ctx long enough to reach the write, until
	// the node has left sub-a. On a quiet machine the first send already
	// did, and these find the link closed at once.
	until := time.Now().Add(10 * time.Second)
	for i := 0; i < 100 && time.Now().Before(until) && h.node.Status().Primary.ID == "sub-a" && !h.took(fsm.OldDied, fsm.Joining); i++ {
		_, _ = send(time.Second) // the outcome is what the node does next
	}
	h.eventually("the broken primary dropped", func() bool { return h.took(fsm.OldDied, fsm.Joining) })
	release()
	h.waitAttached("sub-b")
	from := h.publishedLen()
	h.publishMore(10)
	h.exactlyOnceFrom(from)
}

// A handler that stalls holds at most DeliveryBuffer messages in the node;
// the links stop reading, the substrate keeps the rest, the event loop keeps
// answering, and nothing is lost once the handler resumes.
func TestSlowHandlerBackPressure(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.DeliveryBuffer = 16
	cfg.Tuning.MissedHeartbeats = 2
	cfg.Tuning.HeartbeatInterval = 50 * time.Millisecond
	cfg.Tuning.SuspectMin, cfg.Tuning.SuspectMax = 100*time.Millisecond, 200*time.Millisecond
	mesh := substratetest.NewMesh(substratetest.MeshConfig{Secret: cfg.Secret})
	t.Cleanup(mesh.Close)
	a, err := mesh.Start(substratetest.Config{ID: "sub-a"})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var mu sync.Mutex
	got := map[string]int{}
	cfg.Handler = func(g Gossip) {
		<-release
		mu.Lock()
		got[g.Message.MessageID]++
		mu.Unlock()
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, node: n}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if err := n.Attach(context.Background(), sub(a)); err != nil {
		t.Fatal(err)
	}
	h.waitAttached("sub-a")
	const total = 300
	var ids []string
	for range total {
		m, err := mesh.Publish(wire.Message{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.MessageID)
	}
	h.eventually("the delivery buffer full", func() bool { return n.Status().Stats.Delivered == cfg.DeliveryBuffer })
	// Stay stuck past MissedHeartbeats pings on silence: the parked reader
	// cannot read pongs, and that must not be taken for a dead link. Until
	// then the loop answers while the handler is stuck, and accepts no more.
	// MissedHeartbeats pings counted as failed (the link then dies) end the
	// wait too: the checks below then fail.
	starvedPings := func() uint64 {
		var got uint64
		if err := n.call(context.Background(), func() error {
			if id, _, ok := n.eng.Primary(); ok && n.links[id] != nil {
				got = n.links[id].starvedPings.Load()
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	h.eventually("MissedHeartbeats pings lost to the parked reader", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := n.Observe(ctx, Observation{}); err != nil {
			t.Fatalf("event loop blocked by a stuck handler: %v", err)
		}
		st := n.Status().Stats
		if st.Delivered > cfg.DeliveryBuffer {
			t.Fatalf("%d messages accepted while the handler was stuck, buffer %d", st.Delivered, cfg.DeliveryBuffer)
		}
		return st.PingsFailed >= cfg.Tuning.MissedHeartbeats || starvedPings() >= uint64(cfg.Tuning.MissedHeartbeats)
	})
	close(release)
	h.eventually("every message handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == total
	})
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("message %s handled %d times", id, got[id])
		}
	}
	if st := n.Status(); st.Stats.Detaches != 0 || st.Stats.Suspected != 0 || st.Primary.ID != "sub-a" {
		t.Errorf("back-pressure cost the link: %+v on %q", st.Stats, st.Primary.ID)
	}
}
