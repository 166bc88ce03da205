package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/repram/handover/fsm"
)

const node = "eu"

func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

// in and out build substrates inside and outside the node's enclave; a
// latency of 0 is a missing measurement.
func in(id string, lat time.Duration) Measurement {
	return Measurement{ID: id, Address: id + ":8080", Enclave: node, Latency: lat}
}
func out(id string, lat time.Duration) Measurement {
	return Measurement{ID: id, Address: id + ":8080", Enclave: "us", Latency: lat}
}

func obs(cur Measurement, cands ...Measurement) Snapshot {
	return Snapshot{Enclave: node, Current: cur, Candidates: cands}
}

// tick is one evaluation cycle of a scenario: the calls made during the
// cycle, then Evaluate with obs, and the decision expected: "" (none),
// "cooldown" or the id of the candidate named by candidate_better.
type tick struct {
	attach string // Attached(attach) during the cycle
	failed string // MigrationFailed(failed) during the cycle
	forced bool   // Forced() during the cycle
	obs    Snapshot
	want   string
}

func got(d Decision) string {
	switch d.Event {
	case "":
		return ""
	case fsm.CooldownElapsed:
		return "cooldown"
	case fsm.CandidateBetter:
		return d.Candidate.ID
	}
	return "unexpected event " + string(d.Event)
}

func run(t *testing.T, e *Evaluator, ticks []tick) {
	t.Helper()
	var trail []string
	for i, tk := range ticks {
		if tk.attach != "" {
			e.Attached(tk.attach)
		}
		if tk.failed != "" {
			e.MigrationFailed(tk.failed)
		}
		if tk.forced {
			e.Forced()
		}
		d := e.Evaluate(tk.obs)
		trail = append(trail, fmt.Sprintf("%q", got(d)))
		if g := got(d); g != tk.want {
			t.Fatalf("cycle %d: got %q, want %q (decisions so far: %s; reason %q)",
				i+1, g, tk.want, strings.Join(trail, " "), d.Reason)
		}
		if d.Event != "" && d.Reason == "" {
			t.Errorf("cycle %d: %s without a reason", i+1, d.Event)
		}
	}
}

func repeat(n int, tk tick) []tick {
	out := make([]tick, n)
	for i := range out {
		out[i] = tk
	}
	return out
}

func TestQualifies(t *testing.T) {
	cases := []struct {
		name      string
		cur, cand Measurement
		ratio     float64
		want      bool
	}{
		{"exactly 25% faster does not qualify", in("a", ms(100)), in("b", ms(75)), 0.75, false},
		{"just over 25% faster qualifies", in("a", ms(100)), in("b", ms(75)-1), 0.75, true},
		{"slower does not qualify", in("a", ms(100)), in("b", ms(120)), 0.75, false},
		{"cross to cross by latency", out("a", ms(100)), out("b", ms(70)), 0.75, true},
		{"cross to cross not enough", out("a", ms(100)), out("b", ms(80)), 0.75, false},
		{"same enclave beats faster cross", out("a", ms(10)), in("b", ms(200)), 0.75, true},
		{"never from same enclave to cross", in("a", ms(100)), out("b", ms(1)), 0.75, false},
		{"candidate not measured", in("a", ms(100)), in("b", 0), 0.75, false},
		{"candidate negative latency is unknown", in("a", ms(100)), in("b", -ms(1)), 0.75, false},
		{"current not measured: no latency comparison", in("a", 0), in("b", ms(1)), 0.75, false},
		{"current not measured: enclave still decides", out("a", 0), in("b", ms(50)), 0.75, true},
		{"other ratio: 40% faster is not 50%", in("a", ms(100)), in("b", ms(60)), 0.5, false},
		{"other ratio: 51% faster", in("a", ms(100)), in("b", ms(49)), 0.5, true},
		{"naive ratio: 1ns faster", in("a", ms(100)), in("b", ms(100)-1), 1, true},
		{"naive ratio: equal is not faster", in("a", ms(100)), in("b", ms(100)), 1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if g := qualifies(node, c.cur, c.cand, c.ratio); g != c.want {
				t.Errorf("qualifies(%v, %v, %v) = %v, want %v", c.cur, c.cand, c.ratio, g, c.want)
			}
		})
	}
}

