package simnet

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport/engine"
)

// The simulator's own mechanics, each against the REPRAM behaviour it
// stands for.

func TestEnclaveWelcomedNeverForwarded(t *testing.T) {
	l := newLab(t, 1, sub("a", 2*ms, 2*ms), SubstrateConfig{ID: "w", Enclave: "w", RTT: ms, Hidden: true})
	l.PublishRate("w", 50, time.Second, 3*time.Second)
	n, err := l.AddNode(NodeConfig{Engine: engine.Config{Enclave: "elsewhere"}, Attach: "a"})
	if err != nil {
		t.Fatal(err)
	}
	r := l.run(5 * time.Second)
	if nr := r.Nodes[n]; nr.State != fsm.Attached || nr.Owed != 0 || nr.Delivered != 0 || r.Published == 0 {
		t.Fatalf("%+v, %d published: want welcomed (attached), nothing forwarded, nothing owed", nr, r.Published)
	}
}

func TestPartialMesh(t *testing.T) {
	l := newLab(t, 1, sub("a", 2*ms, 2*ms), sub("b", 2*ms, 2*ms),
		SubstrateConfig{ID: "c", Enclave: "e", RTT: 2 * ms, Delay: 2 * ms, Peers: []string{"a"}})
	n := l.node("c", 0, 0)
	l.At(time.Second, func() { l.Publish("a"); l.Publish("b"); l.Publish("c") })
	r := l.run(2 * time.Second)
	if nr := r.Nodes[n]; nr.Delivered != 1 || nr.Owed != 1 || r.Published != 3 {
		t.Fatalf("%+v: want a's publish only: b is not c's peer, and c never forwards its own writes to its children", nr)
	}
	if w := l.byID["c"].welcomeFor(l.Sim); len(w.Topology) != 1 || w.Topology[0].NodeInfo.ID != "a" {
		t.Fatalf("c's welcome names %+v: want its one peer a", w.Topology)
	}
}

func TestShutdownSaysGoodbyeTwiceThenCloses(t *testing.T) {
	// A single substrate: no alternative, so the node keeps the leaving
	// link (goodbye ignored) until it closes.
	l := newLab(t, 1, SubstrateConfig{ID: "a", Enclave: "e", RTT: 10 * ms, Delay: ms, Peers: []string{}})
	n := l.node("a", 0, 0)
	l.At(time.Second, func() { l.Shutdown("a") })
	l.run(3 * time.Second)
	died, ok := l.first(n, time.Second, func(tr engine.Transition) bool { return tr.Step.Event == fsm.OldDied })
	if want := time.Second + GoodbyeInterval + 5*ms; !ok || died != want {
		l.dump()
		t.Fatalf("old_died at %v (%v): want %v, the close one way after the second goodbye", died, ok, want)
	}
	if st := l.Node(n).Stats(); st.Forced != 0 {
		t.Fatalf("%+v: no alternative, no forced migration", st)
	}
	if l.Children("a") != 0 || !l.Report().Substrates[0].Dead {
		t.Fatal("a shut down but still has children or is alive")
	}
}

func TestCapacityRefusalNamesAlternatives(t *testing.T) {
	l := newLab(t, 1, SubstrateConfig{ID: "a", Enclave: "e", RTT: 2 * ms, MaxChildren: 1}, sub("b", 4*ms, ms))
	l.node("a", 0, 0)
	second := l.node("a", 100*ms, 0)
	r := l.run(2 * time.Second)
	if r.Refusals != 1 || r.Nodes[second].Primary != "b" || l.Children("a") != 1 || l.Children("b") != 1 {
		l.dump()
		t.Fatalf("%v %+v: want the second node refused at capacity and attached to b", r, r.Nodes[second])
	}
	if g := l.goodbyes[0]; g.Reason != "at capacity" || len(g.AlternativeParents) != 1 || g.AlternativeParents[0].ID != "b" {
		t.Fatalf("goodbye %+v: want at capacity, naming b", g)
	}
}

