package engine

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/repram/handover/policy"
	"github.com/repram/handover/transport/wire"
)

func TestRank(t *testing.T) {
	ms := time.Millisecond
	type entry struct {
		id      string
		rtt     time.Duration
		enclave string
		backoff time.Duration // until t0 + backoff; 0: never failed
	}
	tests := []struct {
		name    string
		enclave string
		given   []entry
		want    []string
	}{
		{"unmeasured last", "", []entry{{"a", 0, "", 0}, {"b", 5 * ms, "", 0}}, []string{"b", "a"}},
		{"best round trip first", "", []entry{{"a", 50 * ms, "", 0}, {"b", 5 * ms, "", 0}, {"c", 20 * ms, "", 0}}, []string{"b", "c", "a"}},
		{"buckets 25% wide: 12ms is worse than 10ms", "", []entry{{"a", 12 * ms, "", 0}, {"b", 10 * ms, "", 0}}, []string{"b", "a"}},
		{"same enclave before latency", "e1", []entry{{"a", ms, "e2", 0}, {"b", 100 * ms, "e1", 0}, {"c", 0, "e1", 0}}, []string{"b", "c", "a"}},
		{"no enclave of its own: latency alone", "", []entry{{"a", ms, "e2", 0}, {"b", 100 * ms, "e1", 0}}, []string{"a", "b"}},
		{"backed off after everything", "e1", []entry{{"a", ms, "e1", time.Second}, {"b", 0, "e2", 0}}, []string{"b", "a"}},
		{"backed off among themselves: by enclave and latency", "", []entry{{"a", 9 * ms, "", time.Second}, {"b", ms, "", 2 * time.Second}},
			[]string{"b", "a"}},
		{"a backoff that ended is no backoff", "", []entry{{"a", ms, "", -time.Second}, {"b", 5 * ms, "", 0}}, []string{"a", "b"}},
		{"nothing", "", nil, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var given []*known
			for _, e := range tc.given {
				k := &known{Substrate: Substrate{ID: e.id, URL: "ws://" + e.id, Enclave: e.enclave}, rtt: e.rtt}
				if e.backoff != 0 {
					k.until = t0.Add(e.backoff)
				}
				given = append(given, k)
			}
			for seed := range uint64(10) {
				got := []string{}
				for _, s := range rank(given, tc.enclave, t0, rand.New(rand.NewPCG(seed, 1))) {
					got = append(got, s.ID)
				}
				if !slices.Equal(got, tc.want) {
					t.Fatalf("seed %d: %v, want %v", seed, got, tc.want)
				}
			}
		})
	}
	t.Run("ties in one bucket: at random, the same for the same seed", func(t *testing.T) {
		given := []*known{{Substrate: Substrate{ID: "a", URL: "ws://a"}, rtt: 10 * ms}, {Substrate: Substrate{ID: "b", URL: "ws://b"}, rtt: 11 * ms}}
		first := map[string]int{}
		for seed := range uint64(64) {
			one := rank(given, "", t0, rand.New(rand.NewPCG(seed, 1)))
			two := rank(given, "", t0, rand.New(rand.NewPCG(seed, 1)))
			if !slices.Equal(one, two) {
				t.Fatalf("seed %d: %v then %v", seed, one, two)
			}
			first[one[0].ID]++
		}
		if first["a"] < 16 || first["b"] < 16 {
			t.Errorf("first over 64 seeds: %v, want both often (about half each)", first)
		}
	})
}