func TestEvaluatorRules(t *testing.T) {
	cur := in("s1", ms(100))
	q := tick{obs: obs(cur, in("s2", ms(50)))} // s2 qualifies
	missing := tick{obs: obs(cur, in("s2", 0))}
	absent := tick{obs: obs(cur)}
	want := func(tk tick, w string) tick { tk.want = w; return tk }

	cases := []struct {
		name  string
		cfg   Config
		ticks []tick
	}{
		{"two consecutive qualifying cycles", Config{}, []tick{q, want(q, "s2")}},
		{"keeps naming the candidate while it qualifies", Config{}, []tick{q, want(q, "s2"), want(q, "s2")}},
		{"exactly 25% faster never triggers", Config{},
			repeat(5, tick{obs: obs(cur, in("s2", ms(75)))})},
		{"a missing measurement breaks the streak", Config{},
			[]tick{q, missing, q, want(q, "s2")}},
		{"an absent candidate breaks the streak", Config{},
			[]tick{q, absent, q, want(q, "s2")}},
		{"an unknown current latency breaks the streak", Config{},
			[]tick{q, {obs: obs(in("s1", 0), in("s2", ms(50)))}, q, want(q, "s2")}},
		{"a candidate that alternates with another never triggers", Config{}, []tick{
			{obs: obs(cur, in("s2", ms(50)), in("s3", ms(99)))},
			{obs: obs(cur, in("s2", ms(99)), in("s3", ms(50)))},
			{obs: obs(cur, in("s2", ms(50)), in("s3", ms(99)))},
			{obs: obs(cur, in("s2", ms(99)), in("s3", ms(50)))},
			{obs: obs(cur, in("s2", ms(50)), in("s3", 0))},
			{obs: obs(cur, in("s2", 0), in("s3", ms(50)))},
			{obs: obs(cur, in("s2", ms(50)))},
			{obs: obs(cur, in("s3", ms(50)))},
		}},
		{"when several reach the bar the fastest wins", Config{},
			[]tick{{obs: obs(cur, in("s3", ms(60)), in("s2", ms(40)))},
				{obs: obs(cur, in("s3", ms(40)), in("s2", ms(60))), want: "s3"}}},
		{"a tie is broken by the lowest id", Config{},
			[]tick{{obs: obs(cur, in("s3", ms(50)), in("s2", ms(50)))},
				{obs: obs(cur, in("s3", ms(50)), in("s2", ms(50))), want: "s2"}}},
		{"only a candidate that reached its streak can win", Config{},
			[]tick{q, {obs: obs(cur, in("s2", ms(50)), in("s3", ms(10))), want: "s2"},
				{obs: obs(cur, in("s2", ms(50)), in("s3", ms(10))), want: "s3"}}},
		{"the node's enclave beats a faster cross-enclave candidate", Config{}, []tick{
			{obs: obs(out("s1", ms(100)), out("s2", ms(10)), in("s3", ms(200)))},
			{obs: obs(out("s1", ms(100)), out("s2", ms(10)), in("s3", ms(200))), want: "s3"}}},
		{"never from the node's enclave to another", Config{},
			repeat(4, tick{obs: obs(cur, out("s2", ms(1)))})},
		{"a candidate with the current id is not a migration", Config{},
			repeat(4, tick{obs: obs(cur, in("s1", ms(1)))})},
		{"a candidate listed twice counts once per cycle", Config{},
			[]tick{{obs: obs(cur, in("s2", ms(50)), in("s2", ms(50)))},
				{obs: obs(cur, in("s2", ms(50))), want: "s2"}}},
		{"no current attachment: nothing to improve", Config{},
			repeat(3, tick{obs: obs(Measurement{}, in("s2", ms(50)))})},
		{"a new current attachment restarts the streaks", Config{},
			[]tick{q, {obs: obs(in("s9", ms(100)), in("s2", ms(50)))},
				{obs: obs(in("s9", ms(100)), in("s2", ms(50))), want: "s2"}}},
		{"streak of 3", Config{Streak: 3}, []tick{q, q, want(q, "s2")}},
		{"improvement of 50%", Config{Improvement: 0.5},
			[]tick{q, q, {obs: obs(cur, in("s2", ms(49)))}, {obs: obs(cur, in("s2", ms(49))), want: "s2"}}},

		// Cooldown.
		{"cooldown blocks exactly one full cycle after the partial one", Config{},
			[]tick{{attach: "s1", obs: q.obs}, want(q, "cooldown"), q, want(q, "s2")}},
		{"two cooldown cycles", Config{CooldownCycles: 2},
			[]tick{{attach: "s1", obs: q.obs}, q, want(q, "cooldown"), q, want(q, "s2")}},
		{"attaching mid-streak restarts it after the cooldown", Config{},
			[]tick{q, {attach: "s1", obs: q.obs}, want(q, "cooldown"), q, want(q, "s2")}},
		{"cooldown_elapsed comes even with nothing to observe", Config{},
			[]tick{{attach: "s1", obs: absent.obs}, want(absent, "cooldown"), absent}},

		// Forced migration and failures.
		{"a forced migration resets the streaks", Config{},
			[]tick{q, {forced: true, obs: q.obs}, want(q, "s2")}},
		{"a failed candidate is backed off and its streak dropped", Config{},
			[]tick{q, want(q, "s2"), {failed: "s2", obs: q.obs}, q, q, want(q, "s2")}},
		{"a backed-off candidate leaves the others alone", Config{},
			[]tick{{failed: "s2", obs: obs(cur, in("s2", ms(10)), in("s3", ms(60)))},
				{obs: obs(cur, in("s2", ms(10)), in("s3", ms(60))), want: "s3"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The rules on raw samples: TestFilter* pin what the filter
			// makes of the samples first.
			c.cfg.Filter = FilterNone
			e, err := New(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			run(t, e, c.ticks)
		})
	}
}

// untilBetter counts Evaluates until candidate_better names id.
func untilBetter(t *testing.T, e *Evaluator, o Snapshot, id string) int {
	t.Helper()
	for n := 1; n <= 1000; n++ {
		if d := e.Evaluate(o); d.Event == fsm.CandidateBetter {
			if d.Candidate.ID != id {
				t.Fatalf("candidate_better named %s, want %s", d.Candidate.ID, id)
			}
			return n
		}
	}
	t.Fatalf("no candidate_better for %s in 1000 cycles", id)
	return 0
}

func TestBackoffDoublesAndResets(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want []int // Evaluates from a failure to the next candidate_better: backoff + streak
	}{
		{"default: 2 doubling to 32", Config{}, []int{2 + 2, 4 + 2, 8 + 2, 16 + 2, 32 + 2, 32 + 2}},
		{"base 3 capped at 10", Config{BackoffCycles: 3, BackoffMaxCycles: 10}, []int{3 + 2, 6 + 2, 10 + 2, 10 + 2}},
		{"cap equal to base", Config{BackoffCycles: 5, BackoffMaxCycles: 5}, []int{5 + 2, 5 + 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.PingPongMaxStreak = 2 // no damping: the test moves s1 → s2 → s1 quickly
			c.cfg.Filter = FilterNone   // s1 and s2 swap latencies: the rules on raw samples
			e, err := New(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			o := obs(in("s1", ms(100)), in("s2", ms(50)))
			if n := untilBetter(t, e, o, "s2"); n != 2 {
				t.Fatalf("first candidate_better after %d cycles, want 2", n)
			}
			var gaps []int
			for range c.want {
				e.MigrationFailed("s2")
				gaps = append(gaps, untilBetter(t, e, o, "s2"))
			}
			if fmt.Sprint(gaps) != fmt.Sprint(c.want) {
				t.Fatalf("cycles to the next proposal after consecutive failures: %v, want %v", gaps, c.want)
			}
			// Success resets: attach to s2, come back to s1, fail once more.
			e.Attached("s2")
			e.Attached("s1")
			if n := untilBetter(t, e, o, "s2"); n != 4 {
				t.Fatalf("after the reattachment, candidate_better after %d cycles, want 4 (partial, cooldown, streak 2)", n)
			}
			e.MigrationFailed("s2")
			if n := untilBetter(t, e, o, "s2"); n != c.want[0] {
				t.Fatalf("after a success the backoff is %d cycles, want %d: it did not reset", n, c.want[0])
			}
		})
	}
}

func TestPingPongDamping(t *testing.T) {
	// s1 and s2 trade places: whichever is current looks 50% slower. The
	// rules on raw samples (a filter would hold each substrate's latency).
	onS1 := obs(in("s1", ms(100)), in("s2", ms(50)))
	onS2 := obs(in("s2", ms(100)), in("s1", ms(50)))

	t.Run("returns within the window double the pair's streak up to the cap, then relax", func(t *testing.T) {
		// A window long enough that every return below is a ping-pong.
		e, err := New(Config{PingPongWindow: 20, Filter: FilterNone})
		if err != nil {
			t.Fatal(err)
		}
		e.Attached("s1")
		// partial + cooldown + streak: 4 Evaluates per move while undamped.
		wantCycles := []int{2 + 2, 2 + 2, 2 + 4, 2 + 8, 2 + 8}
		wantStreak := []int{2, 4, 8, 8, 8}
		for i := range wantCycles {
			o, to := onS1, "s2"
			if i%2 == 1 {
				o, to = onS2, "s1"
			}
			if n := untilBetter(t, e, o, to); n != wantCycles[i] {
				t.Fatalf("move %d to %s after %d cycles, want %d", i+1, to, n, wantCycles[i])
			}
			e.Attached(to)
			if g := e.RequiredStreak("s2", "s1"); g != wantStreak[i] {
				t.Fatalf("after move %d the s1/s2 streak is %d, want %d", i+1, g, wantStreak[i])
			}
		}
		if g := e.RequiredStreak("s1", "s3"); g != 2 {
			t.Fatalf("an unrelated pair requires %d, want 2", g)
		}
		// Stable on s2 (nothing qualifies): the streak halves every 30 cycles.
		quiet := obs(in("s2", ms(50)), in("s1", ms(50)))
		for _, want := range []int{8, 4, 2} {
			for range 29 {
				e.Evaluate(quiet)
			}
			if g := e.RequiredStreak("s1", "s2"); g != want {
				t.Fatalf("relaxing: streak %d, want %d", g, want)
			}
			e.Evaluate(quiet)
		}
		if g := e.RequiredStreak("s1", "s2"); g != 2 {
			t.Fatalf("relaxed streak %d, want 2", g)
		}
	})

	t.Run("a return slowed past the window stops counting", func(t *testing.T) {
		// Once the streak is 8, a return takes 10 cycles: past the window of 8,
		// so the streak stays below the cap of 16.
		e, _ := New(Config{PingPongMaxStreak: 16, Filter: FilterNone})
		e.Attached("s1")
		for i, want := range []int{2, 4, 8, 8, 8} {
			o, to := onS1, "s2"
			if i%2 == 1 {
				o, to = onS2, "s1"
			}
			untilBetter(t, e, o, to)
			e.Attached(to)
			if g := e.RequiredStreak("s1", "s2"); g != want {
				t.Fatalf("after move %d the s1/s2 streak is %d, want %d", i+1, g, want)
			}
		}
	})

	t.Run("a return after the window is not a ping-pong", func(t *testing.T) {
		e, _ := New(Config{PingPongWindow: 5, Filter: FilterNone})
		e.Attached("s1")
		untilBetter(t, e, onS1, "s2")
		e.Attached("s2")
		for range 6 {
			e.Evaluate(obs(in("s2", ms(50))))
		}
		e.Attached("s1")
		if g := e.RequiredStreak("s1", "s2"); g != 2 {
			t.Fatalf("streak %d, want 2", g)
		}
	})

	t.Run("a return within the window is", func(t *testing.T) {
		e, _ := New(Config{PingPongWindow: 5, Filter: FilterNone})
		e.Attached("s1")
		untilBetter(t, e, onS1, "s2")
		e.Attached("s2")
		for range 5 {
			e.Evaluate(obs(in("s2", ms(50))))
		}
		e.Attached("s1")
		if g := e.RequiredStreak("s1", "s2"); g != 4 {
			t.Fatalf("streak %d, want 4", g)
		}
	})

	t.Run("a forced departure is not", func(t *testing.T) {
		e, _ := New(Config{})
		e.Attached("s1")
		e.Forced()
		e.Attached("s2")
		e.Attached("s1")
		if g := e.RequiredStreak("s1", "s2"); g != 2 {
			t.Fatalf("streak %d, want 2", g)
		}
	})

	t.Run("the naive baseline is never damped", func(t *testing.T) {
		e := NewNaive()
		for _, id := range []string{"s1", "s2", "s1", "s2"} {
			e.Attached(id)
		}
		if g := e.RequiredStreak("s1", "s2"); g != 1 {
			t.Fatalf("streak %d, want 1", g)
		}
	})
}

func TestNaive(t *testing.T) {
	e := NewNaive()
	if e.Strategy() != Naive {
		t.Fatalf("strategy %q", e.Strategy())
	}
	cur := in("s1", ms(100))
	run(t, e, []tick{
		{obs: obs(cur, in("s2", ms(100)))},
		{obs: obs(cur, in("s2", ms(99))), want: "s2"},
		{obs: obs(cur, out("s3", ms(1)))},
		{attach: "s2", obs: obs(in("s2", ms(100)), in("s1", ms(1))), want: "cooldown"},
		{obs: obs(in("s2", ms(100)), in("s1", ms(1))), want: "s1"},
		{failed: "s1", obs: obs(in("s2", ms(100)), in("s1", ms(1))), want: "s1"},
	})
}

func TestConfig(t *testing.T) {
	if g := (Config{}).WithDefaults(); g != Default() {
		t.Fatalf("Config{}.WithDefaults() = %+v, want Default() = %+v", g, Default())
	}
	d := Default()
	if d.Improvement != 0.25 || d.Streak != 2 || d.CooldownCycles != 1 {
		t.Fatalf("Default() = %+v: want the seed's 25%%, 2 cycles, 1 cooldown cycle", d)
	}
	if d.Filter != FilterRobust || d.FilterK != 32 || d.NoiseMargin != 3.6 || d.MinDifference != time.Millisecond ||
		d.MaxMissedCycles != 3 {
		t.Fatalf("Default() = %+v: want the robust filter, k 32, margin 3.6, 1ms, 3 missed cycles", d)
	}
	if g := (Config{Streak: 5}).WithDefaults(); g.Streak != 5 || g.Improvement != 0.25 {
		t.Fatalf("WithDefaults overwrote a set field or missed a zero one: %+v", g)
	}
	cases := []struct {
		name  string
		cfg   Config
		field string // "" when valid
	}{
		{"zero value", Config{}, ""},
		{"defaults", Default(), ""},
		{"tuned", Config{Improvement: 0.1, Streak: 3, CooldownCycles: 2, BackoffCycles: 1, BackoffMaxCycles: 1,
			PingPongWindow: 3, PingPongMaxStreak: 3, PingPongRelaxCycles: 1}, ""},
		{"negative improvement (ratio above 1)", Config{Improvement: -0.1}, "Improvement"},
		{"improvement of 100%", Config{Improvement: 1}, "Improvement"},
		{"improvement above 100%", Config{Improvement: 1.5}, "Improvement"},
		{"NaN improvement", Config{Improvement: nan()}, "Improvement"},
		{"negative streak", Config{Streak: -1}, "Streak"},
		{"negative cooldown", Config{CooldownCycles: -1}, "CooldownCycles"},
		{"negative backoff", Config{BackoffCycles: -2}, "BackoffCycles"},
		{"negative backoff cap", Config{BackoffMaxCycles: -2}, "BackoffMaxCycles"},
		{"backoff cap below base", Config{BackoffCycles: 8, BackoffMaxCycles: 4}, "BackoffMaxCycles"},
		{"backoff base above default cap", Config{BackoffCycles: 64}, "BackoffMaxCycles"},
		{"negative window", Config{PingPongWindow: -1}, "PingPongWindow"},
		{"negative damping cap", Config{PingPongMaxStreak: -1}, "PingPongMaxStreak"},
		{"damping cap below streak", Config{Streak: 4, PingPongMaxStreak: 3}, "PingPongMaxStreak"},
		{"negative relax", Config{PingPongRelaxCycles: -1}, "PingPongRelaxCycles"},
		{"raw samples", Config{Filter: FilterNone}, ""},
		{"filter tuned", Config{Filter: FilterRobust, FilterK: 40, NoiseMargin: 0.5, MinDifference: time.Microsecond,
			MaxMissedCycles: 1}, ""},
		{"unknown filter", Config{Filter: "kalman"}, "Filter"},
		{"negative filter k", Config{FilterK: -1}, "FilterK"},
		{"filter k above 40", Config{FilterK: 41}, "FilterK"},
		{"negative noise margin", Config{NoiseMargin: -1}, "NoiseMargin"},
		{"NaN noise margin", Config{NoiseMargin: nan()}, "NoiseMargin"},
		{"negative min difference", Config{MinDifference: -time.Millisecond}, "MinDifference"},
		{"negative missed cycles", Config{MaxMissedCycles: -1}, "MaxMissedCycles"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			_, nerr := New(c.cfg)
			if c.field == "" {
				if err != nil || nerr != nil {
					t.Fatalf("Validate() = %v, New() = %v; want both nil", err, nerr)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !errors.Is(nerr, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, New() = %v; want ErrInvalidConfig", err, nerr)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Fatalf("error %q does not name %s", err, c.field)
			}
		})
	}
}

func nan() float64 { var z float64; return z / z }
