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
	heard    uint64        // registry.clock when it was last learned
}

// Bounds on what the engine learns, so that a substrate (or a mesh) naming
// ever more substrates costs a bounded amount of memory and of work per
// report: learning is a linear scan of the registry.
const (
	// maxAlternatives is how many of a goodbye's alternatives are
	// learned, the first ones in the goodbye's order. REPRAM names at most
	// 5 (TreeManager.getAlternativeSubstrates, same enclave first); the
	// margin is for other implementations.
	maxAlternatives = 16
	// maxKnown bounds the registry: beyond it, the entry learned least
	// recently that no link is to is forgotten. Far more than the
	// substrates one move can try in a race.
	maxKnown = 256
)

// registry holds the substrates learned (from Attach, Observe, welcomes'
// topology and goodbyes' alternatives), for choosing alternatives: at most
// maxKnown of them.
type registry struct {
	self  string // this node's id: never a substrate
	list  []*known
	clock uint64                 // counts learn calls, to age entries
	inUse func(s Substrate) bool // a link is to s: never forgotten; nil: none
	// vouched reports whether a link that welcomed this node is to the
	// substrate with id: its welcome outranks any report of another id
	// at its URL. nil: none.
	vouched func(id string) bool
}

// learn remembers s, or updates the entry of the substrate with its id or,
// failing that, its URL: an entry known by URL only gains the id, and an
// entry known under another id at s's URL takes s's id, enclave and a clean
// failure record. The newer report wins because a REPRAM substrate restarted
// at the same address comes back under a new id (node-${Date.now()} by
// default); keeping the old id would make every later dial expect the dead
// process and reject the live one's welcome. The measured round trip is
// kept: it belongs to the address. Only a live link's welcome outranks a
// report: a substrate named at the URL of a welcomed link's substrate under
// another id is not learned (the report is stale or wrong; if that link's
// substrate restarted, the link fails and a later report wins). It returns
// the entry, nil for what cannot be dialled or is not learned.
func (r *registry) learn(s Substrate) *known {
	if s.URL == "" || (s.ID != "" && s.ID == r.self) {
		return nil
	}
	r.clock++
	k := r.byID(s.ID)
	if k == nil {
		k = r.byURL(s.URL)
		switch {
		case k == nil:
			k = &known{Substrate: s}
			r.list = append(r.list, k)
			r.trim(k)
		case k.ID == "":
			k.ID = s.ID
		case s.ID != "" && k.ID != s.ID:
			if r.vouched != nil && r.vouched(k.ID) {
				return nil
			}
			k.ID, k.Enclave, k.failures, k.until = s.ID, s.Enclave, 0, time.Time{}
		}
	}
	if k.Enclave == "" {
		k.Enclave = s.Enclave
	}
	k.heard = r.clock
	return k
}

// trim forgets the entry learned least recently, other than keep and those
// a link is to, while the registry holds more than maxKnown.
func (r *registry) trim(keep *known) {
	for len(r.list) > maxKnown {
		oldest := -1
		for i, k := range r.list {
			if k != keep && (oldest < 0 || k.heard < r.list[oldest].heard) && (r.inUse == nil || !r.inUse(k.Substrate)) {
				oldest = i
			}
		}
		if oldest < 0 {
			return // every entry is in use: links are bounded, so is this
		}
		r.list = slices.Delete(r.list, oldest, oldest+1)
	}
}

func (r *registry) byID(id string) *known {
	if id == "" {
		return nil
	}
	for _, k := range r.list {
		if k.ID == id {
			return k
		}
	}
	return nil
}

func (r *registry) byURL(url string) *known {
	if url == "" {
		return nil
	}
	for _, k := range r.list {
		if k.URL == url {
			return k
		}
	}
	return nil
}

// find returns the entry of the substrate with s's id, else the one at s's
// URL unless that entry has another id (s then names a process no longer
// known there), or nil.
func (r *registry) find(s Substrate) *known {
	if k := r.byID(s.ID); k != nil {
		return k
	}
	if k := r.byURL(s.URL); k != nil && (s.ID == "" || k.ID == "") {
		return k
	}
	return nil
}

// failed backs s off: base doubled per consecutive failure, capped, with up
// to 50 % jitter.
func (r *registry) failed(s Substrate, now time.Time, base, ceiling time.Duration, rng *rand.Rand) {
	k := r.find(s)
	if k == nil {
		if r.byURL(s.URL) != nil {
			return // s's address now belongs to a newer id: the failure is not its
		}
		if k = r.learn(s); k == nil {
			return
		}
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