func TestKillDeliversWhatWasSentThenRefuses(t *testing.T) {
	l := newLab(t, 1, sub("a", 20*ms, 0), SubstrateConfig{ID: "w", Enclave: "w", RTT: ms, Hidden: true})
	n := l.node("a", 0, 0)
	l.At(time.Second, func() { l.Publish("w") })
	l.At(time.Second+5*ms, func() { l.Kill("a") }) // the frame is on the wire for another 5 ms
	r := l.run(3 * time.Second)
	if nr := r.Nodes[n]; nr.Delivered != 1 || nr.Lost != 0 || nr.Stats.Rejoins == 0 || nr.Stats.Joins != 1 {
		l.dump()
		t.Fatalf("%+v: want the frame sent before the kill delivered, and every later dial refused", nr)
	}
}

func TestHangHoldsEverythingUntilResume(t *testing.T) {
	l := newLab(t, 1, SubstrateConfig{ID: "a", Enclave: "e", RTT: 2 * ms, Peers: []string{"w"}},
		SubstrateConfig{ID: "w", Enclave: "w", RTT: ms, Hidden: true})
	n := l.node("a", 0, 0)
	l.At(time.Second, func() { l.Hang("a") })
	l.At(1100*ms, func() { l.Publish("w") })
	l.At(1200*ms, func() { l.Resume("a") })
	r := l.run(2 * time.Second)
	if nr := r.Nodes[n]; nr.Delivered != 1 || nr.State != fsm.Attached {
		t.Fatalf("%+v: want the message held while hung, delivered on resume", nr)
	}
	if at, ok := l.first(n, time.Second, func(engine.Transition) bool { return true }); ok {
		t.Fatalf("a transition at %v: a 200 ms stop is shorter than the suspicion timeout", at)
	}
}

func TestSecondHelloFailsTheRun(t *testing.T) {
	l := newLab(t, 1, sub("a", 2*ms, 0))
	n := l.node("a", 0, 0)
	l.run(time.Second)
	// What an engine that forgot its primary's substrate would do.
	node := l.nodes[n]
	l.effect(node, engine.Dial{Link: 99, Target: l.byID["a"].substrate()})
	l.effect(node, engine.SendHello{Link: 99})
	err := l.Run(2 * time.Second)
	if err == nil || !strings.Contains(err.Error(), "hello twice") {
		t.Fatalf("err = %v: want the run failed on the second hello", err)
	}
}

func TestLeakedLinkFailsTheRun(t *testing.T) {
	l := newLab(t, 1, sub("a", 2*ms, 0), sub("b", 2*ms, 0))
	n := l.node("a", 0, 0)
	l.run(time.Second)
	l.effect(l.nodes[n], engine.Dial{Link: 99, Target: l.byID["b"].substrate()}) // a link the engine does not hold
	l.step(l.nodes[n], engine.Tick{})
	if err := l.Run(2 * time.Second); err == nil || !strings.Contains(err.Error(), "leaked") {
		t.Fatalf("err = %v: want the run failed on a link the engine does not hold", err)
	}
}

func TestDeterministic(t *testing.T) {
	run := func() (Report, string) {
		l := fourPlusWriter(t, 42)
		for i := range 10 {
			l.node(string(rune('a'+i%4)), time.Duration(i)*7*ms, cycle)
		}
		l.At(faultAt, func() { l.Shutdown("a") })
		l.At(faultAt+time.Second, func() { l.Hang("b") })
		l.At(faultAt+3*time.Second, func() { l.Kill("c") })
		r := l.run(runUntil)
		var b strings.Builder
		for n := NodeID(0); n < 10; n++ {
			for _, tr := range l.trs[n] {
				fmt.Fprintf(&b, "%d %v %s %s %s %s|", n, l.at(tr), tr.Step.Event, tr.Step.To, tr.Primary, tr.Candidate)
			}
		}
		return r, b.String()
	}
	r1, t1 := run()
	r2, t2 := run()
	if t1 != t2 || fmt.Sprint(r1) != fmt.Sprint(r2) || fmt.Sprint(r1.Nodes) != fmt.Sprint(r2.Nodes) {
		t.Fatalf("two runs of seed 42 differ:\n%v\n%v", r1, r2)
	}
	if r1.Total.Transitions < 30 {
		t.Fatalf("%v: too few transitions for the comparison to mean anything", r1)
	}
}

