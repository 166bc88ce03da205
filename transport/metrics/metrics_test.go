package metrics_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/goleak"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport"
	"github.com/repram/handover/transport/engine"
	"github.com/repram/handover/transport/metrics"
	"github.com/repram/handover/transport/substratetest"
	"github.com/repram/handover/transport/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var secret = []byte("metrics-test-secret")

// fixture is a node on a loopback mesh of two substrates, with a collector
// registered and served over HTTP.
type fixture struct {
	t         *testing.T
	mesh      *substratetest.Mesh
	a, b      *substratetest.Server
	node      *transport.Node
	col       *metrics.Collector
	srv       *httptest.Server
	delivered atomic.Int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	// The goodbye gap is longer than a handshake takes on a loaded machine
	// (20 ms was not: the forced move then continued alone) and shorter
	// than the overlap (its margin is OverlapGrace without skew samples),
	// so the forced move is accelerated: the old substrate closes mid-overlap.
	f := &fixture{t: t, mesh: substratetest.NewMesh(substratetest.MeshConfig{Secret: secret, GoodbyeGap: 60 * time.Millisecond})}
	var err error
	if f.a, err = f.mesh.Start(substratetest.Config{ID: "sub-a"}); err != nil {
		t.Fatal(err)
	}
	if f.b, err = f.mesh.Start(substratetest.Config{ID: "sub-b"}); err != nil {
		t.Fatal(err)
	}
	f.node, err = transport.New(transport.Config{
		Identity: transport.Identity{NodeID: "t1", Enclave: substratetest.DefaultEnclave, Address: "127.0.0.1"},
		Secret:   secret,
		Tuning: engine.Tuning{HandshakeTimeout: time.Second, OverlapGrace: 100 * time.Millisecond,
			OverlapMax: 2 * time.Second, HeartbeatInterval: 200 * time.Millisecond},
		Handler: func(transport.Gossip) { f.delivered.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.col = metrics.New(f.node, metrics.Options{ConstLabels: prometheus.Labels{"node": "t1"}})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(f.col)
	f.srv = httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	t.Cleanup(func() {
		f.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := f.node.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		select {
		case <-f.col.Done():
		case <-time.After(10 * time.Second):
			t.Error("the collector still reads transitions after its node closed")
		}
		f.mesh.Close()
	})
	return f
}

func ref(s *substratetest.Server) transport.Substrate {
	return transport.Substrate{ID: s.ID(), URL: s.URL(), Enclave: s.Enclave()}
}

// eventually polls cond, bounded by 10 s.
func (f *fixture) eventually(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			st := f.node.Status()
			f.t.Fatalf("timed out waiting for %s: state %s primary %q stats %+v", what, st.State, st.Primary.ID, st.Stats)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// publish publishes n messages and waits until the handler has them all.
func (f *fixture) publish(n int) {
	f.t.Helper()
	want := f.delivered.Load() + int64(n)
	for range n {
		if _, err := f.mesh.Publish(wire.Message{Type: "PUT", From: "elsewhere", Key: "k", Data: []byte("v")}); err != nil {
			f.t.Fatal(err)
		}
	}
	f.eventually("delivery", func() bool { return f.delivered.Load() >= want })
}

// scrape returns every sample of one scrape by its series
// (name{labels}), and the text.
func (f *fixture) scrape() (map[string]float64, string) {
	f.t.Helper()
	resp, err := http.Get(f.srv.URL)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("scrape: %s", resp.Status)
	}
	samples := map[string]float64{}
	var text strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		text.WriteString(line + "\n")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			f.t.Fatalf("sample %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return samples, text.String()
}

// migrate feeds cycles in which to is far better until the node has
// migrated wantMigrations times.
func (f *fixture) migrate(to *substratetest.Server, wantMigrations int) {
	f.t.Helper()
	obs := transport.Observation{CurrentLatency: 80 * time.Millisecond,
		Candidates: []transport.Candidate{{Substrate: ref(to), Latency: 5 * time.Millisecond}}}
	f.eventually("a policy migration", func() bool {
		if _, err := f.node.Observe(context.Background(), obs); err != nil {
			f.t.Fatal(err)
		}
		st := f.node.Status()
		return st.Stats.Migrations >= wantMigrations && st.Primary.ID == to.ID()
	})
}

// A policy migration and then a forced one (the new primary shuts down)
// over loopback show in one scrape with the node's own numbers.
func TestScrapeAfterMigrations(t *testing.T) {
	f := newFixture(t)
	if err := f.node.Attach(context.Background(), ref(f.a)); err != nil {
		t.Fatal(err)
	}
	f.eventually("attached to sub-a", func() bool { return f.node.Status().Primary.ID == "sub-a" })
	f.publish(3)
	f.migrate(f.b, 1)
	f.publish(2)
	f.b.Shutdown(nil, true) // goodbye naming sub-a: a forced move back
	f.eventually("the forced move back to sub-a", func() bool {
		st := f.node.Status()
		return st.Stats.Migrations+st.Stats.Accelerated >= 2 && st.Primary.ID == "sub-a" && len(st.Candidates) == 0
	})
	f.publish(1)
	f.eventually("two switches observed", func() bool {
		s, _ := f.scrape()
		return s[`handover_switch_seconds_count{cause="forced",node="t1"}`] == 1
	})

	st := f.node.Status()
	got, text := f.scrape()
	want := map[string]float64{
		`handover_migrations_total{node="t1",path="migrate"}`:           float64(st.Stats.Migrations),
		`handover_migrations_total{node="t1",path="accelerate_to_new"}`: float64(st.Stats.Accelerated),
		`handover_moves_started_total{cause="forced",node="t1"}`:        1,
		`handover_moves_started_total{cause="suspect",node="t1"}`:       0,
		`handover_joins_total{node="t1"}`:                               1,
		`handover_delivered_total{node="t1"}`:                           float64(f.delivered.Load()),
		`handover_duplicates_dropped_total{node="t1"}`:                  float64(st.Stats.DuplicatesDropped),
		`handover_stale_events_dropped_total{node="t1"}`:                float64(st.Stats.StaleEventsDropped),
		`handover_frames_rejected_total{node="t1"}`:                     0,
		`handover_dials_total{node="t1"}`:                               float64(st.Stats.Dials),
		`handover_transitions_dropped_total{node="t1"}`:                 0,
		`handover_candidates{node="t1"}`:                                0,
		`handover_switch_seconds_count{cause="policy",node="t1"}`:       1,
		`handover_switch_seconds_count{cause="forced",node="t1"}`:       1,
		`handover_state{node="t1",state="detached"}`:                    0,
		`handover_state{node="t1",state="` + string(st.State) + `"}`:    1,
	}
	for series, v := range want {
		if g, ok := got[series]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", series, g, ok, v)
		}
	}
	if st.Stats.Migrations+st.Stats.Accelerated != 2 || f.delivered.Load() != 6 {
		t.Errorf("stats %+v, delivered %d: want two switches and the 6 messages", st.Stats, f.delivered.Load())
	}
	states := 0.0
	for _, s := range fsm.Declaration().States {
		states += got[`handover_state{node="t1",state="`+string(s)+`"}`]
	}
	if states != 1 {
		t.Errorf("handover_state sums to %v over the states, want exactly one current state", states)
	}
	if v := got[`handover_switch_seconds_sum{cause="policy",node="t1"}`]; v <= 0 || v > 10 {
		t.Errorf("policy switch took %vs: want a positive duration within the test's bound", v)
	}
	if v := got[`handover_link_rtt_seconds{node="t1"}`]; v <= 0 {
		t.Errorf("handover_link_rtt_seconds = %v: the primary answered pings, want its round trip", v)
	}
	for _, name := range []string{"migrations_total", "migrations_cancelled_total", "moves_started_total", "joins_total",
		"rejoins_total", "detaches_total", "dials_total", "delivered_total", "duplicates_dropped_total",
		"too_old_dropped_total", "stale_events_dropped_total", "frames_rejected_total", "pings_failed_total",
		"transitions_dropped_total", "state", "candidates", "link_rtt_seconds", "switch_seconds"} {
		if !strings.Contains(text, "# HELP handover_"+name+" ") || !strings.Contains(text, "# TYPE handover_"+name+" ") {
			t.Errorf("handover_%s has no HELP or TYPE line", name)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", text)
	}
}
