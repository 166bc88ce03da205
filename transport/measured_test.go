package transport

import (
	"context"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/policy"
)

// recordingPolicy is the default policy, remembering every observation the
// node handed it.
type recordingPolicy struct {
	*policy.Evaluator
	mu  sync.Mutex
	obs []policy.Snapshot
}

func (r *recordingPolicy) Evaluate(o policy.Snapshot) policy.Decision {
	r.mu.Lock()
	r.obs = append(r.obs, o)
	r.mu.Unlock()
	return r.Evaluator.Evaluate(o)
}

// count is how many observations the policy has seen.
func (r *recordingPolicy) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.obs)
}

// minimums returns the least latencies of the primary and of the first
// candidate over the observations from index first on: load only adds to
// a round trip, so the least is the closest to the path's own.
func (r *recordingPolicy) minimums(first int) (cur, cand time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, cand = time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
	for _, o := range r.obs[first:] {
		cur = min(cur, o.Current.Latency)
		if len(o.Candidates) > 0 {
			cand = min(cand, o.Candidates[0].Latency)
		}
	}
	return cur, cand
}

func (r *recordingPolicy) last() policy.Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.obs[len(r.obs)-1]
}

// The node sits on a substrate 30ms away (one way) with one 2ms away
// beside it. It migrates on latencies it measured itself: the primary's
// heartbeat round trip and the candidate's probe (here handed to Observe),
// with no number handed in.
func TestMigratesOnProbedLatency(t *testing.T) {
	t.Parallel()
	migratesOnMeasuredLatency(t, false)
}

// TestMigratesOnLatencyObserveMeasures is TestMigratesOnProbedLatency with
// Observe probing the candidate itself; it follows the migration through:
// from a link that lags the new one, it loses nothing. (Two top-level
// tests rather than subtests: parallel subtests wait for a slot behind
// every top-level test, and these are the package's longest.)
func TestMigratesOnLatencyObserveMeasures(t *testing.T) {
	t.Parallel()
	migratesOnMeasuredLatency(t, true)
}

// migratesOnMeasuredLatency runs the measured-latency scenario; with
// measure, Observe probes the candidate, else the test does.
func migratesOnMeasuredLatency(t *testing.T, measure bool) {
	// Far apart, so that a loaded machine's jitter does not blur them.
	const slowDelay, fastDelay = 30 * time.Millisecond, 2 * time.Millisecond
	pol, err := policy.New(policy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingPolicy{Evaluator: pol}
	cfg := fastConfig()
	cfg.Decider = rec
	cfg.Tuning.HandshakeTimeout = 5 * time.Second // a few round trips of 60ms, under -race
	cfg.Tuning.HeartbeatInterval = 50 * time.Millisecond
	h := newHarness(t, cfg)
	slow, fast := h.start("sub-slow", 0), h.start("sub-fast", 0)
	slowP, fastP := newTestProxy(t, slow, slowDelay), newTestProxy(t, fast, fastDelay)
	slowSub := Substrate{ID: slow.ID(), URL: slowP.URL(), Enclave: slow.Enclave()}
	fastSub := Substrate{ID: fast.ID(), URL: fastP.URL(), Enclave: fast.Enclave()}

	if err := h.node.Attach(context.Background(), slowSub); err != nil {
		t.Fatal(err)
	}
	h.waitAttached(slow.ID())
	h.eventually("a heartbeat round trip on the primary", func() bool { return h.node.Status().PrimaryRTT > 0 })
	h.settle()
	stop := h.publishing(5 * time.Millisecond)
	defer stop()

	// The policy decides once the gap between the two filtered latencies
	// exceeds 3.6 standard errors of their noise, for two cycles in a
	// row: two cycles on a quiet machine, more when a loaded one
	// makes the round trips jitter (each cycle then adds a sample, and the
	// standard errors shrink). The loop ends at the decision.
	const maxCycles = 30
	ctx := context.Background()
	var probed time.Duration
	decided := false
	cycle := 0
	first := rec.count()
	for ; cycle < maxCycles && !decided; cycle++ {
		obs := Observation{Candidates: []Candidate{{Substrate: fastSub}}}
		if measure {
			obs.Measure = true
		} else {
			if probed, err = Probe(ctx, fastSub, ProbeOptions{Count: 3}); err != nil {
				t.Fatal(err)
			}
			obs.Candidates[0].Latency = probed
		}
		d, err := h.node.Observe(ctx, obs)
		if err != nil {
			t.Fatal(err)
		}
		decided = d.Event == fsm.CandidateBetter
	}
	if !decided {
		t.Fatalf("no migration decided in %d cycles; last observation %+v", maxCycles, rec.last())
	}
	t.Logf("decided after %d cycles", cycle)
	used := rec.last()
	cur, cand := used.Current.Latency, used.Candidates[0].Latency
	t.Logf("policy saw primary %v (heartbeat), candidate %v (probe)", cur, cand)
	// Lower bounds the proxies guarantee: both were measured through
	// them, not handed in.
	if cur < 2*slowDelay || cand < 2*fastDelay {
		t.Fatalf("latencies %v and %v are below the proxies' round trips %v and %v: not measured",
			cur, cand, 2*slowDelay, 2*fastDelay)
	}
	// The policy compares filtered latencies, so one cycle's pair may be
	// close on a loaded machine (103ms and 104ms, at load 8); the least
	// of each over the cycles it saw shows the proxies' delays.
	if mcur, mcand := rec.minimums(first); !(float64(mcand) < 0.75*float64(mcur)) {
		t.Fatalf("the candidate's least latency %v over %d cycles is not below 0.75 × the primary's %v", mcand, cycle, mcur)
	}
	if !measure && cand != probed {
		t.Fatalf("policy saw %v for the candidate, the probe measured %v", cand, probed)
	}
	if !measure {
		return
	}
	h.waitAttached(fast.ID())
	stop()
	h.exactlyOnce()
	if st := h.node.Status().Stats; st.Migrations != 1 {
		t.Fatalf("stats %+v: want one migration\n%s", st, h.timeline())
	}
}

// Observe with Measure leaves the primary's substrate and candidates that
// cannot be reached unmeasured, and never disturbs the primary.
func TestObserveMeasureSkipsPrimaryAndDeadCandidates(t *testing.T) {
	t.Parallel()
	rec := &recordingPolicy{}
	var err error
	if rec.Evaluator, err = policy.New(policy.Config{}); err != nil {
		t.Fatal(err)
	}
	cfg := fastConfig()
	cfg.Decider = rec
	h := newHarness(t, cfg)
	a, b, dead := h.start("sub-a", 0), h.start("sub-b", 0), h.start("sub-dead", 0)
	h.attach(a)
	dead.Kill()
	if _, err := h.node.Observe(context.Background(), Observation{Measure: true, Candidates: []Candidate{
		{Substrate: sub(a)}, {Substrate: sub(b)}, {Substrate: sub(dead)},
	}}); err != nil {
		t.Fatal(err)
	}
	got := map[string]time.Duration{}
	for _, c := range rec.last().Candidates {
		got[c.ID] = c.Latency
	}
	if got["sub-b"] <= 0 || got["sub-dead"] != 0 || got["sub-a"] != 0 {
		t.Fatalf("measured %v: want sub-b measured, the primary sub-a and sub-dead left at 0", got)
	}
	if st := h.node.Status(); st.Primary.ID != "sub-a" || !slices.Equal(a.Children(), []string{"t1"}) {
		t.Fatalf("measuring disturbed the primary: %+v, children %v", st, a.Children())
	}
}