func TestRegistryFailed(t *testing.T) {
	s := time.Second
	tests := []struct {
		name       string
		base, ceil time.Duration
		want       []time.Duration // backoff before jitter, per consecutive failure
	}{
		{"doubling, capped", 2 * s, 60 * s, []time.Duration{2 * s, 4 * s, 8 * s, 16 * s, 32 * s, 60 * s, 60 * s, 60 * s}},
		{"cap below the base", 2 * s, s, []time.Duration{s, s}},
		{"cap not a power of two of the base", time.Second, 3 * s, []time.Duration{s, 2 * s, 3 * s, 3 * s}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(50) {
				r := registry{self: "me"}
				rng := rand.New(rand.NewPCG(seed, 2))
				for i, d := range tc.want {
					r.failed(subA, t0, tc.base, tc.ceil, rng)
					k := r.find(subA)
					if k == nil || k.failures != i+1 {
						t.Fatalf("failure %d: entry %+v", i+1, k)
					}
					if got := k.until.Sub(t0); got < d || got > d+d/2 {
						t.Fatalf("seed %d, failure %d: backed off %v, want within [%v, %v]", seed, i+1, got, d, d+d/2)
					}
				}
			}
		})
	}
	t.Run("jitter spreads over the half", func(t *testing.T) {
		lo, hi := time.Duration(1<<62), time.Duration(0)
		for seed := range uint64(200) {
			r := registry{}
			r.failed(subA, t0, 2*s, 60*s, rand.New(rand.NewPCG(seed, 3)))
			d := r.find(subA).until.Sub(t0)
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo > 2*s+100*time.Millisecond || hi < 2*s+900*time.Millisecond {
			t.Errorf("200 first backoffs within [%v, %v], want them spread over [2s, 3s]", lo, hi)
		}
	})
	t.Run("succeeded clears; unknown and undialable are ignored", func(t *testing.T) {
		r := registry{self: "me"}
		rng := rand.New(rand.NewPCG(1, 1))
		r.failed(subA, t0, s, s, rng)
		r.failed(Substrate{ID: "me", URL: subB.URL}, t0, s, s, rng)
		r.failed(Substrate{ID: "x"}, t0, s, s, rng)
		if len(r.list) != 1 {
			t.Fatalf("list %+v, want a alone", r.list)
		}
		r.succeeded(Substrate{URL: subA.URL})
		r.succeeded(subC)
		if k := r.find(subA); k.failures != 0 || !k.until.IsZero() {
			t.Errorf("after success: %+v", k)
		}
	})
}

func TestRegistryLearn(t *testing.T) {
	u1, u2 := "ws://10.0.0.1:8080/v1/ws", "ws://10.0.0.2:8080/v1/ws"
	tests := []struct {
		name    string
		learn   []Substrate
		entries []bool // learn returned an entry
		want    []Substrate
	}{
		{"new", []Substrate{{ID: "a", URL: u1}}, []bool{true}, []Substrate{{ID: "a", URL: u1}}},
		{"same id, another URL: one entry, first URL", []Substrate{{ID: "a", URL: u1}, {ID: "a", URL: u2}}, []bool{true, true},
			[]Substrate{{ID: "a", URL: u1}}},
		{"same URL: one entry gains the id and the enclave", []Substrate{{URL: u1}, {ID: "a", URL: u1, Enclave: "e1"}}, []bool{true, true},
			[]Substrate{{ID: "a", URL: u1, Enclave: "e1"}}},
		{"same id: the enclave is never overwritten", []Substrate{{ID: "a", URL: u1, Enclave: "e1"}, {ID: "a", URL: u1, Enclave: "e2"}}, []bool{true, true},
			[]Substrate{{ID: "a", URL: u1, Enclave: "e1"}}},
		{"another id at a known URL (restarted): the newer id and enclave win", []Substrate{{ID: "a", URL: u1, Enclave: "e1"}, {ID: "b", URL: u1, Enclave: "e2"}}, []bool{true, true},
			[]Substrate{{ID: "b", URL: u1, Enclave: "e2"}}},
		{"another id at a known URL, then the old id again: it wins again", []Substrate{{ID: "a", URL: u1}, {ID: "b", URL: u1}, {ID: "a", URL: u1}}, []bool{true, true, true},
			[]Substrate{{ID: "a", URL: u1}}},
		{"an id known elsewhere is matched by id first", []Substrate{{URL: u1}, {ID: "a", URL: u2}, {ID: "a", URL: u1}}, []bool{true, true, true},
			[]Substrate{{URL: u1}, {ID: "a", URL: u2}}},
		{"two substrates", []Substrate{{ID: "a", URL: u1}, {ID: "b", URL: u2}}, []bool{true, true},
			[]Substrate{{ID: "a", URL: u1}, {ID: "b", URL: u2}}},
		{"never this node, never without a URL", []Substrate{{ID: "me", URL: u1}, {ID: "a"}}, []bool{false, false}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := registry{self: "me"}
			for i, s := range tc.learn {
				if got := r.learn(s) != nil; got != tc.entries[i] {
					t.Errorf("learn(%+v) returned an entry: %v, want %v", s, got, tc.entries[i])
				}
			}
			var got []Substrate
			for _, k := range r.list {
				got = append(got, k.Substrate)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("list %+v, want %+v", got, tc.want)
			}
		})
	}
	t.Run("find by id or URL", func(t *testing.T) {
		r := registry{}
		r.learn(Substrate{ID: "a", URL: u1})
		for _, tc := range []struct {
			s     Substrate
			found bool
		}{{Substrate{ID: "a"}, true}, {Substrate{URL: u1}, true}, {Substrate{ID: "b", URL: u1}, false}, {Substrate{ID: "b", URL: u2}, false}, {Substrate{}, false}} {
			if got := r.find(tc.s) != nil; got != tc.found {
				t.Errorf("find(%+v) = %v, want %v", tc.s, got, tc.found)
			}
		}
	})
}

