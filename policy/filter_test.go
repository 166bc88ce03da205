package policy

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/repram/handover/fsm"
)

// settle feeds o to e for n cycles and fails on any decision: the filter
// learns the substrates' levels and noise.
func settle(t *testing.T, e *Evaluator, o Snapshot, n int) {
	t.Helper()
	for i := range n {
		if d := e.Evaluate(o); d.Event == fsm.CandidateBetter {
			t.Fatalf("settling cycle %d: %s (%s)", i+1, d.Candidate.ID, d.Reason)
		}
	}
}

func newDefault(t *testing.T) *Evaluator {
	t.Helper()
	e, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// jittered returns lat ± 1%, alternating, so the filter sees some noise.
func jittered(lat time.Duration, i int) time.Duration {
	if i%2 == 0 {
		return lat + lat/100
	}
	return lat - lat/100
}

func TestFilterRules(t *testing.T) {
	cur := func(i int) Measurement { return in("s1", jittered(ms(100), i)) }
	quiet := func(i int) Snapshot { return obs(cur(i), in("s2", jittered(ms(100), i+1))) }
	warm := func(t *testing.T) *Evaluator {
		e := newDefault(t)
		for i := range 20 {
			settle(t, e, quiet(i), 1)
		}
		return e
	}
	type step struct {
		s2   time.Duration // 0: not measured
		cur  time.Duration // 0: the current's jittered 100ms
		want string
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"a drop to half is believed at once: two cycles", []step{{s2: ms(50)}, {s2: ms(50), want: "s2"}}},
		{"one fast sample is not a streak", []step{{s2: ms(50)}, {s2: ms(100)}, {s2: ms(100)}, {s2: ms(100)}}},
		{"a missing sample breaks the streak, the estimate stays", []step{
			{s2: ms(50)}, {s2: 0}, {s2: ms(50)}, {s2: ms(50), want: "s2"}}},
		{"one slow spike on the current does not make the candidate better", []step{
			{s2: ms(100), cur: ms(400)}, {s2: ms(100), cur: ms(400)}, {s2: ms(100)}, {s2: ms(100)}}},
		{"three slow spikes in a row are still not believed", []step{
			{s2: ms(100), cur: ms(400)}, {s2: ms(100), cur: ms(400)}, {s2: ms(100), cur: ms(400)}, {s2: ms(100)}}},
		{"four slow samples in a row are: the current got slower", []step{
			{s2: ms(100), cur: ms(400)}, {s2: ms(100), cur: ms(400)}, {s2: ms(100), cur: ms(400)},
			{s2: ms(100), cur: ms(400)}, {s2: ms(100), cur: ms(400), want: "s2"}}},
		{"exactly 25% faster never qualifies", []step{{s2: ms(75)}, {s2: ms(75)}, {s2: ms(75)}, {s2: ms(75)}, {s2: ms(75)}}},
		{"26% faster is within the noise margin of 1% jitter at first", []step{
			{s2: ms(74)}, {s2: ms(74)}, {s2: ms(74)}}},
		{"30% faster is not", []step{{s2: ms(70)}, {s2: ms(70)}, {s2: ms(70), want: "s2"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := warm(t)
			for i, s := range c.steps {
				o := quiet(i)
				o.Candidates[0].Latency = s.s2
				if s.cur != 0 {
					o.Current.Latency = s.cur
				}
				d := e.Evaluate(o)
				if g := got(d); g != s.want {
					t.Fatalf("step %d: got %q, want %q (%s)", i+1, g, s.want, d.Reason)
				}
			}
		})
	}
}

func TestFilterCurrentEstimateBridgesAMissingSample(t *testing.T) {
	e := newDefault(t)
	for i := range 20 {
		settle(t, e, obs(in("s1", jittered(ms(100), i)), in("s2", jittered(ms(100), i))), 1)
	}
	// The current's heartbeat is missing for two cycles: its estimate stands in.
	run(t, e, []tick{
		{obs: obs(in("s1", 0), in("s2", ms(50)))},
		{obs: obs(in("s1", 0), in("s2", ms(50))), want: "s2"},
	})
}

func TestFilterForgetsAfterMaxMissedCycles(t *testing.T) {
	e, err := New(Config{MaxMissedCycles: 2})
	if err != nil {
		t.Fatal(err)
	}
	settle(t, e, obs(in("s1", ms(100)), in("s2", ms(100))), 10)
	if _, ok := e.Estimate("s2"); !ok {
		t.Fatal("no estimate of s2 after 10 samples")
	}
	settle(t, e, obs(in("s1", ms(100))), 2)
	if _, ok := e.Estimate("s2"); !ok {
		t.Fatal("s2 forgotten after 2 missed cycles, want kept until more than MaxMissedCycles")
	}
	settle(t, e, obs(in("s1", ms(100))), 1)
	if est, ok := e.Estimate("s2"); ok {
		t.Fatalf("s2 still estimated after 3 missed cycles: %+v", est)
	}
	if _, ok := e.Estimate("s1"); !ok {
		t.Fatal("the measured current was forgotten")
	}
}

func TestFilterFloorOnLoopback(t *testing.T) {
	// 160µs against 40µs, no noise at all: 75% faster, but 120µs is under
	// the default MinDifference of 1ms.
	us := func(n int) time.Duration { return time.Duration(n) * time.Microsecond }
	e := newDefault(t)
	settle(t, e, obs(in("ra", us(160)), in("rb", us(40))), 30)
	e2, err := New(Config{MinDifference: us(100)})
	if err != nil {
		t.Fatal(err)
	}
	if n := untilBetter(t, e2, obs(in("ra", us(160)), in("rb", us(40))), "rb"); n > 3 {
		t.Fatalf("with MinDifference 100µs, rb won after %d cycles, want 2 or 3", n)
	}
}

func TestFilterFreshCandidate(t *testing.T) {
	// A quiet current: a candidate seen for the first time takes its noise
	// from the current and can win on its first two samples.
	e := newDefault(t)
	for i := range 20 {
		settle(t, e, obs(in("s1", jittered(ms(100), i))), 1)
	}
	run(t, e, []tick{{obs: obs(in("s1", ms(100)), in("s9", ms(40)))}, {obs: obs(in("s1", ms(100)), in("s9", ms(40))), want: "s9"}})
	// A noisy current (±40%): a newcomer is taken to be as noisy, and two
	// samples at 30% of the current are not enough.
	e = newDefault(t)
	for i := range 20 {
		settle(t, e, obs(in("s1", ms(100+40*float64(i%2*2-1)))), 1)
	}
	settle(t, e, obs(in("s1", ms(100)), in("s9", ms(30))), 2)
}

// A current path so steady that its deviation decays to nothing (a
// simulation, a constant stub) must not lend a newcomer zero noise: its first
// sample still carries minRelDev.
func TestFilterFreshCandidateAfterASteadyCurrent(t *testing.T) {
	e := newDefault(t)
	for range 30_000 {
		e.Evaluate(obs(in("s1", ms(100))))
	}
	e.Evaluate(obs(in("s1", ms(100)), in("s9", ms(100))))
	est, ok := e.Estimate("s9")
	if !ok || est.Noise <= 0 {
		t.Fatalf("newcomer's estimate %+v, %v: want some noise on one sample", est, ok)
	}
}

func TestEstimate(t *testing.T) {
	e := newDefault(t)
	if _, ok := e.Estimate("s1"); ok {
		t.Fatal("an estimate before any sample")
	}
	for i := range 40 {
		e.Evaluate(obs(in("s1", jittered(ms(100), i))))
	}
	est, ok := e.Estimate("s1")
	if !ok || est.Latency < ms(99) || est.Latency > ms(101) || est.Samples != 40 {
		t.Fatalf("estimate %+v, %v: want about 100ms from 40 samples", est, ok)
	}
	if est.Noise <= 0 || est.Noise > ms(1) {
		t.Fatalf("noise %v for ±1%% jitter, want a fraction of a millisecond", est.Noise)
	}
	raw, err := New(Config{Filter: FilterNone})
	if err != nil {
		t.Fatal(err)
	}
	raw.Evaluate(obs(in("s1", ms(100))))
	if _, ok := raw.Estimate("s1"); ok {
		t.Fatal("an estimate with the filter off")
	}
	if _, ok := NewNaive().Estimate("s1"); ok {
		t.Fatal("the naive baseline filters")
	}
}

func TestParseFilter(t *testing.T) {
	for _, s := range []string{"robust", "none"} {
		if f, err := ParseFilter(s); err != nil || string(f) != s {
			t.Errorf("ParseFilter(%q) = %q, %v", s, f, err)
		}
	}
	if _, err := ParseFilter("ewma"); err == nil {
		t.Error("ParseFilter accepted \"ewma\"")
	}
}

// A substrate measured as a candidate (probes) and then as the current
// attachment (heartbeats) is measured two ways: its estimate restarts at
// the change, so a level learnt the other way does not linger.
func TestFilterRestartsOnAttach(t *testing.T) {
	e := newDefault(t)
	settle(t, e, obs(in("s1", ms(10)), in("s2", ms(10))), 10)
	// Now on s2, which its heartbeats put at 100ms (through a slow path the
	// probes did not see); s3 at 10ms.
	e.Attached("s2")
	onS2 := obs(in("s2", ms(100)), in("s3", ms(10)))
	run(t, e, []tick{{obs: onS2}, {obs: onS2, want: "cooldown"}, {obs: onS2}, {obs: onS2, want: "s3"}})
	if est, ok := e.Estimate("s2"); !ok || est.Latency != ms(100) || est.Samples != 4 {
		t.Fatalf("s2 estimate %+v, %v: want 100ms from the 4 samples since the attachment", est, ok)
	}
}

// When several candidates reach their streak, the lowest filtered latency
// wins, not the luckiest sample of the cycle.
func TestFilterRanksByFilteredLatency(t *testing.T) {
	e := newDefault(t)
	for i := range 30 {
		s2, s3 := ms(47), ms(60) // s2 about 50ms, s3 about 55ms
		if i%2 == 1 {
			s2, s3 = ms(53), ms(50) // s3's raw sample is the lower one here
		}
		d := e.Evaluate(obs(in("s1", jittered(ms(200), i)), in("s2", s2), in("s3", s3)))
		if i >= 10 && (d.Event != fsm.CandidateBetter || d.Candidate.ID != "s2") {
			t.Fatalf("cycle %d (s2 %v, s3 %v): %s %s, want s2 named (%s)", i+1, s2, s3, d.Event, d.Candidate.ID, d.Reason)
		}
	}
}

// lognormalFeed feeds e n cycles of s1 alone at base × e^(σ·N(0,1)) and
// returns the estimate after them.
func lognormalFeed(t *testing.T, e *Evaluator, r *rand.Rand, base, sigma float64, n int) Estimate {
	t.Helper()
	for range n {
		e.Evaluate(obs(in("s1", ms(base*math.Exp(sigma*r.NormFloat64())))))
	}
	est, ok := e.Estimate("s1")
	if !ok {
		t.Fatal("no estimate of s1")
	}
	return est
}

// While a substrate stays at one level the estimate accumulates evidence:
// its standard error falls like 1/√n, and it is honest (the estimate is
// within 2 standard errors of the truth about 95% of the time).
func TestFilterAccumulatesEvidence(t *testing.T) {
	const sigma, runs = 0.3, 200
	for _, n := range []int{20, 200} {
		outside, restarted := 0, 0
		var noise float64
		for seed := range uint64(runs) {
			e := newDefault(t)
			est := lognormalFeed(t, e, rand.New(rand.NewPCG(seed, 7)), 40, sigma, n)
			if est.Samples < n/2 {
				restarted++ // a false change detection: fewer samples, still honest
			}
			se := float64(est.Noise) / float64(est.Latency) // in log terms
			noise += se / runs
			if z := math.Log(float64(est.Latency)/float64(ms(40))) / se; math.Abs(z) > 2 {
				outside++
			}
		}
		// Honest: about 5% outside 2 standard errors (binomial 200: 2..9%).
		if outside < 4 || outside > 18 {
			t.Errorf("after %d samples: %d of %d estimates more than 2 standard errors off, want about 10", n, outside, runs)
		}
		// Accumulating: the standard error is about σ/√n.
		if want := sigma / math.Sqrt(float64(n)); noise < 0.8*want || noise > 1.3*want {
			t.Errorf("after %d samples: mean standard error %.4f, want about σ/√n = %.4f", n, noise, want)
		}
		if restarted > runs/10 {
			t.Errorf("after %d samples: %d of %d estimates restarted on stationary noise", n, restarted, runs)
		}
		t.Logf("n %d: %d/%d outside 2 SE, mean SE %.4f (σ/√n %.4f), %d restarted", n, outside, runs, noise,
			sigma/math.Sqrt(float64(n)), restarted)
	}
}

// A real change restarts the level: after 300 samples at 40ms, the level
// drops to 20ms (σ 0.3, 2.3 deviations of one sample) and the estimate
// follows within a few cycles instead of averaging the two levels.
func TestFilterFollowsAChange(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 9))
		e := newDefault(t)
		lognormalFeed(t, e, r, 40, 0.3, 300)
		est := lognormalFeed(t, e, r, 20, 0.3, 20)
		if est.Samples > 20 || est.Latency < ms(16) || est.Latency > ms(25) {
			t.Errorf("seed %d: 20 samples after a drop from 40ms to 20ms: %+v; want about 20ms from the samples since", seed, est)
		}
	}
}

