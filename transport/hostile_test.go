package transport

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport/dedup"
	"github.com/repram/handover/transport/substratetest"
	"github.com/repram/handover/transport/wire"
)

// Hostile peers: a substrate (or something posing as one) that sends what
// the protocol does not allow. Each case checks the logged reason and that
// the node stays attached to a healthy substrate.

// signedPut encodes a put the way a substrate forwards it, signed with the
// harness secret.
func signedPut(t *testing.T, msg wire.Message) []byte {
	t.Helper()
	if msg.Type == "" {
		msg.Type = "PUT"
	}
	if msg.From == "" {
		msg.From = "hostile"
	}
	if msg.Timestamp == 0 {
		msg.Timestamp = time.Now().Unix()
	}
	f, err := wire.Encode(wire.TypePut, msg, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// putOfSize is a signed put frame of exactly size bytes, padded in its key.
func putOfSize(t *testing.T, id string, size int) []byte {
	t.Helper()
	msg := wire.Message{MessageID: id, Timestamp: time.Now().Unix()}
	f := signedPut(t, msg)
	for range 10 {
		if len(f) == size {
			return f
		}
		pad := len(msg.Key) + size - len(f)
		if msg.Key == "" {
			pad -= len(`,"key":""`)
		}
		msg.Key = strings.Repeat("k", max(pad, 1))
		f = signedPut(t, msg)
	}
	t.Fatalf("cannot build a %d-byte frame (got %d)", size, len(f))
	return nil
}

func (h *harness) deliveredCount(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.delivered[id]
}

func TestHostileFrameSizes(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.ReadLimit = 4096
	sink := newLogSink(&cfg)
	h, a, _, stop := setup(t, cfg)

	send := func(frame []byte) {
		t.Helper()
		if err := a.SendRaw("t1", websocket.MessageText, frame); err != nil {
			t.Fatal(err)
		}
	}
	// At the limit: accepted.
	send(putOfSize(t, "at-limit", int(cfg.ReadLimit)))
	h.eventually("a frame at the read limit delivered", func() bool { return h.deliveredCount("at-limit") == 1 })

	// Just over: rejected and drained, the link kept.
	mark := sink.len()
	send(putOfSize(t, "over-limit", int(cfg.ReadLimit)+1))
	h.eventually("a frame over the read limit rejected", func() bool {
		return sink.has(mark, "frame rejected", map[string]string{"error": "exceeds the read limit"})
	})
	before := h.node.Status().Stats.Delivered
	h.eventually("gossip still flowing on the same link", func() bool { return h.node.Status().Stats.Delivered > before+5 })
	if st := h.node.Status(); st.Primary.ID != "sub-a" || st.Stats.Detaches != 0 || st.Stats.FramesRejected != 1 {
		t.Fatalf("after an oversized frame: primary %q, stats %+v; want sub-a kept, one frame rejected", st.Primary.ID, st.Stats)
	}
	// Up to 8× the limit: still drained.
	send(putOfSize(t, "at-hard-limit", 8*int(cfg.ReadLimit)))
	h.eventually("a frame at 8× the limit rejected", func() bool { return h.node.Status().Stats.FramesRejected == 2 })

	// Beyond 8×: the WebSocket library closes the link; the node rejoins.
	mark = sink.len()
	if err := a.SendRaw("t1", websocket.MessageText, putOfSize(t, "huge", 8*int(cfg.ReadLimit)+1)); err != nil {
		t.Logf("sending the huge frame: %v (the node may close first)", err)
	}
	h.eventually("the huge frame closed the link (logged)", func() bool {
		return sink.has(mark, "transition", map[string]string{"event": "old_died", "reason": "closed by the library"})
	})
	h.eventually("attached again", func() bool {
		st := h.node.Status()
		return st.Primary.URL != "" && len(st.Candidates) == 0 && (st.State == fsm.Attached || st.State == fsm.Cooldown)
	})
	from := h.publishedLen()
	h.publishMore(10)
	stop()
	h.exactlyOnceFrom(from)
	for _, id := range []string{"over-limit", "at-hard-limit", "huge"} {
		if n := h.deliveredCount(id); n != 0 {
			t.Errorf("oversized frame %s delivered %d times", id, n)
		}
	}
}

func TestHostileIDFloodKeepsDedupBounded(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.Tuning.Dedup = dedup.Config{Capacity: 250, Window: time.Minute}
	h, _, _, stop := setup(t, cfg)
	stop()
	dedupLen := func() (n int, st dedup.Stats) {
		if err := h.node.call(context.Background(), func() error {
			st, n = h.node.eng.DedupStats()
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return n, st
	}
	const flood = 5 * 250
	peak := 0
	for i := range flood {
		if err := h.publishOne(); err != nil {
			t.Fatal(err)
		}
		if i%250 == 249 {
			// Pace the flood so the substrate's queue to us never overflows.
			h.eventually("flood delivered so far", func() bool { return h.node.Status().Stats.Delivered >= i })
			n, _ := dedupLen()
			peak = max(peak, n)
		}
	}
	h.exactlyOnce()
	n, st := dedupLen()
	peak = max(peak, n)
	if peak > cfg.Tuning.Dedup.Capacity {
		t.Fatalf("dedup held %d ids, capacity %d", peak, cfg.Tuning.Dedup.Capacity)
	}
	if st.Evicted == 0 {
		t.Fatalf("dedup stats %+v: a flood of %d unique ids past capacity %d evicted nothing", st, flood, cfg.Tuning.Dedup.Capacity)
	}
	t.Logf("flood of %d unique ids: dedup peak %d (capacity %d), stats %+v", flood, peak, cfg.Tuning.Dedup.Capacity, st)
}

func TestHostileReplayedFrames(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	sink := newLogSink(&cfg)
	h, a, _, stop := setup(t, cfg)
	send := func(frame []byte) {
		t.Helper()
		if err := a.SendRaw("t1", websocket.MessageText, frame); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	// Within the dedup window a replay is a duplicate: dropped.
	fresh := signedPut(t, wire.Message{MessageID: "replay-fresh", Timestamp: now.Unix()})
	send(fresh)
	send(fresh)
	// A capture older than MaxMessageAge (its id long out of the window)
	// is dropped by age, with a logged reason, and the link kept.
	mark := sink.len()
	send(signedPut(t, wire.Message{MessageID: "replay-old", Timestamp: now.Add(-2 * time.Minute).Unix()}))
	// Clock skew is tolerated: a bit old or a bit in the future is fine.
	send(signedPut(t, wire.Message{MessageID: "skew-behind", Timestamp: now.Add(-30 * time.Second).Unix()}))
	send(signedPut(t, wire.Message{MessageID: "skew-ahead", Timestamp: now.Add(30 * time.Second).Unix()}))
	h.eventually("skewed messages delivered", func() bool {
		return h.deliveredCount("skew-behind") == 1 && h.deliveredCount("skew-ahead") == 1
	})
	if !sink.has(mark, "gossip dropped: older than MaxMessageAge (a replay past the dedup window, or a publisher clock far behind)",
		map[string]string{"message_id": "replay-old"}) {
		t.Errorf("no logged reason for the old replay:\n%s", sink)
	}
	stop()
	h.exactlyOnce()
	st := h.node.Status()
	if h.deliveredCount("replay-fresh") != 1 || h.deliveredCount("replay-old") != 0 {
		t.Fatalf("replay-fresh delivered %d times, replay-old %d; want 1 and 0",
			h.deliveredCount("replay-fresh"), h.deliveredCount("replay-old"))
	}
	if st.Stats.TooOld != 1 || st.Stats.DuplicatesDropped < 1 || st.Primary.ID != "sub-a" {
		t.Fatalf("stats %+v on %q: want one too old, a duplicate, sub-a kept", st.Stats, st.Primary.ID)
	}
}

func TestHostileWelcomeNamingAnotherNode(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	sink := newLogSink(&cfg)
	h, _, b, stop := setup(t, cfg)
	b.UpdateFaults(func(f *substratetest.Faults) { f.WelcomeParentID = "sub-x" })
	h.tryMigrate(b)
	h.keptOld(stop, fsm.NewFailed)
	if !sink.has(0, "frame rejected", map[string]string{"error": `welcome names parent "sub-x", dialed "sub-b"`}) {
		t.Errorf("no logged reason for the foreign welcome:\n%s", sink)
	}
}

func TestHostileSlowloris(t *testing.T) {
	t.Parallel()
	t.Run("websocket open, hello never answered", func(t *testing.T) {
		t.Parallel()
		cfg := timeoutConfig()
		sink := newLogSink(&cfg)
		h, _, b, stop := setup(t, cfg)
		b.UpdateFaults(func(f *substratetest.Faults) { f.MuteHello = true })
		h.tryMigrate(b)
		h.keptOld(stop, fsm.HandshakeTimeout)
		if !sink.has(0, "transition", map[string]string{"event": "handshake_timeout", "reason": "no welcome from"}) {
			t.Errorf("no logged reason for the mute candidate:\n%s", sink)
		}
	})
	t.Run("tcp accepted, upgrade never answered", func(t *testing.T) {
		t.Parallel()
		cfg := timeoutConfig()
		sink := newLogSink(&cfg)
		h, _, _, stop := setup(t, cfg)
		tarpit := newTarpit(t)
		cand := Candidate{Substrate: Substrate{ID: "tarpit", URL: "ws://" + tarpit + "/v1/ws", Enclave: substratetest.DefaultEnclave},
			Latency: 10 * time.Millisecond}
		for range 2 {
			if _, err := h.node.Observe(context.Background(), Observation{CurrentLatency: 100 * time.Millisecond,
				Candidates: []Candidate{cand}}); err != nil {
				t.Fatal(err)
			}
		}
		h.keptOld(stop, fsm.HandshakeTimeout)
		if !sink.has(0, "transition", map[string]string{"event": "handshake_timeout", "reason": "no welcome from ws://" + tarpit}) {
			t.Errorf("no logged reason for the tarpit:\n%s", sink)
		}
	})
}

// newTarpit listens on loopback, accepts connections and never answers; it
// closes them when the test ends. It returns its address.
func newTarpit(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

func TestHostileGossipBeforeWelcome(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	sink := newLogSink(&cfg)
	h, _, b, stop := setup(t, cfg)
	early := signedPut(t, wire.Message{MessageID: "before-welcome"})
	sent := make(chan error, 1)
	b.UpdateFaults(func(f *substratetest.Faults) { f.WelcomeDelay = 300 * time.Millisecond })
	b.SetOnHello(func(wire.Hello) {
		go func() { sent <- b.SendRaw("t1", websocket.MessageText, early) }()
	})
	h.tryMigrate(b)
	if err := <-sent; err != nil {
		// The node may drop the link on this very frame before the
		// substrate reports the write done; the logged rejection below
		// shows whether it arrived.
		t.Logf("send before the welcome: %v", err)
	}
	h.keptOld(stop, fsm.NewFailed)
	if !sink.has(0, "frame rejected", map[string]string{"error": "put before welcome"}) {
		t.Errorf("no logged reason for gossip before welcome:\n%s", sink)
	}
	if n := h.deliveredCount("before-welcome"); n != 0 {
		t.Fatalf("gossip sent before the welcome was delivered %d times", n)
	}
}
