package substratetest_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/repram/handover/transport/substratetest"
	"github.com/repram/handover/transport/wire"
)

// TestMain checks for leaked goroutines. The tests that wait on timers
// (delays, hangs, write timeouts) run in parallel, after the others, and
// unless -parallel is given four at a time rather than GOMAXPROCS (two
// here): they wait more than they compute.
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", "4")
	}
	goleak.VerifyTestMain(m)
}

var secret = []byte("harness-test-secret")

func newMesh(t testing.TB, cfg substratetest.MeshConfig) *substratetest.Mesh {
	t.Helper()
	if cfg.GoodbyeGap == 0 {
		cfg.GoodbyeGap = 10 * time.Millisecond
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = time.Second
	}
	m := substratetest.NewMesh(cfg)
	t.Cleanup(m.Close)
	return m
}

func start(t testing.TB, m *substratetest.Mesh, cfg substratetest.Config) *substratetest.Server {
	t.Helper()
	s, err := m.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// attach dials s and completes a handshake as id in enclave.
func attach(t testing.TB, m *substratetest.Mesh, s *substratetest.Server, id, enclave string) *client {
	t.Helper()
	c := dial(t, s, m.Secret())
	c.hello(id, enclave)
	c.expectWelcome()
	return c
}

func TestHandshakeSignatures(t *testing.T) {
	m := newMesh(t, substratetest.MeshConfig{Secret: secret})
	s := start(t, m, substratetest.Config{ID: "a"})
	seen := hellos(s)
	c := dial(t, s, secret)

	c.send(wire.TypeHello, helloFor("unsigned", "default"), nil)
	c.send(wire.TypeHello, helloFor("badsig", "default"), []byte("wrong secret"))
	c.write([]byte("null-ish garbage"))
	c.hello("n1", "default")
	// The reader handles frames in order, so had the first two hellos been
	// answered, their replies would come before this welcome.
	w := c.expectWelcome()
	if got := recv(t, seen).NodeID; got != "n1" {
		t.Fatalf("accepted hello from %q, want only n1", got)
	}
	if w.YourPosition != (wire.Position{Depth: 1, ParentID: "a"}) {
		t.Fatalf("your_position = %+v", w.YourPosition)
	}
	if got := s.Children(); !slices.Equal(got, []string{"n1"}) {
		t.Fatalf("Children = %v, want [n1]", got)
	}
}

func TestHandshakeWithoutSecret(t *testing.T) {
	m := newMesh(t, substratetest.MeshConfig{})
	s := start(t, m, substratetest.Config{ID: "a"})
	c := dial(t, s, nil)
	c.hello("n1", "default")
	f := c.next()
	env, err := wire.Decode(f.data, nil)
	if err != nil || env.Type != wire.TypeWelcome || env.Signature != "" {
		t.Fatalf("want an unsigned welcome, got %s (%v)", f.data, err)
	}
}

func TestWelcomeTopology(t *testing.T) {
	m := newMesh(t, substratetest.MeshConfig{Secret: secret})
	a := start(t, m, substratetest.Config{ID: "a"})
	b := start(t, m, substratetest.Config{ID: "b", Enclave: "eu"})
	c := dial(t, a, secret)
	c.hello("n1", "default")
	w := c.expectWelcome()
	if len(w.Topology) != 2 {
		t.Fatalf("topology has %d entries, want 2: %+v", len(w.Topology), w.Topology)
	}
	for i, sub := range []*substratetest.Server{a, b} {
		msg := w.Topology[i]
		p := sub.Parent()
		want := wire.NodeInfo{ID: p.ID, Address: "127.0.0.1", Port: p.HTTPPort, HTTPPort: p.HTTPPort, Enclave: p.Enclave}
		if msg.Type != "SYNC" || msg.From != "a" || msg.NodeInfo == nil || *msg.NodeInfo != want {
			t.Fatalf("topology[%d] = %+v (node_info %+v), want a SYNC from a with %+v", i, msg, msg.NodeInfo, want)
		}
	}
	if want := fmt.Sprintf("ws://127.0.0.1:%d/v1/ws", a.Parent().HTTPPort); a.URL() != want {
		t.Fatalf("URL = %s, want %s", a.URL(), want)
	}
	if b.Enclave() != "eu" || a.Enclave() != substratetest.DefaultEnclave || b.ID() != "b" {
		t.Fatalf("ids/enclaves: %s/%s %s/%s", a.ID(), a.Enclave(), b.ID(), b.Enclave())
	}
}

func TestPublishSameEnclaveOnly(t *testing.T) {
	m := newMesh(t, substratetest.MeshConfig{Secret: secret})
	s := start(t, m, substratetest.Config{ID: "a"})
	same := attach(t, m, s, "same", "default")
	other := attach(t, m, s, "other", "Default") // exact match only

	const n = 100
	var sent []string
	for i := range n {
		msg, err := m.Publish(wire.Message{Key: fmt.Sprint("k", i), Data: []byte("v")})
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, msg.MessageID)
	}
	for i := range n {
		got := same.expectPut()
		if got.MessageID != sent[i] || got.From != substratetest.PublisherID || got.Type != "PUT" || got.Key != fmt.Sprint("k", i) {
			t.Fatalf("put %d = %+v, want id %s in order", i, got, sent[i])
		}
	}
	// Every fan-out is done: the other-enclave child's queue holds nothing.
	marker(t, s, "other")
	other.expectMarker()
	eventually(t, "all puts counted", func() bool { return m.Forwarded("same") == n })
	if m.Published() != n || m.Forwarded("other") != 0 || s.Forwarded("same") != n {
		t.Fatalf("Published %d, Forwarded same %d other %d", m.Published(), m.Forwarded("same"), m.Forwarded("other"))
	}
}

