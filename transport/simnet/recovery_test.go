package simnet

import (
	"strings"
	"testing"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport/engine"
)

// The recovery scenarios of issue 11, in virtual time, with the default
// engine.Config: one row of the table each, asserting the time
// without a link and the messages lost. Publishing runs at 110/s on a
// substrate no node is attached to, as in the measurements.

const (
	pubRate  = 110
	cycle    = time.Second // the embedder's evaluation cycle
	faultAt  = 10 * time.Second
	stopPub  = 25 * time.Second
	runUntil = 30 * time.Second
)

// seeds is how many seeds each scenario runs: every seed draws other ties
// among equally good alternatives and other jitter. The chaos soak draws
// far more; these are the scenarios, each checked on a few draws.
func seeds() uint64 {
	if testing.Short() || raceEnabled {
		return 5
	}
	return 10
}

// fourPlusWriter is the setup: four substrates a node can use, a
// (the primary, the nearest) then b, c, d in order of round trip, and w
// where the writes are made, hidden from the nodes.
func fourPlusWriter(t *testing.T, seed uint64) *lab {
	l := newLab(t, seed,
		sub("a", 2*ms, 3*ms), sub("b", 2400*time.Microsecond, 4*ms), sub("c", 4*ms, 5*ms), sub("d", 6*ms, 6*ms),
		SubstrateConfig{ID: "w", Enclave: "writers", RTT: 2 * ms, Hidden: true})
	l.PublishRate("w", pubRate, time.Second, stopPub)
	return l
}

func TestPrimaryKilled(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= seeds(); seed++ {
		l := fourPlusWriter(t, seed)
		n := l.node("a", 0, cycle)
		l.At(faultAt, func() { l.Kill("a") })
		r := l.run(runUntil)
		nr := r.Nodes[n]
		if nr.WithoutLink > 500*time.Millisecond || nr.Lost != 0 || nr.Duplicates != 0 || nr.Owed == 0 {
			l.dump()
			t.Fatalf("seed %d: %+v: want attached elsewhere within 500ms, nothing lost or duplicated", seed, nr)
		}
		// The substrate that just died is not dialled again first.
		if at, ok := l.first(n, faultAt, func(tr engine.Transition) bool { return strings.Contains(tr.Candidate, "a") }); ok {
			l.dump()
			t.Fatalf("seed %d: the dead a dialled again at %v", seed, at)
		}
		if seed == 1 {
			t.Logf("primary killed: without link %v, lost %d of %d owed", nr.WithoutLink, nr.Lost, nr.Owed)
		}
	}
}

func TestGoodbyeFirstAlternativeHung(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= seeds(); seed++ {
		l := fourPlusWriter(t, seed)
		n := l.node("a", 0, cycle)
		l.At(faultAt-time.Second, func() { l.Hang("b") })
		l.At(faultAt, func() { l.Shutdown("a") })
		r := l.run(runUntil)
		nr := r.Nodes[n]
		if nr.WithoutLink != 0 || nr.Lost != 0 || nr.Duplicates != 0 || nr.Rehomes != 1 || nr.Primary == "a" || nr.Primary == "b" {
			l.dump()
			t.Fatalf("seed %d: %+v: want no time without a link, nothing lost, rehomed off a and b", seed, nr)
		}
		// b, the best measured alternative, must have been tried first.
		if _, ok := l.first(n, faultAt, func(tr engine.Transition) bool { return tr.Step.Event == fsm.Goodbye && tr.Candidate == "b" }); !ok {
			l.dump()
			t.Fatalf("seed %d: the goodbye did not dial the hung b first: the scenario proves nothing", seed)
		}
		if seed == 1 {
			t.Logf("goodbye, first alternative hung: without link %v, lost %d of %d owed, rehome %v", nr.WithoutLink, nr.Lost, nr.Owed, nr.Rehome)
		}
	}
}

func TestPrimaryHung(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= seeds(); seed++ {
		l := fourPlusWriter(t, seed)
		n := l.node("a", 0, cycle)
		l.At(faultAt, func() { l.Hang("a") })
		r := l.run(runUntil)
		nr := r.Nodes[n]
		at, ok := l.first(n, faultAt, welcomedElsewhere("a"))
		if !ok || at-faultAt > 6*time.Second || nr.Lost != 0 || nr.Duplicates != 0 || nr.Primary == "a" {
			l.dump()
			t.Fatalf("seed %d: %+v: welcomed elsewhere %v after the hang (found %v): want within 6s, nothing lost", seed, nr, at-faultAt, ok)
		}
		if seed == 1 {
			t.Logf("primary hung: welcomed elsewhere %v after the hang; %d messages published meanwhile cannot be had; lost %d of %d owed",
				at-faultAt, l.PublishedBetween(faultAt, at), nr.Lost, nr.Owed)
		}
	}
}

