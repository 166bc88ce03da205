// Package vscale runs scale studies of make-before-break migration in
// virtual time: thousands to hundreds of thousands of transient nodes, each
// a real transport/engine, over a transport/simnet REPRAM network with
// REPRAM's realities — capacity refusals, partial mesh views, graceful
// shutdowns (two goodbyes 500 ms apart, then close), per-link round trips
// from a distribution, substrate churn and correlated noise per region.
//
// A Config with the same Seed gives the same Result, bit for bit (wall time
// and heap aside).
package vscale

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/policy"
	"github.com/repram/handover/tools/migsim/internal/timeline"
	"github.com/repram/handover/transport/engine"
	"github.com/repram/handover/transport/simnet"
)

// DefaultMaxChildren is REPRAM_MAX_CHILDREN's default.
const DefaultMaxChildren = 100

// Config describes one scale study. Zero fields take the defaults documented
// on each.
type Config struct {
	Nodes      int    // transient nodes (default 1,000)
	Substrates int    // substrates nodes attach to (default Nodes/500, at least 4)
	Seed       uint64 // seeds the network, the round trips, the churn and every engine (default 1)
	// MaxChildren is every substrate's capacity. 0: REPRAM's default, 100,
	// unless 100 cannot hold the nodes (Nodes > 100 × Substrates × 2/3):
	// then 1.5 × the mean load, rounded up. Result.MaxChildren says which.
	MaxChildren int
	// Peers is how many peers each substrate knows (partial mesh: the next
	// Peers substrates on a ring); they are the alternatives its goodbyes
	// and refusals name, and the only substrates whose gossip reaches it
	// besides the writers'. 0: 4. Full mesh: Substrates-1.
	Peers int
	// Regions groups the substrates, contiguously (s0 … in region 0), for
	// round trips and noise (default 8). A node lives in the region of the
	// substrate it attaches to first (node i: substrate i mod Substrates).
	Regions int
	// RTT is the median round trip between a node and a substrate of its
	// own region; each region between them adds RTTStep (defaults 5 ms and
	// 2 ms). Each node–substrate pair's RTT is that times a log-normal
	// factor exp(RTTSigma × N(0,1)) drawn once per pair from the seed
	// (default sigma 0.3; negative: 0).
	RTT, RTTStep time.Duration
	RTTSigma     float64
	// Noise is the factor a region's round trips take during a noise burst
	// (0: no noise); bursts of NoiseFor (default 2.5 s) hit one region drawn
	// from the seed every NoiseEvery (default 5 s).
	Noise                float64
	NoiseEvery, NoiseFor time.Duration
	// Shutdown is when substrate s0 shuts down gracefully (default 5 s;
	// negative: never).
	Shutdown time.Duration
	// Churn is how many substrates a minute shut down gracefully, one drawn
	// from the seed among the live ones, each restarting empty ChurnBack
	// later (default 30 s). 0: none but s0's.
	Churn     float64
	ChurnBack time.Duration
	// PublishRate is writes a second on a writers' substrate every
	// substrate hears (default 2), from 1 s to Duration - 2 s.
	PublishRate float64
	// Duration is the virtual time simulated (default 15 s).
	Duration time.Duration
	// Cycle is each node's evaluation cycle (default 1 s; negative: the
	// policy never runs, only forced moves happen).
	Cycle time.Duration
	// Policy configures every node's policy (zero: the defaults).
	Policy policy.Config
}

// WithDefaults fills in the zero fields, or says which field is wrong.
func (c Config) WithDefaults() (Config, error) {
	set := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setD := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	set(&c.Nodes, 1000)
	set(&c.Substrates, max(4, c.Nodes/500))
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.MaxChildren == 0 {
		c.MaxChildren = DefaultMaxChildren
		if float64(c.Nodes) > float64(DefaultMaxChildren*c.Substrates)*2/3 {
			c.MaxChildren = int(math.Ceil(1.5 * float64(c.Nodes) / float64(c.Substrates)))
		}
	}
	set(&c.Peers, min(4, c.Substrates-1))
	set(&c.Regions, 8)
	setD(&c.RTT, 5*time.Millisecond)
	setD(&c.RTTStep, 2*time.Millisecond)
	if c.RTTSigma == 0 {
		c.RTTSigma = 0.3
	}
	c.RTTSigma = max(c.RTTSigma, 0)
	setD(&c.NoiseEvery, 5*time.Second)
	setD(&c.NoiseFor, 2500*time.Millisecond)
	setD(&c.Shutdown, 5*time.Second)
	setD(&c.ChurnBack, 30*time.Second)
	if c.PublishRate == 0 {
		c.PublishRate = 2
	}
	setD(&c.Duration, 15*time.Second)
	setD(&c.Cycle, time.Second)
	switch {
	case c.Nodes < 1 || c.Substrates < 2:
		return c, errors.New("vscale: want at least 1 node and 2 substrates")
	case c.MaxChildren < 0 || c.Peers < 1 || c.Peers >= c.Substrates || c.Regions < 1:
		return c, fmt.Errorf("vscale: max children %d, peers %d, regions %d: want max children ≥ 0, 1 ≤ peers < substrates, regions ≥ 1",
			c.MaxChildren, c.Peers, c.Regions)
	case c.MaxChildren > 0 && c.Nodes > c.MaxChildren*(c.Substrates-1):
		return c, fmt.Errorf("vscale: %d substrates of %d children cannot hold %d nodes once one leaves: raise the capacity or the substrates",
			c.Substrates, c.MaxChildren, c.Nodes)
	case c.Noise < 0 || c.Churn < 0 || c.PublishRate < 0 || c.Duration < 3*time.Second:
		return c, errors.New("vscale: noise, churn and publish rate must not be negative, the duration at least 3 s")
	}
	if err := c.Policy.Validate(); err != nil {
		return c, fmt.Errorf("vscale: %w", err)
	}
	return c, nil
}