// A level that is restarting (a detected change, a change of attachment)
// has no value yet: no latency verdict rests on the one it had.
func TestFilterRestartingLevelDecidesNothing(t *testing.T) {
	e := newDefault(t)
	for i := range 20 {
		e.Evaluate(obs(in("s1", jittered(ms(100), i)), in("s2", jittered(ms(100), i))))
	}
	cur, cand := in("s1", ms(100)), in("s2", ms(50))
	for range 3 {
		e.Evaluate(obs(cur, cand)) // s2 dropped to 50ms: believed at once
	}
	if !e.qualifiesFiltered(node, cur, cand) {
		t.Fatal("s2 at half does not qualify")
	}
	e.restart("s1")
	if e.qualifiesFiltered(node, cur, cand) {
		t.Fatal("s2 qualifies against the level s1 had before it restarted")
	}
	e.restart("s1")
	e.Evaluate(obs(cur, cand)) // one new sample of each
	if !e.qualifiesFiltered(node, cur, cand) {
		t.Fatal("s2 does not qualify once s1 has a new sample")
	}
}

// A level resting on a few samples believes a fast one: its first sample
// may have been a stall (here 1.7ms on a noisy 150µs loopback path, right
// after a restart), and a level stuck there would make every candidate look
// fast. On an established level such a sample (between 3 and 6 deviations
// faster) is left to the change detector.
func TestFilterYoungLevelBelievesAFastSample(t *testing.T) {
	us := func(n int) time.Duration { return time.Duration(n) * time.Microsecond }
	e := newDefault(t)
	for i := range 40 {
		e.Evaluate(obs(in("s1", us(150+60*(i%2*2-1))))) // ±40%
	}
	e.restart("s1")
	e.Evaluate(obs(in("s1", us(1700))))
	e.Evaluate(obs(in("s1", us(150))))
	if est, _ := e.Estimate("s1"); est.Latency > us(200) {
		t.Fatalf("after a 1.7ms stall and a 150µs sample the level is %v, want about 150µs", est.Latency)
	}
}