func TestFramesKeepTheirOrder(t *testing.T) {
	// A TCP stream: a close sent after a frame never overtakes it, even
	// when the round trip dropped in between.
	l := newLab(t, 1, sub("a", 200*ms, 0), SubstrateConfig{ID: "w", Enclave: "w", RTT: ms, Hidden: true})
	n := l.node("a", 0, 0)
	l.At(2*time.Second, func() { l.Publish("w") })
	l.At(2*time.Second+10*ms, func() {
		l.SetRTT("a", 2*ms)
		l.Kill("a")
	})
	r := l.run(3 * time.Second)
	if nr := r.Nodes[n]; nr.Delivered != 1 || nr.Lost != 0 {
		l.dump()
		t.Fatalf("%+v: want the frame sent before the close delivered before it", nr)
	}
}

func TestRTTSpread(t *testing.T) {
	rtts := func(seed uint64) []time.Duration {
		s := New(Config{Seed: seed, RTTSpread: 0.5})
		s.MustAddSubstrate(SubstrateConfig{ID: "a", RTT: 10 * ms})
		var out []time.Duration
		for range 200 {
			id, err := s.AddNode(NodeConfig{})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, time.Duration(s.rttTo(s.nodes[id], s.subs[0])))
		}
		return out
	}
	a, b, c := rtts(1), rtts(1), rtts(2)
	lo, hi := slices.Min(a), slices.Max(a)
	if !slices.Equal(a, b) || slices.Equal(a, c) || lo < 5*ms || hi > 15*ms || hi-lo < 8*ms {
		t.Fatalf("spread 0.5 of 10ms: min %v max %v, same seed equal %v, other seed equal %v: want [5ms, 15ms], well spread, by seed",
			lo, hi, slices.Equal(a, b), slices.Equal(a, c))
	}
}

func TestRunIsBounded(t *testing.T) {
	s := New(Config{MaxEvents: 1000})
	var loop func()
	loop = func() { s.At(s.Now(), loop) }
	s.At(time.Second, loop)
	if err := s.Run(time.Hour); !errors.Is(err, ErrTooManyEvents) {
		t.Fatalf("err = %v: want ErrTooManyEvents for a zero-delay loop", err)
	}
}

// TestAccountingSeesAnEarlySwitch: an engine tuned to switch almost at
// once (a 2 ms overlap). Leaving a substrate that lags the mesh by 200 ms,
// the messages published just before the new substrate registered the
// node reach the old one after the node left: Owed cannot see them, Missed
// must. Leaving one 200 ms away, what it forwarded is still on the wire
// when the node closes the link: LostHealthy must count it.
func TestAccountingSeesAnEarlySwitch(t *testing.T) {
	for _, tc := range []struct {
		name         string
		old          SubstrateConfig
		missed, lost bool
	}{
		{"lagging mesh", sub("a", 4*ms, 200*ms), true, false},
		{"far link", sub("a", 400*ms, 5*ms), false, true},
	} {
		l := newLab(t, 1, tc.old, sub("b", 4*ms, 5*ms), SubstrateConfig{ID: "w", Enclave: "w", RTT: ms, Hidden: true})
		l.PublishRate("w", 50, time.Second, 10*time.Second)
		n, err := l.AddNode(NodeConfig{Engine: engine.Config{Enclave: "e", Tuning: engine.Tuning{OverlapFloor: ms, OverlapGrace: 2 * ms}},
			Attach: "a", ObserveEvery: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		l.At(3*time.Second, func() { l.SetRTT("b", ms) })
		r := l.run(12 * time.Second)
		nr := r.Nodes[n]
		if nr.Stats.Migrations != 1 || (nr.Missed > 0) != tc.missed || (nr.LostHealthy > 0) != tc.lost || nr.Lost != nr.LostHealthy {
			l.dump()
			t.Fatalf("%s: %+v: want one early switch, missed %v, lost (all healthy) %v", tc.name, nr, tc.missed, tc.lost)
		}
	}
}

// TestMessageIDs: ids cut from shared blocks are "m<index>", across block
// boundaries and digit counts.
func TestMessageIDs(t *testing.T) {
	s := New(Config{})
	s.MustAddSubstrate(sub("a", ms, ms))
	for i := range 3*idBlock + 5 {
		if got := s.msgs; len(got) != i {
			t.Fatalf("%d messages after %d publishes", len(got), i)
		}
		s.Publish("a")
		if id, want := s.msgs[i].id, "m"+strconv.Itoa(i); id != want {
			t.Fatalf("message %d has id %q, want %q", i, id, want)
		}
	}
}