// A substrate restarted under a new id at its old URL starts with a clean
// failure record, and a failure reported under the old id (a link to the
// dead process) neither backs it off nor renames it back.
func TestRegistryRestartedSubstrate(t *testing.T) {
	old, restarted := Substrate{ID: "a-old", URL: subA.URL}, Substrate{ID: "a-new", URL: subA.URL}
	rng := rand.New(rand.NewPCG(1, 2))
	r := registry{self: "me"}
	r.learn(old)
	r.failed(old, t0, time.Second, time.Minute, rng)
	r.learn(restarted)
	r.failed(old, t0, time.Second, time.Minute, rng)
	if len(r.list) != 1 {
		t.Fatalf("%d entries, want 1", len(r.list))
	}
	if k := r.list[0]; k.Substrate != restarted || k.failures != 0 || !k.until.IsZero() {
		t.Errorf("entry %+v with %d failures until %v, want %+v not backed off", k.Substrate, k.failures, k.until, restarted)
	}
}

// many returns n goodbye parents, all distinct, ids prefixed by tag, at
// addresses distinct for each first letter of tag.
func many(tag string, n int) []wire.Parent {
	ps := make([]wire.Parent, n)
	for i := range ps {
		ps[i] = wire.Parent{ID: fmt.Sprintf("%s%d", tag, i), Address: fmt.Sprintf("10.%d.%d.%d", tag[0], i/250, i%250), HTTPPort: 8080}
	}
	return ps
}

