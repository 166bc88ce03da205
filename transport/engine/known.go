package engine

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// known is a substrate the engine has heard of, with what it measured and
// how it failed.
type known struct {
	Substrate
	rtt      time.Duration // latest measurement; 0 = never measured
	failures int           // consecutive failures
	until    time.Time     // not dialled before this while another is left
}

// registry holds every substrate learned (from Attach, Observe, welcomes'
// topology and goodbyes' alternatives), for choosing alternatives.
type registry struct {
	self string // this node's id: never a substrate
	list []*known
}

// learn remembers s, or fills in the id of a substrate known by URL only.
// It returns the entry, nil for what cannot be dialled.
func (r *registry) learn(s Substrate) *known {
	if s.URL == "" || (s.ID != "" && s.ID == r.self) {
		return nil
	}
	for _, k := range r.list {
		if (s.ID != "" && k.ID == s.ID) || k.URL == s.URL {
			if k.ID == "" {
				k.ID = s.ID
			}
			if k.Enclave == "" {
				k.Enclave = s.Enclave
			}
			return k
		}
	}
	k := &known{Substrate: s}
	r.list = append(r.list, k)
	return k
}

// find returns the entry of the substrate with id or URL, or nil.
func (r *registry) find(s Substrate) *known {
	for _, k := range r.list {
		if (s.ID != "" && k.ID == s.ID) || (s.URL != "" && k.URL == s.URL) {
			return k
		}
	}
	return nil
}

// failed backs s off: base doubled per consecutive failure, capped, with up
// to 50 % jitter.
func (r *registry) failed(s Substrate, now time.Time, base, ceiling time.Duration, rng *rand.Rand) {
	k := r.learn(s)
	if k == nil {
		return
	}
	k.failures++
	d := base
	for i := 1; i < k.failures && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	d += time.Duration(rng.Int64N(int64(d)/2 + 1))
	k.until = now.Add(d)
}

// succeeded clears s's failures.
func (r *registry) succeeded(s Substrate) {
	if k := r.find(s); k != nil {
		k.failures, k.until = 0, time.Time{}
	}
}

// rank orders candidates for a race, best first: not backed off, then in
// the node's enclave, then by measured round trip in buckets 25 % wide
// (unmeasured last), ties broken at random so that many children told
// goodbye at once spread over equally good substrates instead of all
// dialling the first alternative REPRAM names.
func rank(given []*known, enclave string, now time.Time, rng *rand.Rand) []Substrate {
	type entry struct {
		k               *known
		backedOff, away bool
		bucket          int
		tie             uint64
	}
	es := make([]entry, len(given))
	for i, k := range given {
		b := math.MaxInt
		if k.rtt > 0 {
			b = int(math.Floor(math.Log(float64(k.rtt)) / math.Log(1.25)))
		}
		es[i] = entry{k: k, backedOff: now.Before(k.until), away: enclave != "" && k.Enclave != enclave, bucket: b, tie: rng.Uint64()}
	}
	boolKey := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(es, func(a, b entry) int {
		return cmp.Or(
			cmp.Compare(boolKey(a.backedOff), boolKey(b.backedOff)),
			cmp.Compare(boolKey(a.away), boolKey(b.away)),
			cmp.Compare(a.bucket, b.bucket),
			cmp.Compare(a.tie, b.tie),
		)
	})
	out := make([]Substrate, len(es))
	for i, e := range es {
		out[i] = e.k.Substrate
	}
	return out
}