// writesOnX is a mesh of substrates x and y with one child each, onX and
// onY, for writes made directly on x.
func writesOnX(t *testing.T) (m *substratetest.Mesh, x *substratetest.Server, onX, onY *client) {
	t.Helper()
	m = newMesh(t, substratetest.MeshConfig{Secret: secret})
	x = start(t, m, substratetest.Config{ID: "x"})
	y := start(t, m, substratetest.Config{ID: "y"})
	return m, x, attach(t, m, x, "onX", "default"), attach(t, m, y, "onY", "default")
}

// expectNotForwardedToOwnChild checks REPRAM's rule that a write made on x
// is not forwarded to x's own children: once x has fanned out everything
// (Pending 0), a marker queued behind it is the next frame onX sees.
func expectNotForwardedToOwnChild(t *testing.T, x *substratetest.Server, onX *client) {
	t.Helper()
	eventually(t, "x handled the write", func() bool { return x.Pending() == 0 })
	marker(t, x, "onX")
	onX.expectMarker()
}

func TestPublishViaSkipsOwnChildren(t *testing.T) {
	m, x, onX, onY := writesOnX(t)

	msg, err := m.PublishVia("x", wire.Message{})
	if err != nil {
		t.Fatal(err)
	}
	if got := onY.expectPut(); got.MessageID != msg.MessageID || got.From != "x" {
		t.Fatalf("onY got %+v, want %s from x", got, msg.MessageID)
	}
	expectNotForwardedToOwnChild(t, x, onX)

	if _, err := m.PublishVia("nope", wire.Message{}); !errors.Is(err, substratetest.ErrUnknownSubstrate) {
		t.Fatalf("PublishVia unknown origin: %v", err)
	}
}

