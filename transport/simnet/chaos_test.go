package simnet

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/repram/handover/transport/engine"
)

// The chaos soak: seeded random fault schedules run through the engine in
// virtual time, with the default engine config. Every step is checked by
// the simulator (the engine's links agree with its state and with the
// network, no second hello on a substrate); every run is checked for
// duplicates, losses, memory and liveness; every 16th seed is run twice and
// must give the same transitions and report.
//
// SIMNET_CHAOS sets the number of schedules of each of the two tests; the
// default is 100 each, so that `go test ./...` stays quick; .ci/run also
// runs the full soak, SIMNET_CHAOS=5000 (10,000 schedules in all).
// SIMNET_SEED=n replays schedule n alone, logging every transition.
//
// What the default still catches, measured by mutating the engine (the
// first failing seed of TestChaos / TestChaosFailStop at 5,000 each): dedup
// disabled (2 / 1), close_old after promote_candidate (1 / 1), rejoin never
// due (14 / 26), the primary's own substrate dialled again (36 / 2695),
// rivals left open (45 / 52). A removed catch-up condition fails only seed
// 3069 of TestChaos: the fault matrix and TestCandidateNeverForwards are
// what catch it, the full soak only backs them up.

// chaosCount is how many schedules each chaos test runs.
func chaosCount(t *testing.T) int {
	if v := os.Getenv("SIMNET_CHAOS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("SIMNET_CHAOS=%q: want a positive number of schedules", v)
		}
		return n
	}
	return 100
}

const (
	chaosFaults = 8 * time.Second  // faults and writes happen before this
	chaosHeal   = 12 * time.Second // then everything heals: every node must be attached by the end
)

// chaosOutcome is what one schedule produced.
type chaosOutcome struct {
	report Report
	trace  uint64 // hash of every transition, in order
	faults []string
	sim    *Sim
}

// chaosRun runs schedule seed. Lossless schedules use only faults after
// which the protocol can deliver everything owed (kill, shutdown, refusal,
// capacity, a hang that never resumes, round trips, forwarding stopped);
// the others add what can make a loss the engine cannot prevent (a hang
// that resumes with a backlog, propagation delays that change under the
// overlap's skew estimate, corrupt frames, slow hellos).
func chaosRun(seed uint64, failStop bool, logf func(string, ...any)) (chaosOutcome, error) {
	rng := rand.New(rand.NewPCG(seed, 0xc4a05))
	var out chaosOutcome
	h := fnv.New64a()
	var buf []byte
	var s *Sim
	s = New(Config{Seed: seed, OnTransition: func(n NodeID, tr engine.Transition) {
		// "n at from event guard primary candidate|", appended rather than
		// formatted: this runs for every transition of the soak.
		buf = strconv.AppendInt(buf[:0], int64(n), 10)
		buf = append(buf, ' ')
		buf = strconv.AppendInt(buf, tr.At.UnixNano(), 10)
		for _, f := range [...]string{string(tr.Step.From), string(tr.Step.Event), string(tr.Step.Guard), tr.Primary, tr.Candidate} {
			buf = append(append(buf, ' '), f...)
		}
		h.Write(append(buf, '|'))
		if logf != nil {
			logf("n%d %v %s --%s[%s]--> %s primary=%s cand=%s: %s", n, s.Now(), tr.Step.From, tr.Step.Event, tr.Step.Guard,
				tr.Step.To, tr.Primary, tr.Candidate, tr.Reason)
		}
	}})
	nsubs := 3 + rng.IntN(3)
	ids := make([]string, nsubs)
	for i := range ids {
		ids[i] = string(rune('a' + i))
		c := SubstrateConfig{ID: ids[i], Enclave: "e",
			RTT:   time.Duration(500+rng.IntN(9500)) * time.Microsecond,
			Delay: time.Duration(1+rng.IntN(20)) * time.Millisecond}
		if rng.IntN(4) == 0 {
			c.MaxChildren = 1 + rng.IntN(2)
		}
		if rng.IntN(5) == 0 && i > 0 { // a partial mesh: knows only a and its neighbour
			c.Peers = []string{"a", ids[i-1], "w"}
		}
		s.MustAddSubstrate(c)
	}
	s.MustAddSubstrate(SubstrateConfig{ID: "w", Enclave: "w", RTT: time.Millisecond, Hidden: true})
	s.PublishRate("w", float64(10+rng.IntN(20)), 0, chaosFaults)
	nnodes := 1 + rng.IntN(3)
	for range nnodes {
		if _, err := s.AddNode(NodeConfig{Engine: engine.Config{Enclave: "e"}, Attach: ids[rng.IntN(nsubs)],
			At: time.Duration(rng.IntN(500)) * time.Millisecond, ObserveEvery: time.Second}); err != nil {
			return out, err
		}
	}
	hung := map[string]bool{}
	kinds := 7
	if !failStop {
		kinds = 11
	}
	for range 2 + rng.IntN(8) {
		at := time.Duration(500+rng.IntN(int(chaosFaults/time.Millisecond)-1000)) * time.Millisecond
		id := ids[rng.IntN(nsubs)]
		var name string
		var f func()
		switch rng.IntN(kinds) {
		case 0:
			name, f = "kill", func() { s.Kill(id) }
		case 1:
			name, f = "shutdown", func() { s.Shutdown(id) }
		case 2:
			name, f = "restart", func() { s.Restart(id) }
		case 3:
			on := rng.IntN(2) == 0
			name, f = fmt.Sprint("refuse ", on), func() { s.SetRefuse(id, on) }
		case 4:
			on := rng.IntN(2) == 0
			name, f = fmt.Sprint("full ", on), func() { s.SetFull(id, on) }
		case 5:
			hung[id] = true
			name, f = "hang", func() { s.Hang(id) }
		case 6:
			rtt := time.Duration(200+rng.IntN(20_000)) * time.Microsecond
			name, f = fmt.Sprint("rtt ", rtt), func() { s.SetRTT(id, rtt) }
		case 7:
			name, f = "resume", func() { s.Resume(id) }
		case 8:
			d := time.Duration(rng.IntN(300)) * time.Millisecond
			name, f = fmt.Sprint("delay ", d), func() { s.SetDelay(id, d) }
		case 9:
			on := rng.IntN(2) == 0
			name, f = fmt.Sprint("bad frames ", on), func() { s.SetBadFrames(id, on) }
		case 10:
			d := time.Duration(rng.IntN(3000)) * time.Millisecond
			name, f = fmt.Sprint("slow hello ", d), func() { s.SetSlowHello(id, d) }
		}
		out.faults = append(out.faults, fmt.Sprintf("%v %s %s", at, id, name))
		s.At(at, f)
	}
	if !failStop && rng.IntN(3) == 0 {
		id := ids[rng.IntN(nsubs)]
		out.faults = append(out.faults, "no forward "+id)
		s.At(time.Second, func() { s.SetNoForward(id, true) })
	}
	// Heal: a hung substrate is killed and restarted (a resumed one would
	// forward its backlog on links the engine has given up on), every
	// other fault is undone.
	s.At(chaosFaults, func() {
		for _, id := range ids {
			if hung[id] || s.mustSub(id).hung {
				s.Kill(id)
			}
			s.Restart(id)
			s.SetRefuse(id, false)
			s.SetFull(id, false)
			s.SetNoForward(id, false)
			s.SetBadFrames(id, false)
			s.SetSlowHello(id, 0)
		}
	})
	// Memory stays bounded: links per node, the queue.
	for k := time.Duration(0); k <= chaosFaults+chaosHeal; k += 500 * time.Millisecond {
		s.At(k, func() {
			for _, n := range s.nodes {
				if len(n.links) > 4 {
					s.fail("node %s holds %d links: more than the race width and a primary", n.id, len(n.links))
				}
				if _, l := n.eng.DedupStats(); l > 10_000 {
					s.fail("node %s: dedup holds %d ids for a few hundred messages", n.id, l)
				}
			}
			if len(s.q) > 100_000 {
				s.fail("%d events queued", len(s.q))
			}
		})
	}
	err := s.Run(chaosFaults + chaosHeal)
	out.report, out.trace, out.sim = s.Report(), h.Sum64(), s
	return out, err
}