func TestHungCandidateDuringMigration(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= seeds(); seed++ {
		l := fourPlusWriter(t, seed)
		n := l.node("a", 0, cycle)
		// b becomes much nearer: the policy migrates, and b hangs as soon
		// as it is chosen.
		l.At(faultAt, func() { l.SetRTT("b", 500*time.Microsecond) })
		hungAt := time.Duration(-1)
		l.on = func(_ NodeID, tr engine.Transition) {
			if tr.Step.Event == fsm.CandidateBetter && hungAt < 0 {
				hungAt = l.Now()
				l.Hang("b")
			}
		}
		r := l.run(runUntil)
		nr := r.Nodes[n]
		if hungAt < 0 {
			l.dump()
			t.Fatalf("seed %d: no migration started: the scenario proves nothing", seed)
		}
		cancel, ok := l.first(n, hungAt, func(tr engine.Transition) bool { return tr.Step.Path == fsm.PathCancel })
		if !ok || nr.WithoutLink != 0 || nr.Lost != 0 || nr.Duplicates != 0 || nr.Primary != "a" {
			l.dump()
			t.Fatalf("seed %d: %+v: want the migration cancelled, a kept, nothing lost", seed, nr)
		}
		if seed == 1 {
			t.Logf("hung candidate: cancelled %v after the dial, old kept, lost %d of %d owed", cancel-hungAt, nr.Lost, nr.Owed)
		}
	}
}

func TestRefusalChain(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= seeds(); seed++ {
		l := fourPlusWriter(t, seed)
		n := l.node("a", 0, cycle)
		// b and c are full: one child each, capacity one. The children
		// are of another enclave: registered, they take the one place,
		// and nothing is forwarded to them (their deliveries were two
		// thirds of the run, and no part of the chain).
		l.SetMaxChildren("b", 1)
		l.SetMaxChildren("c", 1)
		for _, id := range []string{"b", "c"} {
			if _, err := l.AddNode(NodeConfig{Engine: engine.Config{Enclave: "other"}, Attach: id}); err != nil {
				t.Fatal(err)
			}
		}
		l.At(faultAt, func() { l.Shutdown("a") })
		r := l.run(runUntil)
		nr := r.Nodes[n]
		if nr.WithoutLink != 0 || nr.Lost != 0 || nr.Duplicates != 0 || nr.Primary != "d" || r.Refusals < 2 {
			l.dump()
			t.Fatalf("seed %d: %+v, %d refusals: want b and c refused, d reached with no time without a link, nothing lost", seed, nr, r.Refusals)
		}
		if seed == 1 {
			t.Logf("refusal chain: without link %v, rehome %v, %d refusals, lost %d of %d owed", nr.WithoutLink, nr.Rehome, r.Refusals, nr.Lost, nr.Owed)
		}
	}
}

func TestThunderingHerd(t *testing.T) {
	t.Parallel()
	// 300 children of a; b, c, d, e take 100 each. Equal: the four are
	// equally near, ties are broken at random. Nearest: b is nearer for
	// everyone (not by the 25 % the policy needs to move there before),
	// so everyone dials it first and 200 are refused.
	for _, tc := range []struct {
		name     string
		rttB     time.Duration
		refusals int
	}{{"equal", 2 * ms, 0}, {"nearest", 1600 * time.Microsecond, 200}} {
		const children = 300
		l := newLab(t, 7, sub("a", 2*ms, 3*ms), SubstrateConfig{ID: "w", Enclave: "w", RTT: ms, Hidden: true},
			SubstrateConfig{ID: "b", Enclave: "e", RTT: tc.rttB, Delay: 4 * ms, MaxChildren: 100},
			SubstrateConfig{ID: "c", Enclave: "e", RTT: 2 * ms, Delay: 5 * ms, MaxChildren: 100},
			SubstrateConfig{ID: "d", Enclave: "e", RTT: 2 * ms, Delay: 6 * ms, MaxChildren: 100},
			SubstrateConfig{ID: "e", Enclave: "e", RTT: 2 * ms, Delay: 7 * ms, MaxChildren: 100})
		// The children attach in the first 0.9 s and are out of their
		// cooldown two cycles later: a shuts down at 4 s, on nodes all
		// attached (checked). Writes from 500 ms before the shutdown to
		// 1 s after it cover its two goodbyes, the close 500 ms later and
		// every rehome (milliseconds, refusals included) with a message
		// every 20 ms; 300 nodes make the deliveries the cost of the run,
		// so they are not made longer. The run goes on 3 s after the
		// shutdown: any node left without a link would be counted.
		const shutAt = 4 * time.Second
		l.PublishRate("w", 50, shutAt-500*ms, shutAt+time.Second)
		for i := range children {
			l.node("a", time.Duration(i)*3*ms, cycle)
		}
		l.At(shutAt, func() {
			for i := range children {
				if st := l.Node(NodeID(i)).State(); st != fsm.Attached {
					t.Errorf("%s: n%d is %s when a shuts down, want attached: the herd would not start from rest", tc.name, i, st)
				}
			}
			l.Shutdown("a")
		})
		r := l.run(shutAt + 3*time.Second)
		maxLoad, mean := r.Load()
		t.Logf("thundering herd, %s: %d children of a rehomed in p50 %v, p99 %v, max %v; %d refusals; load max %d / mean %.1f; lost %d of %d owed; without link %v in all",
			tc.name, r.Total.Rehomes, Percentile(r.Rehome, 50), Percentile(r.Rehome, 99), Percentile(r.Rehome, 100), r.Refusals, maxLoad, mean,
			r.Total.Lost, r.Total.Owed, r.Total.WithoutLink)
		if r.Total.Rehomes != children || r.Total.Lost != 0 || r.Total.Duplicates != 0 || maxLoad > 100 || r.Refusals < tc.refusals ||
			r.Total.WithoutLink != 0 {
			l.dump()
			t.Fatalf("%s: %v: want all %d rehomed, ≥ %d refusals, nothing lost or duplicated, none over capacity, never without a link",
				tc.name, r, children, tc.refusals)
		}
		for _, nr := range r.Nodes {
			if nr.Primary == "" || nr.Primary == "a" {
				t.Fatalf("%s: %s ended on %q in %s", tc.name, nr.ID, nr.Primary, nr.State)
			}
		}
	}
}