// A goodbye naming thousands of alternatives learns the first
// maxAlternatives; its repetition learns nothing; a huge topology and endless
// observations keep the registry at maxKnown, never forgetting the substrates
// linked to. Counts only: the cost is linear in what is kept.
func TestLearningIsBounded(t *testing.T) {
	d := newDriver(t, quiet(Config{}))
	d.attached(subA)
	want(t, "goodbye", transitions(d.at(time.Second).step(GoodbyeReceived{Link: 1, Goodbye: goodbye("shutdown", many("x", 20_000)...)})),
		"attached --goodbye--> handshaking")
	if got, limit := len(d.e.Known()), 1+maxAlternatives; got != limit {
		t.Fatalf("%d known after a goodbye of 20000 alternatives, want a and the first %d", got, maxAlternatives)
	}
	if d.e.reg.find(Substrate{ID: "x0"}) == nil || d.e.reg.find(Substrate{ID: fmt.Sprint("x", maxAlternatives)}) != nil {
		t.Errorf("the learned alternatives are not the goodbye's first %d", maxAlternatives)
	}
	d.at(1100 * time.Millisecond).step(GoodbyeReceived{Link: 1, Goodbye: goodbye("shutdown", many("y", 20_000)...)})
	if got := len(d.e.Known()); got != 1+maxAlternatives {
		t.Fatalf("%d known after a repeated goodbye, want it ignored (%d)", got, 1+maxAlternatives)
	}

	// The race's candidate (link 2) welcomes with a topology of 20000.
	racing := d.e.Candidates()[0]
	topo := make([]wire.Message, 20_000)
	for i, p := range many("z", len(topo)) {
		topo[i] = wire.Message{Type: "SYNC", NodeInfo: &wire.NodeInfo{ID: p.ID, Address: p.Address, HTTPPort: p.HTTPPort}}
	}
	w := welcome(racing.ID)
	w.Topology = topo
	d.step(Welcomed{Link: 2, Welcome: w})
	if got := len(d.e.Known()); got != maxKnown {
		t.Fatalf("%d known after a topology of 20000, want %d", got, maxKnown)
	}

	// Observations of ever new candidates: the oldest unlinked go first.
	for round := range 4 {
		cs := make([]Candidate, maxKnown/2)
		for i := range cs {
			cs[i] = Candidate{Substrate: sub(fmt.Sprintf("o%d-%d", round, i), 0), Latency: time.Millisecond}
			cs[i].URL = fmt.Sprintf("ws://10.9.%d.%d:8080/v1/ws", round, i)
		}
		d.observe(policy.Decision{}, cs...)
	}
	known := d.e.Known()
	if len(known) != maxKnown {
		t.Fatalf("%d known after %d observed, want %d", len(known), 2*maxKnown, maxKnown)
	}
	for _, s := range []Substrate{subA, racing} {
		if !slices.ContainsFunc(known, func(k Substrate) bool { return same(k, s) }) {
			t.Errorf("%s, linked, was forgotten", s.ID)
		}
	}
	if !slices.ContainsFunc(known, func(k Substrate) bool { return k.ID == "o3-0" }) ||
		slices.ContainsFunc(known, func(k Substrate) bool { return k.ID == "o0-0" }) {
		t.Errorf("the registry kept older entries than the latest observed: %v", known[:5])
	}
}

// A full registry forgets the entry learned least recently: one named again
// is kept over one named once before it; one a link is to is never
// forgotten.
func TestRegistryForgetsLeastRecentlyLearned(t *testing.T) {
	linked := Substrate{ID: "linked", URL: "ws://10.8.0.0:8080/v1/ws"}
	r := registry{self: "me", inUse: func(s Substrate) bool { return same(s, linked) }}
	r.learn(linked)
	at := func(i int) Substrate {
		return Substrate{ID: fmt.Sprint("s", i), URL: fmt.Sprintf("ws://10.8.%d.%d:8080/v1/ws", i/250, i%250+1)}
	}
	for i := range maxKnown - 1 {
		r.learn(at(i))
	}
	r.learn(at(0)) // named again: now the most recent
	r.learn(at(maxKnown))
	r.learn(at(maxKnown + 1))
	if len(r.list) != maxKnown {
		t.Fatalf("%d entries, want %d", len(r.list), maxKnown)
	}
	for _, tc := range []struct {
		s    Substrate
		kept bool
	}{{linked, true}, {at(0), true}, {at(1), false}, {at(2), false}, {at(3), true}, {at(maxKnown + 1), true}} {
		if got := r.find(tc.s) != nil; got != tc.kept {
			t.Errorf("%s kept: %v, want %v", tc.s.ID, got, tc.kept)
		}
	}
}