// checkChaos checks one outcome's invariants.
func checkChaos(o chaosOutcome) error {
	r := o.report
	if r.Total.Duplicates != 0 || r.UnowedDelivered != 0 {
		return fmt.Errorf("%d duplicates, %d delivered never forwarded", r.Total.Duplicates, r.UnowedDelivered)
	}
	if r.Total.LostHealthy != 0 {
		return fmt.Errorf("%d lost from links the node closed while their substrate was healthy", r.Total.LostHealthy)
	}
	if r.Published == 0 || r.Total.Owed == 0 {
		return fmt.Errorf("nothing published or owed: the schedule proves nothing")
	}
	for _, nr := range r.Nodes {
		if nr.Primary == "" {
			return fmt.Errorf("%s ended %s without a primary %v after everything healed", nr.ID, nr.State, chaosHeal)
		}
	}
	return nil
}

func testChaos(t *testing.T, failStop bool) {
	if v := os.Getenv("SIMNET_SEED"); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SIMNET_SEED=%q: want a seed", v)
		}
		o, err := chaosRun(seed, failStop, t.Logf)
		if err == nil {
			err = checkChaos(o)
		}
		t.Logf("faults %q\nreport %v\n%+v", o.faults, o.report, o.report.Nodes)
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	n := chaosCount(t)
	start, cpu0 := time.Now(), cpuTime()
	var lost, missed, owed, transitions int
	for seed := uint64(1); seed <= uint64(n); seed++ {
		o, err := chaosRun(seed, failStop, nil)
		if err == nil {
			err = checkChaos(o)
		}
		if err == nil && seed%16 == 0 {
			again, err2 := chaosRun(seed, failStop, nil)
			switch {
			case err2 != nil:
				err = fmt.Errorf("second run failed: %w", err2)
			case again.trace != o.trace || fmt.Sprint(again.report) != fmt.Sprint(o.report):
				err = fmt.Errorf("not deterministic: trace %x then %x, report %v then %v", o.trace, again.trace, o.report, again.report)
			}
		}
		if err != nil {
			t.Fatalf("seed %d (faults %q): %v\nreport: %v\nreplay: SIMNET_SEED=%d go test -run '%s$' ./transport/simnet/",
				seed, o.faults, err, o.report, seed, t.Name())
		}
		lost += o.report.Total.Lost
		missed += o.report.Total.Missed
		owed += o.report.Total.Owed
		transitions += o.report.Total.Transitions
	}
	el, cpu := time.Since(start), cpuTime()-cpu0
	t.Logf("%d schedules in %v (%.0f schedules/s; %.0f per CPU second of this process, shared by the soaks that run in parallel), %d transitions, lost %d of %d owed, missed %d (not asserted: a successor failing before it forwarded them makes them too)",
		n, el.Round(time.Millisecond), float64(n)/el.Seconds(), float64(n)/cpu.Seconds(), transitions, lost, owed, missed)
}

// cpuTime is the CPU time this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestChaosFailStop soaks the engine in fail-stop faults.
func TestChaosFailStop(t *testing.T) { t.Parallel(); testChaos(t, true) }

// TestChaos soaks the engine in every fault.
func TestChaos(t *testing.T) { t.Parallel(); testChaos(t, false) }