// Result is what a scale study measured. Every field but Wall and Heap is a
// function of the Config alone.
type Result struct {
	Config      Config `json:"-"`
	Nodes       int    `json:"nodes"`
	Substrates  int    `json:"substrates"`
	MaxChildren int    `json:"max_children"`
	Published   int    `json:"published"`
	Owed        int    `json:"owed"`
	Delivered   int    `json:"delivered"`
	Lost        int    `json:"lost"`
	Duplicates  int    `json:"duplicates"`
	Missed      int    `json:"missed"`
	// Rehomes counts rehome times: from a graceful shutdown's first goodbye
	// to the node's next welcome from another substrate.
	Rehomes   int           `json:"rehomes"`
	RehomeP50 time.Duration `json:"rehome_p50_ns"`
	RehomeP99 time.Duration `json:"rehome_p99_ns"`
	RehomeMax time.Duration `json:"rehome_max_ns"`
	Refusals  int           `json:"refusals"` // "at capacity" goodbyes
	Shutdowns int           `json:"shutdowns"`
	// Load is children per live substrate just before s0's shutdown and at
	// the end.
	LoadMaxBefore  int     `json:"load_max_before"`
	LoadMeanBefore float64 `json:"load_mean_before"`
	LoadMaxAfter   int     `json:"load_max_after"`
	LoadMeanAfter  float64 `json:"load_mean_after"`
	// Migrations counts the policy's completed migrations (overlap_done on
	// the migrate path); PerNodeHour scales it by nodes × virtual time.
	Migrations  int     `json:"migrations"`
	PerNodeHour float64 `json:"migrations_per_node_hour"`
	// PingPongs counts a node's policy migration back to the substrate its
	// previous policy migration left, within the policy's PingPongWindow
	// cycles (the same definition as migsim's run).
	PingPongs   int           `json:"ping_pongs"`
	Transitions int           `json:"transitions"`
	Detached    int           `json:"detached_at_end"`
	Wall        time.Duration `json:"wall_ns"`
	HeapBytes   uint64        `json:"heap_bytes"` // live heap after the run, the Sim still referenced
	// Rehome holds every rehome time, sorted; LoadBefore and LoadAfter
	// every live substrate's children, for plots.
	Rehome     []time.Duration `json:"-"`
	LoadBefore []int           `json:"-"`
	LoadAfter  []int           `json:"-"`
	// MigrationsOver[k] counts the policy migrations (those Migrations
	// counts) completed in [k×Bucket, (k+1)×Bucket) of virtual time, and
	// MovesOver[k] the forced changes of primary (a goodbye, a suspicion,
	// a death) in it, for the migrations-over-time plot.
	Bucket         time.Duration `json:"-"`
	MigrationsOver []int         `json:"-"`
	MovesOver      []int         `json:"-"`
}

// Bucket is the width of Result's time buckets.
const Bucket = 250 * time.Millisecond

// bucketOf is the bucket of n that virtual time at falls in; the last
// holds what comes at or after the end.
func bucketOf(at time.Duration, n int) int { return min(int(at/Bucket), n-1) }

// Failed reports whether a message was lost or delivered twice.
func (r Result) Failed() bool { return r.Lost != 0 || r.Duplicates != 0 }

// nodeTrack is what Run follows of one node to count ping-pongs.
type nodeTrack struct {
	prim      int32 // primary substrate index, -1 for none
	cause     fsm.Path
	lastFrom  int32 // the substrate the last policy migration left, -1 for none
	lastCycle int64
	// spread caches the node's round-trip factor per substrate it has
	// been measured against (a handful): drawing one is a log, a cosine
	// and an exponential, and the network asks on every frame and probe.
	spread []subFactor
}