func TestScheduledMigrations(t *testing.T) {
	t.Parallel()
	// Loopback-like: round trips of 0.5 and 2 ms (the policy ignores
	// differences under 1 ms), propagation of 1–3 ms. Every 6 s another
	// substrate becomes the nearest, so the policy migrates.
	us := time.Microsecond
	const nodes = 20
	subs := []string{"a", "b", "c", "d"}
	l := newLab(t, 3, sub("a", 500*us, 1000*us), sub("b", 500*us, 1500*us), sub("c", 500*us, 2*time.Millisecond),
		sub("d", 500*us, 3*time.Millisecond), SubstrateConfig{ID: "w", Enclave: "writers", RTT: 200 * us, Hidden: true})
	l.PublishRate("w", pubRate, time.Second, stopPub)
	for i := range nodes {
		l.node(subs[i%len(subs)], time.Duration(i)*10*time.Millisecond, cycle)
	}
	for k := 0; k*6 < 24; k++ { // every switch under writes: an idle one waits OverlapGrace
		near := subs[k%len(subs)]
		l.At(time.Duration(k*6)*time.Second, func() {
			for _, id := range subs {
				l.SetRTT(id, 2*time.Millisecond)
			}
			l.SetRTT(near, 500*us)
		})
	}
	r := l.run(runUntil)
	p50 := Percentile(r.Switch, 50)
	t.Logf("scheduled migrations: %d switches, candidate_better → old link closed p50 %v, p90 %v, max %v; lost %d, duplicates %d of %d owed",
		len(r.Switch), p50, Percentile(r.Switch, 90), Percentile(r.Switch, 100), r.Total.Lost, r.Total.Duplicates, r.Total.Owed)
	if len(r.Switch) < nodes*3 || r.Total.Lost != 0 || r.Total.Missed != 0 || r.Total.Duplicates != 0 || p50 >= 300*time.Millisecond ||
		Percentile(r.Switch, 90) >= 300*time.Millisecond {
		l.dump()
		t.Fatalf("%v: want ≥ %d switches, p50 and p90 under 300ms, nothing lost, missed or duplicated", r, nodes*3)
	}
}

// TestPrimaryHungWhileTheRaceIsStuck: the primary hangs while the best
// alternative is hung too and the next one refuses. Once the refusal is
// over, a substrate is there to be had: when the primary is declared dead,
// the refilled queue must be raced at once, not after the hung
// candidate's 10 s handshake timeout.
func TestPrimaryHungWhileTheRaceIsStuck(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= seeds(); seed++ {
		l := fourPlusWriter(t, seed)
		n := l.node("a", 0, cycle)
		l.At(faultAt-time.Second, func() {
			l.Hang("b")
			l.SetRefuse("c", true)
			l.SetRefuse("d", true)
		})
		l.At(faultAt, func() { l.Hang("a") })
		l.At(faultAt+2500*time.Millisecond, func() {
			l.SetRefuse("c", false)
			l.SetRefuse("d", false)
		})
		r := l.run(runUntil)
		nr := r.Nodes[n]
		at, ok := l.first(n, faultAt, welcomedElsewhere("a"))
		if !ok || at-faultAt > 6*time.Second || nr.Lost != 0 || nr.Duplicates != 0 {
			l.dump()
			t.Fatalf("seed %d: %+v: welcomed elsewhere %v after the hang (found %v): want within 6s", seed, nr, at-faultAt, ok)
		}
		if seed == 1 {
			t.Logf("primary hung, race stuck: welcomed elsewhere %v after the hang", at-faultAt)
		}
	}
}