func TestHTTPPut(t *testing.T) {
	m, x, onX, onY := writesOnX(t)
	put := func(key, ttl string, body []byte) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPut, "http://"+x.Addr()+substratetest.DataPath+key, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ttl != "" {
			req.Header.Set("X-TTL", ttl)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}

	if code := put("k%2F1", "60", []byte("v")); code != http.StatusCreated {
		t.Fatalf("PUT: status %d, want 201", code)
	}
	if got := onY.expectPut(); got.Key != "k/1" || string(got.Data) != "v" || got.TTL != 60 || got.From != "x" {
		t.Fatalf("onY got %+v, want key k/1, data v, ttl 60, from x", got)
	}
	expectNotForwardedToOwnChild(t, x, onX)

	for _, tt := range []struct {
		name, ttl string
		body      []byte
		want      int
	}{
		{"ttl not a number", "soon", nil, http.StatusBadRequest},
		{"ttl zero", "0", nil, http.StatusBadRequest},
		{"value over MaxValue", "60", make([]byte, substratetest.MaxValue+1), http.StatusRequestEntityTooLarge},
	} {
		if code := put("bad", tt.ttl, tt.body); code != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, code, tt.want)
		}
	}
	if m.Published() != 1 {
		t.Fatalf("Published = %d, want 1: refused writes must not enter the mesh", m.Published())
	}
}

func TestChildPutIsAckedAndGossiped(t *testing.T) {
	m := newMesh(t, substratetest.MeshConfig{Secret: secret})
	x := start(t, m, substratetest.Config{ID: "x"})
	y := start(t, m, substratetest.Config{ID: "y"})
	writer := attach(t, m, x, "writer", "default")
	sibling := attach(t, m, x, "sibling", "default")
	onY := attach(t, m, y, "onY", "default")

	put := wire.Message{Type: "PUT", From: "writer", Timestamp: 1, MessageID: "w-1", Key: "k", Data: []byte("hi"), TTL: 60}
	writer.send(wire.TypePut, put, secret)
	ack, err := writer.expect(wire.TypeAck).Message()
	if err != nil {
		t.Fatal(err)
	}
	if ack.Type != "ACK" || ack.From != "x" || ack.To != "writer" || ack.MessageID != "w-1" || ack.Key != "k" {
		t.Fatalf("ack = %+v", ack)
	}
	if got := onY.expectPut(); got.MessageID != "w-1" || got.From != "writer" || string(got.Data) != "hi" {
		t.Fatalf("onY got %+v", got)
	}
	marker(t, x, "sibling")
	sibling.expectMarker()
	if m.Published() != 1 {
		t.Fatalf("Published = %d, want 1", m.Published())
	}
}

func TestDelayKeepsOrder(t *testing.T) {
	t.Parallel()
	m := newMesh(t, substratetest.MeshConfig{Secret: secret})
	s := start(t, m, substratetest.Config{ID: "a", Delay: 50 * time.Millisecond})
	c := attach(t, m, s, "n1", "default")
	first, _ := m.Publish(wire.Message{})
	s.SetDelay(0)
	second, _ := m.Publish(wire.Message{})
	if s.Delay() != 0 {
		t.Fatalf("Delay = %v", s.Delay())
	}
	if a, b := c.expectPut(), c.expectPut(); a.MessageID != first.MessageID || b.MessageID != second.MessageID {
		t.Fatalf("order: got %s then %s, want %s then %s", a.MessageID, b.MessageID, first.MessageID, second.MessageID)
	}
}

func TestRefuseWithGoodbye(t *testing.T) {
	m := newMesh(t, substratetest.MeshConfig{Secret: secret})
	s := start(t, m, substratetest.Config{ID: "a"})
	peer := start(t, m, substratetest.Config{ID: "b"})
	alt := []wire.Parent{{ID: "z", Address: "10.0.0.1", HTTPPort: 1, Enclave: "default"}}

	s.UpdateFaults(func(f *substratetest.Faults) { f.Refuse, f.RefuseAlternatives = true, alt })
	c := dial(t, s, secret)
	c.hello("n1", "default")
	g := c.expectGoodbye()
	if g.Reason != "at capacity" || !slices.Equal(g.AlternativeParents, alt) {
		t.Fatalf("goodbye = %+v", g)
	}
	if code := c.expectEnd(); code != websocket.StatusNormalClosure {
		t.Fatalf("close status %v, want 1000", code)
	}
	if len(s.Children()) != 0 {
		t.Fatalf("refused child registered: %v", s.Children())
	}

	s.UpdateFaults(func(f *substratetest.Faults) { f.Refuse, f.RefuseAlternatives = true, nil }) // REPRAM's choice: live peers
	c = dial(t, s, secret)
	c.hello("n1", "default")
	if g := c.expectGoodbye(); !slices.Equal(g.AlternativeParents, []wire.Parent{peer.Parent()}) {
		t.Fatalf("default alternatives = %+v, want [%+v]", g.AlternativeParents, peer.Parent())
	}

	s.ClearFaults()
	attach(t, m, s, "n1", "default")
}