// subFactor is a node–substrate pair's round-trip factor.
type subFactor struct {
	sub int
	f   float64
}

// Run runs the study.
func Run(c Config) (Result, error) {
	c, err := c.WithDefaults()
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	ids := make([]string, c.Substrates)
	index := make(map[string]int32, c.Substrates+1)
	for i := range ids {
		ids[i] = fmt.Sprint("s", i)
		index[ids[i]] = int32(i)
	}
	tracks := make([]nodeTrack, c.Nodes)
	for i := range tracks {
		tracks[i] = nodeTrack{prim: -1, lastFrom: -1}
	}
	window := int64(c.Policy.WithDefaults().PingPongWindow)
	buckets := int((c.Duration + Bucket - 1) / Bucket)
	res := Result{Bucket: Bucket, MigrationsOver: make([]int, buckets), MovesOver: make([]int, buckets)}
	cycle := c.Cycle
	region := func(sub int) int { return sub * c.Regions / c.Substrates }
	onTransition := func(id simnet.NodeID, tr engine.Transition) {
		t := &tracks[id]
		st := tr.Step
		if slices.Contains(timeline.SwitchStarts, st.Path) && t.cause == "" {
			t.cause = st.Path
		}
		if st.Path == fsm.PathCancel || st.Path == fsm.PathDetach {
			t.cause = ""
		}
		p := int32(-1)
		if i, ok := index[tr.Primary]; ok {
			p = i
		}
		if p < 0 || p == t.prim {
			return
		}
		k := bucketOf(tr.At.Sub(epoch), len(res.MigrationsOver))
		switch {
		case t.prim < 0: // the first attach
		case t.cause == fsm.PathMigrate && st.Path == fsm.PathMigrate:
			res.Migrations++
			res.MigrationsOver[k]++
			cyc := tr.At.Sub(epoch).Nanoseconds() / max(int64(cycle), 1)
			if isPingPong(t.lastFrom, p, t.lastCycle, cyc, window) {
				res.PingPongs++
			}
			t.lastFrom, t.lastCycle = t.prim, cyc
		default:
			res.MovesOver[k]++
		}
		t.prim, t.cause = p, ""
	}
	s := simnet.New(simnet.Config{Seed: c.Seed, Epoch: epoch, NoChecks: true, OnTransition: onTransition,
		LinkRTT: func(n simnet.NodeID, sub int, base time.Duration) time.Duration {
			if sub >= c.Substrates { // the writers'
				return base
			}
			d := region(int(n)%c.Substrates) - region(sub)
			if d < 0 {
				d = -d
			}
			t := &tracks[n]
			k := slices.IndexFunc(t.spread, func(p subFactor) bool { return p.sub == sub })
			if k < 0 {
				k = len(t.spread)
				t.spread = append(t.spread, subFactor{sub, math.Exp(c.RTTSigma * normal(c.Seed, uint64(n), uint64(sub)))})
			}
			f := t.spread[k].f
			return max(time.Duration(float64(base+time.Duration(d)*c.RTTStep)*f), 100*time.Microsecond)
		}})
	// base is a substrate's round trip within its region: RTT, or RTT ×
	// Noise during a burst on its region.
	base := func(int) time.Duration { return c.RTT }
	for i, id := range ids {
		peers := make([]string, 0, c.Peers+1)
		for k := 1; k <= c.Peers; k++ {
			peers = append(peers, ids[(i+k)%c.Substrates])
		}
		peers = append(peers, "w")
		if err := s.AddSubstrate(simnet.SubstrateConfig{ID: id, Enclave: "e", RTT: base(i), MaxChildren: c.MaxChildren,
			Delay: time.Duration(1+i%13) * time.Millisecond, Peers: peers}); err != nil {
			return Result{}, err
		}
	}
	if err := s.AddSubstrate(simnet.SubstrateConfig{ID: "w", Enclave: "w", RTT: time.Millisecond, Hidden: true}); err != nil {
		return Result{}, err
	}
	observe := c.Cycle
	if observe < 0 {
		observe = 0
	}
	pol := c.Policy
	for i := range c.Nodes {
		ev, err := policy.New(pol)
		if err != nil {
			return Result{}, fmt.Errorf("vscale: %w", err)
		}
		ec := engine.Config{Enclave: "e", Policy: ev}
		if _, err := s.AddNode(simnet.NodeConfig{Engine: ec, Attach: ids[i%c.Substrates],
			At: time.Duration(i%1000) * time.Millisecond, ObserveEvery: observe}); err != nil {
			return Result{}, err
		}
	}
	s.PublishRate("w", c.PublishRate, time.Second, c.Duration-2*time.Second)
	if c.Shutdown >= 0 {
		s.At(c.Shutdown, func() {
			res.LoadBefore = make([]int, 0, c.Substrates)
			for _, id := range ids {
				res.LoadBefore = append(res.LoadBefore, s.Children(id))
			}
			res.LoadMaxBefore, res.LoadMeanBefore = maxMean(res.LoadBefore)
			s.Shutdown(ids[0])
			res.Shutdowns++
		})
	}
	rng := splitmix(c.Seed ^ 0x5ca1e)
	down := make([]bool, c.Substrates) // shut down (s0 for good)
	down[0] = c.Shutdown >= 0
	if c.Churn > 0 {
		every := time.Duration(float64(time.Minute) / c.Churn)
		for t := c.Shutdown + every; t < c.Duration-2*time.Second; t += every {
			pick := int(rng.next() % uint64(c.Substrates))
			s.At(t, func() {
				for k := range c.Substrates { // the next live one from the pick
					i := (pick + k) % c.Substrates
					if !down[i] {
						down[i] = true
						s.Shutdown(ids[i])
						res.Shutdowns++
						s.At(t+c.ChurnBack, func() { s.Restart(ids[i]); down[i] = false })
						return
					}
				}
			})
		}
	}
	if c.Noise > 0 {
		for t := c.NoiseEvery; t < c.Duration; t += c.NoiseEvery {
			r := int(rng.next() % uint64(c.Regions))
			s.At(t, func() {
				for i := range c.Substrates {
					if region(i) == r {
						s.SetRTT(ids[i], time.Duration(float64(base(i))*c.Noise))
					}
				}
			})
			s.At(t+c.NoiseFor, func() {
				for i := range c.Substrates {
					if region(i) == r {
						s.SetRTT(ids[i], base(i))
					}
				}
			})
		}
	}
	if err := s.Run(c.Duration); err != nil {
		return Result{}, err
	}
	r := s.Report()
	res.Config = c
	res.Nodes, res.Substrates, res.MaxChildren = c.Nodes, c.Substrates, c.MaxChildren
	res.Published, res.Owed, res.Delivered = r.Published, r.Total.Owed, r.Total.Delivered
	res.Lost, res.Duplicates, res.Missed = r.Total.Lost, r.Total.Duplicates, r.Total.Missed
	res.Rehome, res.Rehomes = r.Rehome, len(r.Rehome)
	res.RehomeP50, res.RehomeP99 = simnet.Percentile(r.Rehome, 50), simnet.Percentile(r.Rehome, 99)
	if len(r.Rehome) > 0 {
		res.RehomeMax = r.Rehome[len(r.Rehome)-1]
	}
	res.Refusals, res.Transitions = r.Refusals, r.Total.Transitions
	res.LoadAfter = liveLoad(r)
	res.LoadMaxAfter, res.LoadMeanAfter = maxMean(res.LoadAfter)
	res.PerNodeHour = float64(res.Migrations) / (float64(c.Nodes) * c.Duration.Hours())
	for _, n := range r.Nodes {
		if n.Primary == "" {
			res.Detached++
		}
	}
	res.Wall = time.Since(start)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	res.HeapBytes = ms.HeapAlloc
	runtime.KeepAlive(s)
	return res, nil
}

