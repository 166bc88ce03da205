package ledger

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport"
	"github.com/repram/handover/transport/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fake is a REPRAM-like substrate: it stores what is PUT on it, serves
// /v1/keys and /v1/topology, and can be told what else it holds.
type fake struct {
	id    string
	peers []string
	mu    sync.Mutex
	keys  map[string]bool
	puts  int
	srv   *httptest.Server
}

func newFake(t *testing.T, id string, peers ...string) *fake {
	f := &fake{id: id, peers: peers, keys: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/data/{key}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.keys[r.PathValue("key")] = true
		f.puts++
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("GET /v1/keys", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		var ks []string
		for k := range f.keys {
			if strings.HasPrefix(k, r.URL.Query().Get("prefix")) {
				ks = append(ks, k)
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": ks})
	})
	mux.HandleFunc("GET /v1/topology", func(w http.ResponseWriter, _ *http.Request) {
		var ps []Peer
		for _, p := range f.peers {
			ps = append(ps, Peer{ID: p})
		}
		_ = json.NewEncoder(w).Encode(Topology{NodeID: f.id, Peers: ps})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) sub() Substrate {
	return Substrate{ID: f.id, HTTP: strings.TrimPrefix(f.srv.URL, "http://")}
}

func (f *fake) hold(keys ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range keys {
		f.keys[k] = true
	}
}

func tr(at time.Time, to fsm.State, primary, candidate string) transport.Transition {
	return transport.Transition{At: at, Step: fsm.Step{To: to}, Primary: primary, Candidate: candidate}
}

func gossip(key string) transport.Gossip {
	return transport.Gossip{Message: wire.Message{Key: key, MessageID: "id-" + key}}
}

// TestReportClassifies checks each way a write is accounted for, on a
// timeline: attached to a from t0, migrating to b (overlap from t0+10s),
// on b alone from t0+12s, no link from t0+20s to t0+25s, b again after.
func TestReportClassifies(t *testing.T) {
	a, b, c := newFake(t, "a", "b", "c"), newFake(t, "b", "a"), newFake(t, "c", "a")
	l, err := New(Config{Substrates: []Substrate{a.sub(), b.sub(), c.sub()}, Prefix: "p-", Slack: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Minute)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	for _, x := range []transport.Transition{
		tr(at(0), fsm.Attached, "a", ""),
		tr(at(9), fsm.Handshaking, "a", "b"),
		tr(at(10), fsm.Overlapping, "a", "b"),
		tr(at(12), fsm.Cooldown, "b", ""),
		tr(at(20), fsm.Detached, "", ""),
		tr(at(25), fsm.Attached, "b", ""),
		tr(at(45), fsm.Overlapping, "b", "a"), // after the books close at 40 s
	} {
		l.Transition(x)
	}
	w := func(key, origin string, s float64) write {
		return write{key: key, origin: origin, start: at(s), end: at(s + 0.01)}
	}
	l.writes = []write{
		w("p-owed-delivered", "c", 1),   // reached a (not its origin) while attached: owed
		w("p-owed-lost", "c", 2),        // same, never delivered
		w("p-own", "a", 3),              // held only by its origin a: never forwarded to a's children
		w("p-gap", "b", 4),              // reached c only: the node was not on c (a mesh gap)
		w("p-overlap", "c", 11),         // reached b during the overlap: owed through b
		w("p-edge", "c", 11.95),         // reached a only, window straddles a's close at 12 s
		w("p-detached", "c", 22),        // made while there was no link
		w("p-dup", "c", 30),             // owed, delivered twice
		w("p-failed-elsewhere", "a", 5), // a PUT that failed but landed on b (not attached then)
	}
	l.writes[len(l.writes)-1].failed = true
	a.hold("p-owed-delivered", "p-owed-lost", "p-own", "p-edge")
	b.hold("p-overlap", "p-detached", "p-dup", "p-failed-elsewhere")
	c.hold("p-gap", "p-owed-delivered", "p-owed-lost", "p-overlap", "p-edge", "p-detached", "p-dup")
	for _, k := range []string{"p-owed-delivered", "p-overlap", "p-dup", "p-dup", "p-detached", "other-prefix"} {
		l.Delivered(gossip(k))
	}
	l.startAt, l.stopAt = at(0), at(40)
	l.pollAll(context.Background())
	rep := l.Report(context.Background())
	want := Report{Published: 9, Refused: 1, Owed: 4, Delivered: 3, Lost: 1, Edge: 1, NotReached: 4, ReachedAttached: 5,
		WhileDetached: 1, DeliveredTotal: 4, Duplicates: 1}
	got := Report{Published: rep.Published, Refused: rep.Refused, Owed: rep.Owed, Delivered: rep.Delivered, Lost: rep.Lost,
		Edge: rep.Edge, NotReached: rep.NotReached, ReachedAttached: rep.ReachedAttached, WhileDetached: rep.WhileDetached,
		DeliveredTotal: rep.DeliveredTotal, Duplicates: rep.Duplicates}
	if got.Published != want.Published || got.Refused != want.Refused || got.Owed != want.Owed || got.Delivered != want.Delivered ||
		got.Lost != want.Lost || got.Edge != want.Edge || got.NotReached != want.NotReached || got.ReachedAttached != want.ReachedAttached ||
		got.WhileDetached != want.WhileDetached || got.DeliveredTotal != want.DeliveredTotal || got.Duplicates != want.Duplicates {
		t.Errorf("report\n got %+v\nwant %+v\n%s", got, want, rep)
	}
	if len(rep.LostKeys) != 1 || rep.LostKeys[0] != "p-owed-lost" {
		t.Errorf("lost keys %v, want [p-owed-lost]", rep.LostKeys)
	}
	if rep.NoLinkMs != 5000 || rep.LongestNoLinkMs != 5000 {
		t.Errorf("no link %v ms (longest %v), want 5000", rep.NoLinkMs, rep.LongestNoLinkMs)
	}
	if got := rep.MeshString(); got != "a→[b c] b→[a] c→[a]" {
		t.Errorf("mesh %q", got)
	}
}

// TestPickAndWrites runs real writes: they go only to substrates that are
// neither primary, candidate nor avoided and whose topology includes the
// primary; a dead substrate is skipped, and the asked rate is met.
func TestPickAndWrites(t *testing.T) {
	a, b, c, d := newFake(t, "a", "b", "c", "d"), newFake(t, "b", "a", "c"), newFake(t, "c", "a", "b"), newFake(t, "d", "a")
	dead := newFake(t, "dead", "a")
	dead.srv.Close()
	var mu sync.Mutex
	prim, cand := "a", "b"
	l, err := New(Config{Substrates: []Substrate{a.sub(), b.sub(), c.sub(), d.sub(), dead.sub()}, Prefix: "w-", Rate: 200,
		Timeout: 200 * time.Millisecond, Node: func() (string, string) {
			mu.Lock()
			defer mu.Unlock()
			return prim, cand
		}})
	if err != nil {
		t.Fatal(err)
	}
	l.Avoid("c")
	l.Start(context.Background())
	time.Sleep(200 * time.Millisecond)
	l.Stop()
	rep := l.Report(context.Background())
	// a is the primary, b the candidate, c avoided (it would come first:
	// it knows both), dead does not answer: everything goes to d.
	if a.puts+b.puts+c.puts != 0 || d.puts == 0 || rep.WritesBySubstrate["dead"] != 0 {
		t.Errorf("puts a %d b %d c %d d %d, by substrate %v: want every write on d", a.puts, b.puts, c.puts, d.puts, rep.WritesBySubstrate)
	}
	if rep.Published < 8 || rep.Refused != 0 {
		t.Errorf("published %d (refused %d) in 0.2 s at 200/s asked: want the writers to keep up", rep.Published, rep.Refused)
	}
	if len(rep.Unread) != 1 || rep.Unread[0] != "dead" {
		t.Errorf("unread %v, want [dead]", rep.Unread)
	}
}

func TestNewRejects(t *testing.T) {
	for _, cfg := range []Config{
		{Prefix: "p"},
		{Substrates: []Substrate{{ID: "a", HTTP: "x:1"}}},
		{Substrates: []Substrate{{ID: "a"}}, Prefix: "p"},
		{Substrates: []Substrate{{ID: "a", HTTP: "x:1"}}, Prefix: "p", Rate: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