func TestMuteHello(t *testing.T) {
	m := newMesh(t, substratetest.MeshConfig{Secret: secret})
	s := start(t, m, substratetest.Config{ID: "a"})
	seen := hellos(s)
	s.UpdateFaults(func(f *substratetest.Faults) { f.MuteHello = true })
	if !s.Faults().MuteHello {
		t.Fatal("Faults().MuteHello not set")
	}
	c := dial(t, s, secret)
	c.hello("n1", "default")
	c.hello("n1", "default")
	recv(t, seen)
	recv(t, seen) // the first hello is fully handled
	marker(t, s, "n1")
	c.expectMarker()
	if len(s.Children()) != 0 {
		t.Fatalf("muted hello registered: %v", s.Children())
	}
}

func TestWelcomeDelay(t *testing.T) {
	t.Parallel()
	m := newMesh(t, substratetest.MeshConfig{Secret: secret})
	s := start(t, m, substratetest.Config{ID: "a"})
	seen := hellos(s)
	s.UpdateFaults(func(f *substratetest.Faults) { f.WelcomeDelay = 100 * time.Millisecond })
	c := dial(t, s, secret)
	c.hello("n1", "default")
	recv(t, seen)
	if len(s.Children()) != 0 {
		t.Fatalf("registered before the delayed welcome: %v", s.Children())
	}
	// The substrate keeps reading meanwhile: WebSocket pings are answered.
	ctx, cancel := contextWithWait()
	defer cancel()
	if err := c.ws.Ping(ctx); err != nil {
		t.Fatalf("ping during the welcome delay: %v", err)
	}
	c.expectWelcome()
	if !slices.Equal(s.Children(), []string{"n1"}) {
		t.Fatalf("Children = %v", s.Children())
	}
}