// isPingPong reports whether a policy migration to substrate to in cycle
// cyc returns to lastFrom, the substrate the node's previous policy
// migration left in cycle last, within window cycles (inclusive: the
// policy package's and migsim run's definition).
func isPingPong(lastFrom, to int32, last, cyc, window int64) bool {
	return lastFrom >= 0 && lastFrom == to && timeline.InPingPongWindow(last, cyc, window)
}

// epoch is virtual time zero as the engines see it.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// liveLoad is the children of every live, visible substrate.
func liveLoad(r simnet.Report) []int {
	var out []int
	for _, sr := range r.Substrates {
		if !sr.Dead && !sr.Hidden {
			out = append(out, sr.Children)
		}
	}
	return out
}

func maxMean(xs []int) (int, float64) {
	m, sum := 0, 0
	for _, x := range xs {
		m, sum = max(m, x), sum+x
	}
	if len(xs) == 0 {
		return 0, 0
	}
	return m, float64(sum) / float64(len(xs))
}

// splitmix is a splitmix64 generator: small, seeded, reproducible.
type splitmix uint64

func (s *splitmix) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// normal is a standard normal draw fixed by (seed, a, b) (Box–Muller).
func normal(seed, a, b uint64) float64 {
	g := splitmix(seed ^ a*0x9e3779b97f4a7c15 ^ b*0xc2b2ae3d27d4eb4f)
	u1 := (float64(g.next()>>11) + 0.5) / (1 << 53)
	u2 := float64(g.next()>>11) / (1 << 53)
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}
