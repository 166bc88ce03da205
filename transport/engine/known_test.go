package engine

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
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