func TestNoForward(t *testing.T) {
	m := newMesh(t, substratetest.MeshConfig{Secret: secret})
	s := start(t, m, substratetest.Config{ID: "a"})
	c := attach(t, m, s, "n1", "default")
	s.UpdateFaults(func(f *substratetest.Faults) { f.NoForward = true })
	if _, err := m.Publish(wire.Message{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the substrate handled the message", func() bool { return s.Pending() == 0 })
	if !slices.Equal(s.Children(), []string{"n1"}) {
		t.Fatalf("NoForward child should stay registered: %v", s.Children())
	}
	s.UpdateFaults(func(f *substratetest.Faults) { f.NoForward = false })
	last, _ := m.Publish(wire.Message{})
	if got := c.expectPut(); got.MessageID != last.MessageID {
		t.Fatalf("got %s, want only the message published after NoForward was cleared (%s)", got.MessageID, last.MessageID)
	}
}

// A hung substrate neither reads (no pong), nor writes (no forwarded put,
// no heartbeat), nor drops the child; clearing the hang releases what was
// queued, in order.
func TestHang(t *testing.T) {
	t.Parallel()
	m := newMesh(t, substratetest.MeshConfig{Secret: secret})
	s := start(t, m, substratetest.Config{ID: "a"})
	c := attach(t, m, s, "n1", "default")
	s.UpdateFaults(func(f *substratetest.Faults) { f.Hang = true })
	msg, err := m.Publish(wire.Message{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := c.ws.Ping(ctx); err == nil {
		t.Fatal("a hung substrate answered a ping")
	}
	// The held put has not come in the ping's 100 ms nor after.
	c.quiet(50 * time.Millisecond)
	if !slices.Equal(s.Children(), []string{"n1"}) {
		t.Fatalf("a hung substrate dropped its child: %v", s.Children())
	}

	s.ClearFaults()
	if got := c.expectPut(); got.MessageID != msg.MessageID {
		t.Fatalf("after the hang got %s, want the held %s", got.MessageID, msg.MessageID)
	}
	ctx, cancel = contextWithWait()
	defer cancel()
	if err := c.ws.Ping(ctx); err != nil {
		t.Fatalf("ping after the hang: %v", err)
	}
}

// A hung substrate whose child's queue fills keeps the child: the newest
// frames are lost, not the connection (a stopped process closes nothing).
func TestHangKeepsAChildWhoseQueueFills(t *testing.T) {
	t.Parallel()
	m := newMesh(t, substratetest.MeshConfig{Secret: secret, QueueSize: 3})
	s := start(t, m, substratetest.Config{ID: "a"})
	c := attach(t, m, s, "n1", "default")
	s.UpdateFaults(func(f *substratetest.Faults) { f.Hang = true })
	var ids []string
	for range 6 {
		msg, err := m.Publish(wire.Message{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, msg.MessageID)
	}
	eventually(t, "the substrate handled the messages", func() bool { return s.Pending() == 0 })
	if !slices.Equal(s.Children(), []string{"n1"}) {
		t.Fatalf("a hung substrate dropped the child whose queue filled: %v", s.Children())
	}
	s.ClearFaults()
	// The queue held the first puts, in order: three, or two if the
	// welcome's slot was not yet released when the hang began.
	got := []string{c.expectPut().MessageID, c.expectPut().MessageID}
	select {
	case f := <-c.frames:
		env, err := wire.Decode(f.data, secret)
		if err != nil {
			t.Fatalf("after the hang: %v (%s)", err, f.data)
		}
		m, err := env.Message()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m.MessageID)
	case <-time.After(200 * time.Millisecond):
	}
	c.quiet(100 * time.Millisecond)
	if n := len(got); !slices.Equal(got, ids[:n]) {
		t.Fatalf("after the hang got %v, want the first two or three of %v", got, ids)
	}
}

// Stopping a hung substrate ends the hang: its goroutines end (goleak) and
// a graceful shutdown still says goodbye.
func TestShutdownWhileHung(t *testing.T) {
	m := newMesh(t, substratetest.MeshConfig{Secret: secret})
	s := start(t, m, substratetest.Config{ID: "a"})
	c := attach(t, m, s, "n1", "default")
	s.UpdateFaults(func(f *substratetest.Faults) { f.Hang = true })
	s.Shutdown(nil, false)
	if g := c.expectGoodbye(); g.Reason != "shutdown" {
		t.Fatalf("goodbye = %+v", g)
	}
}

func TestWelcomeParentID(t *testing.T) {
	m := newMesh(t, substratetest.MeshConfig{Secret: secret})
	s := start(t, m, substratetest.Config{ID: "a"})
	s.UpdateFaults(func(f *substratetest.Faults) { f.WelcomeParentID = "someone-else" })
	c := dial(t, s, secret)
	c.hello("n1", "default")
	if w := c.expectWelcome(); w.YourPosition.ParentID != "someone-else" {
		t.Fatalf("parent_id = %q", w.YourPosition.ParentID)
	}
}

func TestCorrupt(t *testing.T) {
	tests := []struct {
		mode    substratetest.Corruption
		binary  bool
		wantErr error
	}{
		{substratetest.CorruptMalformed, false, wire.ErrMalformed},
		{substratetest.CorruptUnsigned, false, wire.ErrUnsigned},
		{substratetest.CorruptBadSignature, false, wire.ErrBadSignature},
		{substratetest.CorruptNull, false, wire.ErrMalformed},
		{substratetest.CorruptBinary, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			m := newMesh(t, substratetest.MeshConfig{Secret: secret})
			s := start(t, m, substratetest.Config{ID: "a"})
			s.UpdateFaults(func(f *substratetest.Faults) { f.Corrupt = tt.mode })
			c := dial(t, s, secret)
			c.hello("n1", "default")
			f := c.next()
			if got := f.typ == websocket.MessageBinary; got != tt.binary {
				t.Fatalf("binary frame = %v, want %v", got, tt.binary)
			}
			env, err := wire.Decode(f.data, secret)
			if !errors.Is(err, tt.wantErr) || (err == nil && env.Type != wire.TypeWelcome) {
				t.Fatalf("decode %s: %v, want %v", f.data, err, tt.wantErr)
			}
			if _, err := m.Publish(wire.Message{}); err != nil {
				t.Fatal(err)
			}
			if _, err := wire.Decode(c.next().data, secret); !errors.Is(err, tt.wantErr) {
				t.Fatalf("put decodes with %v, want %v", err, tt.wantErr)
			}
			// A broken put is not a delivery.
			marker(t, s, "n1")
			c.expectMarker()
			if got := m.Forwarded("n1"); got != 0 {
				t.Fatalf("Forwarded = %d, want 0", got)
			}
		})
	}
}

func TestKill(t *testing.T) {
	m := newMesh(t, substratetest.MeshConfig{Secret: secret})
	s := start(t, m, substratetest.Config{ID: "a"})
	c := attach(t, m, s, "n1", "default")
	s.Kill()
	if code := c.expectEnd(); code != -1 {
		t.Fatalf("close status %v, want none (abrupt)", code)
	}
	if len(m.Substrates()) != 0 {
		t.Fatalf("killed substrate still live")
	}
	ctx, cancel := contextWithWait()
	defer cancel()
	if _, _, err := websocket.Dial(ctx, s.URL(), nil); err == nil {
		t.Fatal("dial after Kill succeeded")
	}
	s.Kill() // idempotent
	s.Close()

	// The id can be started again.
	again := start(t, m, substratetest.Config{ID: "a"})
	if m.Substrate("a") != again {
		t.Fatal("Substrate(a) is not the restarted one")
	}
}

func TestShutdown(t *testing.T) {
	m := newMesh(t, substratetest.MeshConfig{Secret: secret, GoodbyeGap: 20 * time.Millisecond})
	s := start(t, m, substratetest.Config{ID: "a"})
	same := start(t, m, substratetest.Config{ID: "b"})
	other := start(t, m, substratetest.Config{ID: "0-other", Enclave: "eu"})
	c1 := attach(t, m, s, "n1", "default")
	c2 := attach(t, m, s, "n2", "default")

	done := make(chan struct{})
	go func() { defer close(done); s.Shutdown(nil, true) }()
	want := []wire.Parent{same.Parent(), other.Parent()} // same enclave first
	for _, c := range []*client{c1, c2} {
		for range 2 {
			if g := c.expectGoodbye(); g.Reason != "shutdown" || !slices.Equal(g.AlternativeParents, want) {
				t.Fatalf("goodbye = %+v, want shutdown with %+v", g, want)
			}
		}
		if code := c.expectEnd(); code != websocket.StatusGoingAway {
			t.Fatalf("close status %v, want 1001", code)
		}
	}
	recv(t, done)

	// Explicit alternatives, once.
	s = start(t, m, substratetest.Config{ID: "c"})
	c := attach(t, m, s, "n3", "default")
	alt := []wire.Parent{{ID: "self", Address: "127.0.0.1", HTTPPort: 9, Enclave: "default"}}
	go s.Shutdown(alt, false)
	if g := c.expectGoodbye(); !slices.Equal(g.AlternativeParents, alt) {
		t.Fatalf("alternatives %+v, want %+v", g.AlternativeParents, alt)
	}
	if code := c.expectEnd(); code != websocket.StatusGoingAway {
		t.Fatalf("close status %v, want 1001", code)
	}
	s.Close() // waits for the Shutdown in flight
}

func TestClose(t *testing.T) {
	m := newMesh(t, substratetest.MeshConfig{Secret: secret})
	s := start(t, m, substratetest.Config{ID: "a"})
	c := attach(t, m, s, "n1", "default")
	s.Close()
	if code := c.expectEnd(); code != websocket.StatusGoingAway {
		t.Fatalf("close status %v, want 1001", code)
	}
	m.Close()
	if _, err := m.Publish(wire.Message{}); !errors.Is(err, substratetest.ErrMeshClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
	if _, err := m.Start(substratetest.Config{ID: "b"}); !errors.Is(err, substratetest.ErrMeshClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
}

func TestStartErrors(t *testing.T) {
	m := newMesh(t, substratetest.MeshConfig{})
	start(t, m, substratetest.Config{ID: "a"})
	if _, err := m.Start(substratetest.Config{ID: "a"}); !errors.Is(err, substratetest.ErrDuplicateID) {
		t.Fatalf("duplicate id: %v", err)
	}
	if _, err := m.Start(substratetest.Config{}); err == nil {
		t.Fatal("empty id accepted")
	}
}

func TestSecondHelloReplacesRegistration(t *testing.T) {
	t.Parallel()
	m := newMesh(t, substratetest.MeshConfig{Secret: secret})
	s := start(t, m, substratetest.Config{ID: "a"})
	first := attach(t, m, s, "n1", "default")
	second := attach(t, m, s, "n1", "default")
	witness := attach(t, m, s, "w", "default")

	msg, _ := m.Publish(wire.Message{})
	if got := second.expectPut(); got.MessageID != msg.MessageID {
		t.Fatalf("second got %s", got.MessageID)
	}
	witness.expectPut()
	first.quiet(30 * time.Millisecond)

	// Closing the replaced connection unregisters the id: the second
	// connection, still open, silently stops receiving (REPRAM behaviour).
	first.close()
	eventually(t, "n1 unregistered", func() bool { return slices.Equal(s.Children(), []string{"w"}) })
	m.Publish(wire.Message{})
	witness.expectPut()
	marker(t, s, "n1")
	second.expectMarker()
}

func TestSlowChildIsDropped(t *testing.T) {
	t.Parallel()
	// Small socket buffers on both ends of the deaf child's connection
	// (about 40 KiB in all): a few 64 KiB messages block the substrate's
	// writes to it, where loopback's autotuned buffers would take MiBs.
	const size, published = 64 << 10, 16
	tests := []struct {
		name string
		cfg  substratetest.MeshConfig
		fast bool // also attach a child that reads: it must get everything
	}{
		{"queue full", substratetest.MeshConfig{Secret: secret, QueueSize: 2, WriteTimeout: time.Minute}, false},
		// The write timeout is the expected outcome for the deaf child; the
		// fast child's writes must never come near it.
		{"write timeout", substratetest.MeshConfig{Secret: secret, QueueSize: 1024, WriteTimeout: 200 * time.Millisecond}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := newMesh(t, tt.cfg)
			s := start(t, m, substratetest.Config{ID: "a", SendBuffer: 16 << 10})
			deaf := attachDeaf(t, m, s, "slow")
			defer deaf.CloseNow()
			var fast *client
			if tt.fast {
				fast = attach(t, m, s, "fast", "default")
			}

			// Far more than the deaf connection's buffers hold; the queue
			// (QueueSize 1024) holds it all, so in the second case only the
			// write timeout can drop the child.
			big := make([]byte, size)
			n := 0
			for ; n < published && slices.Contains(s.Children(), "slow"); n++ {
				if _, err := m.Publish(wire.Message{Data: big}); err != nil {
					t.Fatal(err)
				}
			}
			eventually(t, "slow dropped", func() bool { return !slices.Contains(s.Children(), "slow") })
			if got := m.Forwarded("slow"); got >= n {
				t.Fatalf("Forwarded = %d, want fewer than %d", got, n)
			}
			if fast != nil {
				// Count without decoding: decoding is slow under -race.
				for i := range n {
					if f := fast.next(); !bytes.HasPrefix(f.data, []byte(`{"type":"put"`)) {
						t.Fatalf("fast frame %d is not a put: %.40s", i, f.data)
					}
				}
			}
		})
	}
}

// attachDeaf completes a handshake as id and then never reads: it neither
// takes frames nor answers WebSocket pings. Its receive buffer is small, so
// the substrate's writes to it block early.
func attachDeaf(t *testing.T, m *substratetest.Mesh, s *substratetest.Server, id string) *websocket.Conn {
	t.Helper()
	ctx, cancel := contextWithWait()
	defer cancel()
	small := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if err := c.(*net.TCPConn).SetReadBuffer(4 << 10); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}}
	defer small.CloseIdleConnections()
	ws, _, err := websocket.Dial(ctx, s.URL(), &websocket.DialOptions{HTTPClient: &http.Client{Transport: small}})
	if err != nil {
		t.Fatal(err)
	}
	hello, _ := wire.Encode(wire.TypeHello, helloFor(id, "default"), m.Secret())
	if err := ws.Write(ctx, websocket.MessageText, hello); err != nil {
		t.Fatal(err)
	}
	eventually(t, id+" welcomed", func() bool { return slices.Contains(s.Children(), id) })
	return ws
}

func TestHeartbeat(t *testing.T) {
	t.Parallel()
	// An interval long enough that the reading child, on a loaded machine,
	// answers one of three pings in a row (5 ms dropped it under -race).
	m := newMesh(t, substratetest.MeshConfig{Secret: secret})
	s := start(t, m, substratetest.Config{ID: "a", Heartbeat: 30 * time.Millisecond})
	live := attach(t, m, s, "live", "default")

	// A child that never reads never answers pings.
	deaf := attachDeaf(t, m, s, "deaf")
	defer deaf.CloseNow()
	eventually(t, "deaf dropped", func() bool { return !slices.Contains(s.Children(), "deaf") })
	// Many intervals later, the child that reads is still attached.
	if !slices.Contains(s.Children(), "live") {
		t.Fatalf("answering child dropped: %v", s.Children())
	}
	m.Publish(wire.Message{})
	live.expectPut()
}

func TestNullFrameKillsSubstrate(t *testing.T) {
	m := newMesh(t, substratetest.MeshConfig{Secret: secret})
	s := start(t, m, substratetest.Config{ID: "a"})
	c := attach(t, m, s, "n1", "default")
	c.write([]byte("null"))
	if code := c.expectEnd(); code != -1 {
		t.Fatalf("close status %v, want none (crash)", code)
	}
	eventually(t, "substrate gone", func() bool { return m.Substrate("a") == s && len(m.Substrates()) == 0 })
}

func TestSendRawAndSend(t *testing.T) {
	m := newMesh(t, substratetest.MeshConfig{Secret: secret})
	s := start(t, m, substratetest.Config{ID: "a"})
	c := attach(t, m, s, "n1", "default")
	if err := s.SendRaw("n1", websocket.MessageBinary, []byte{0xff, 0}); err != nil {
		t.Fatal(err)
	}
	if f := c.next(); f.typ != websocket.MessageBinary || string(f.data) != "\xff\x00" {
		t.Fatalf("got %v %q", f.typ, f.data)
	}
	gb := wire.Goodbye{Reason: "shutdown", AlternativeParents: []wire.Parent{}}
	if err := s.Send("n1", wire.TypeGoodbye, gb); err != nil {
		t.Fatal(err)
	}
	if g := c.expectGoodbye(); g.Reason != "shutdown" {
		t.Fatalf("goodbye %+v", g)
	}
	if err := s.SendRaw("ghost", websocket.MessageText, []byte("{}")); !errors.Is(err, substratetest.ErrUnknownChild) {
		t.Fatalf("SendRaw to unknown child: %v", err)
	}
}