// TestCandidateNeverForwards: the policy's candidate welcomes but never
// forwards (a substrate in another mesh, say). The overlap must never
// catch up, so the old link stays: every message published is delivered,
// not only those owed (a link that forwards nothing owes nothing).
func TestCandidateNeverForwards(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= seeds(); seed++ {
		l := fourPlusWriter(t, seed)
		n := l.node("a", 0, cycle)
		l.SetNoForward("b", true)
		l.At(faultAt, func() { l.SetRTT("b", 500*time.Microsecond) })
		r := l.run(runUntil)
		nr := r.Nodes[n]
		if _, ok := l.first(n, faultAt, func(tr engine.Transition) bool { return tr.Step.Event == fsm.OverlapExpired }); !ok {
			l.dump()
			t.Fatalf("seed %d: no overlap expired: the scenario proves nothing", seed)
		}
		if nr.Delivered != r.Published || nr.Lost != 0 || nr.Duplicates != 0 {
			l.dump()
			t.Fatalf("seed %d: %+v: delivered %d of %d published: want all, the old link kept", seed, nr, nr.Delivered, r.Published)
		}
	}
}

// TestSwitchFromALaggingSubstrate: the overlap's margin comes from the skew
// measured in earlier overlaps; here the old substrate has since fallen
// 200 ms behind the mesh. The messages published just before the new
// substrate registered the node still come on the old link for those
// 200 ms: the old link must stay until they have, whether writes are
// sparse (10/s, gaps longer than the margin) or stop just before the
// switch (nothing on the new link to measure the lag with).
func TestSwitchFromALaggingSubstrate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		rate     float64
		writesTo time.Duration
	}{{"sparse writes", 10, stopPub}, {"writes stop at the switch", pubRate, 12950 * ms}} {
		for seed := uint64(1); seed <= seeds(); seed++ {
			l := newLab(t, seed, sub("a", 4*ms, 5*ms), sub("b", 4*ms, 5*ms), sub("c", 4*ms, 5*ms),
				SubstrateConfig{ID: "w", Enclave: "writers", RTT: 2 * ms, Hidden: true})
			l.PublishRate("w", tc.rate, time.Second, tc.writesTo)
			n := l.node("a", 0, cycle)
			l.At(2*time.Second, func() { l.SetRTT("b", 2*ms) })                  // a → b, equal delays: a small skew is measured
			l.At(10*time.Second, func() { l.SetDelay("b", 200*ms) })             // b falls behind the mesh
			l.At(12*time.Second, func() { l.SetRTT("c", 200*time.Microsecond) }) // b → c at 13 s
			r := l.run(runUntil)
			nr := r.Nodes[n]
			if nr.Stats.Migrations < 2 || nr.Primary != "c" || nr.Lost != 0 || nr.Missed != 0 || nr.Duplicates != 0 {
				l.dump()
				t.Fatalf("%s, seed %d: %+v: want a → b → c with nothing lost or missed", tc.name, seed, nr)
			}
		}
	}
}

// TestMigrateToTheWrittenSubstrate: the only writer writes on b, and b is
// the policy's choice. REPRAM never forwards a substrate's own writes to
// its own children, so the new link carries none of the stream the old one
// does: the switch must still happen, with nothing lost or missed, not
// expire after OverlapMax and retry forever.
func TestMigrateToTheWrittenSubstrate(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= seeds(); seed++ {
		l := newLab(t, seed, sub("a", 4*ms, 5*ms), sub("b", 4*ms, 5*ms))
		l.PublishRate("b", pubRate, time.Second, stopPub)
		n := l.node("a", 0, cycle)
		l.At(2*time.Second, func() { l.SetRTT("b", ms) })
		r := l.run(runUntil)
		nr := r.Nodes[n]
		if nr.Stats.Migrations != 1 || nr.Stats.Cancelled != 0 || nr.Primary != "b" || nr.Lost != 0 || nr.Missed != 0 || nr.Duplicates != 0 {
			l.dump()
			t.Fatalf("seed %d: %+v: want one switch to b, nothing lost or missed", seed, nr)
		}
	}
}
