package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport/substratetest"
	"github.com/repram/handover/transport/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestShortScenarioCompare runs the short scenario through ours and both
// baselines (at once, as -compare does) and asserts the headline result.
// TestShortScenarioCompare compares ours with the baselines on the short
// scenario in virtual time (deterministic and quick); TestBackendsAgree
// holds the virtual back-end to what real sockets do on the same scenario.
func TestShortScenarioCompare(t *testing.T) {
	t.Parallel()
	sc, err := LoadScenario("short")
	if err != nil {
		t.Fatal(err)
	}
	res := make([]*Result, len(comparisons))
	for i, opt := range comparisons {
		if res[i], err = RunVirtual(sc, opt); err != nil {
			t.Fatalf("%s: %v", opt.Label(), err)
		}
	}
	ours, bbm, naive := res[0].Summary, res[1].Summary, res[2].Summary
	var out bytes.Buffer
	WriteTimeline(&out, res[0].Entries)
	WriteSummary(&out, ours)
	WriteComparison(&out, res)
	t.Logf("\n%s", out.String())

	if ours.Published == 0 || ours.Owed == 0 {
		t.Fatalf("nothing published or owed: the run proves nothing: %+v", ours)
	}
	if ours.Lost != 0 || ours.DuplicatesDelivered != 0 || ours.Failed() {
		t.Errorf("ours: lost %d, duplicates delivered %d: want 0 and 0", ours.Lost, ours.DuplicatesDelivered)
	}
	if ours.Migrations < 2 || ours.Cancelled < 1 || ours.Accelerated < 1 || ours.PingPongs != 0 {
		t.Errorf("ours: migrations %d (≥2), cancelled %d (≥1), accelerated %d (≥1), ping-pongs %d (0)",
			ours.Migrations, ours.Cancelled, ours.Accelerated, ours.PingPongs)
	}
	if ours.SwitchMsP50 <= 0 || ours.SwitchMsP99 < ours.SwitchMsP50 {
		t.Errorf("ours: switch p50 %v p99 %v", ours.SwitchMsP50, ours.SwitchMsP99)
	}
	if bbm.Lost == 0 {
		t.Errorf("break-before-make lost nothing at %v msg/s: the baseline's gap is not real", sc.PublishRate)
	}
	if naive.PingPongs == 0 || naive.Switches <= ours.Switches {
		t.Errorf("naive: %d ping-pongs, %d switches (ours %d): want it to flap on the jitter", naive.PingPongs, naive.Switches, ours.Switches)
	}
	if naive.Lost != 0 {
		t.Errorf("naive make-before-break lost %d: flapping must still not lose gossip", naive.Lost)
	}

	svg := string(SVG(res[0]))
	for _, want := range []string{"<svg", "</svg>", "us1", "eu2", "primary", "accelerated"} {
		if !strings.Contains(svg, want) {
			t.Errorf("plot lacks %q", want)
		}
	}
}

func TestScenariosParse(t *testing.T) {
	files, err := filepath.Glob("../../testdata/scenarios/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario files: %v", err)
	}
	for _, f := range files {
		if _, err := LoadScenario(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestParseScenarioRejects(t *testing.T) {
	base := `"node":{"enclave":"eu"},"cycle":"100ms","cycles":5,"start":"a","substrates":[{"id":"a","enclave":"eu","latency":[{"from":1,"latency":"10ms"}]}]`
	tests := map[string]string{
		"unknown field":   `{` + base + `,"bogus":1}`,
		"no enclave":      `{"cycle":"1s","cycles":1}`,
		"bad duration":    `{"node":{"enclave":"eu"},"cycle":"soon","cycles":1}`,
		"unknown start":   strings.Replace(`{`+base+`}`, `"start":"a"`, `"start":"z"`, 1),
		"unknown action":  `{` + base + `,"faults":[{"cycle":1,"substrate":"a","action":"explode"}]}`,
		"unknown fault":   `{` + base + `,"faults":[{"cycle":1,"substrate":"z","action":"kill"}]}`,
		"bad latency":     strings.Replace(`{`+base+`}`, `"10ms"`, `"fast"`, 1),
		"bad improvement": `{` + base + `,"policy":{"improvement":1.5}}`,
		"steps unordered": strings.Replace(`{`+base+`}`, `[{"from":1,"latency":"10ms"}]`, `[{"from":3,"latency":"10ms"},{"from":2,"latency":"5ms"}]`, 1),
	}
	for name, in := range tests {
		if _, err := ParseScenario([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseScenario([]byte(`{` + base + `}`)); err != nil {
		t.Fatalf("the valid base was rejected: %v", err)
	}
}

func TestLatencyScheduleIsDeterministic(t *testing.T) {
	a, err := LoadScenario("short")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := LoadScenario("short")
	for i := range a.Substrates {
		for c := 1; c <= a.Cycles; c++ {
			if a.Latency(i, c) != b.Latency(i, c) {
				t.Fatalf("substrate %d cycle %d: %v then %v", i, c, a.Latency(i, c), b.Latency(i, c))
			}
		}
	}
	if l := a.Latency(a.index("eu2"), 10); l < 23*time.Millisecond || l > 27*time.Millisecond {
		t.Errorf("eu2 at cycle 10 is %v, want 25ms ±5%%", l)
	}
}

func TestPingPongsAndPercentiles(t *testing.T) {
	moves := []Switch{
		{Cycle: 5, From: "a", To: "b", Cause: fsm.PathMigrate},
		{Cycle: 8, From: "b", To: "a", Cause: fsm.PathMigrate},  // back within the window
		{Cycle: 40, From: "a", To: "b", Cause: fsm.PathMigrate}, // too late
		{Cycle: 42, From: "b", To: "a", Cause: fsm.PathForced},  // forced: not a flap
	}
	if n := pingPongs(moves, 8); n != 1 {
		t.Errorf("ping-pongs %d, want 1", n)
	}
	if p := percentile([]float64{5, 1, 3, 2, 4}, 50); p != 3 {
		t.Errorf("p50 %v, want 3", p)
	}
	if p := percentile([]float64{5, 1, 3, 2, 4}, 99); p != 5 {
		t.Errorf("p99 %v, want 5", p)
	}
	if p := percentile(nil, 50); p != 0 {
		t.Errorf("p50 of nothing %v", p)
	}
}

func TestReplayJitter(t *testing.T) {
	_, reps, err := ReplayReports("../../testdata/traces/jitter.csv", PolicyConfig{}.Config())
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 3 || reps[0].Migrations != 0 || reps[1].Label() != "hysteresis/none" || reps[2].PingPongs == 0 {
		t.Fatalf("replays %v: want filtered and raw hysteresis with no migration and a flapping naive", reps)
	}
	var out bytes.Buffer
	if err := runReplay(flags{replay: "../../testdata/traces/step.csv", improvement: 0.2, streak: 3,
		set: map[string]bool{"improvement": true, "cycles": true}}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "improvement 20%, streak 3") || !strings.Contains(out.String(), "[3]") {
		t.Errorf("replay output ignores the flags or misses the reaction:\n%s", out.String())
	}
	for _, c := range []struct {
		filter string
		rows   []string // the strategy column, in order
	}{
		{"", []string{"hysteresis/robust", "hysteresis/none", "naive"}},
		{"robust", []string{"hysteresis/robust", "hysteresis/none", "naive"}},
		{"none", []string{"hysteresis/none", "naive"}},
	} {
		out.Reset()
		if err := runReplay(flags{replay: "../../testdata/traces/noise-spikes.csv", filter: c.filter}, &out); err != nil {
			t.Fatal(err)
		}
		var rows []string
		for l := range strings.SplitSeq(out.String(), "\n") {
			if f := strings.Fields(l); len(f) == 9 && (strings.HasPrefix(f[0], "hysteresis/") || f[0] == "naive") {
				rows = append(rows, f[0])
			}
		}
		if strings.Join(rows, " ") != strings.Join(c.rows, " ") {
			t.Errorf("-filter %q: rows %v, want %v:\n%s", c.filter, rows, c.rows, out.String())
		}
	}
	if err := runReplay(flags{replay: "../../testdata/traces/jitter.csv", filter: "kalman"}, &out); err == nil ||
		!strings.Contains(err.Error(), "kalman") {
		t.Errorf("-filter kalman: %v, want an error naming it", err)
	}
}

func TestScaleMassMigration(t *testing.T) {
	// The goodbye gap is REPRAM's 500 ms with a wide margin: under -race,
	// next to other packages' tests on two cores, 25 handshakes have taken
	// over 300 ms, and a node welcomed after the leaving substrate closed
	// honestly misses what was published in between.
	res, err := Scale(context.Background(), ScaleConfig{Nodes: 25, PublishRate: 50, GoodbyeGap: 2 * time.Second, Settle: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rehomed != 25 || res.Lost != 0 || res.DuplicatesDelivered != 0 || res.Published == 0 {
		t.Fatalf("%+v: want all 25 rehomed, something published, nothing lost or duplicated", res)
	}
	if res.Migrations+res.Accelerated+res.ContinuedAlone != 25 {
		t.Errorf("%+v: want one switch per node", res)
	}
	if res.WelcomeSamples != 25 || res.WelcomeMsP50 <= 0 {
		t.Errorf("%d welcome times, p50 %v ms: want one per node", res.WelcomeSamples, res.WelcomeMsP50)
	}
}

// TestScaleLeavingClosesMidOverlap: with a goodbye gap shorter than the
// minimum overlap, the leaving substrate closes while the nodes overlap
// or handshake, so they accelerate or continue alone; none may be left
// behind or get a message twice. (Loss is possible here by design: a node
// welcomed after the close misses what was published in between.)
func TestScaleLeavingClosesMidOverlap(t *testing.T) {
	t.Parallel()
	res, err := Scale(context.Background(), ScaleConfig{Nodes: 10, PublishRate: 50, GoodbyeGap: 100 * time.Millisecond, Settle: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rehomed != 10 || res.DuplicatesDelivered != 0 || res.Accelerated+res.ContinuedAlone == 0 {
		t.Fatalf("%+v: want all 10 rehomed, no duplicates, and the close to land mid-migration", res)
	}
}

func TestLiveAgainstSubstratetest(t *testing.T) {
	t.Parallel()
	secret := []byte("live-secret")
	mesh := substratetest.NewMesh(substratetest.MeshConfig{Secret: secret})
	defer mesh.Close()
	var targets []string
	for i, id := range []string{"live-a", "live-b", "live-c"} {
		s, err := mesh.Start(substratetest.Config{ID: id})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			targets = append(targets, s.Addr()) // learned by probing
		} else {
			targets = append(targets, id+"@"+s.Addr())
		}
	}
	var stop atomic.Bool
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for !stop.Load() {
			if _, err := mesh.Publish(wire.Message{Data: []byte("x")}); err != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	res, err := Live(context.Background(), LiveConfig{Targets: targets, Secret: secret, Enclave: substratetest.DefaultEnclave,
		NodeID: "live-node", Cycle: 50 * time.Millisecond, MigrateEvery: 300 * time.Millisecond, Duration: 1500 * time.Millisecond,
		PublishRate: 100,
		Transport: Timings{OverlapFloor: Duration(30 * time.Millisecond), OverlapGrace: Duration(60 * time.Millisecond),
			OverlapMax: Duration(time.Second), HandshakeTimeout: Duration(time.Second), Heartbeat: Duration(100 * time.Millisecond)}})
	stop.Store(true)
	<-pubDone
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Migrations < 2 || res.Switches != res.Migrations || res.DistinctIDs == 0 || res.GossipDelivered != res.DistinctIDs {
		t.Fatalf("%+v: want scheduled migrations, each a switch, and gossip delivered once each", res)
	}
	// The writes migsim made over the substrates' HTTP API, each on a
	// substrate neither primary nor candidate, came back through the mesh.
	if res.Owed == 0 || res.PublishErrors != 0 || res.Lost != 0 || res.DuplicatesDelivered != 0 {
		t.Fatalf("published %d, owed %d, refused %d, lost %d, duplicated %d: want writes owed, none refused, lost or duplicated",
			res.Published, res.Owed, res.PublishErrors, res.Lost, res.DuplicatesDelivered)
	}
}

func TestComparisonSVGNames(t *testing.T) {
	for i, want := range []string{"out/run.svg", "out/run-break-before-make.svg", "out/run-naive.svg"} {
		if got := comparisonSVG("out/run.svg", i); got != want {
			t.Errorf("comparisonSVG(run.svg, %d) = %q, want %q", i, got, want)
		}
	}
}

func TestFailedAndDocs(t *testing.T) {
	if (Summary{Lost: 1}).Failed() != true || (Summary{DuplicatesDelivered: 1}).Failed() != true || (Summary{}).Failed() {
		t.Fatal("Failed must hold exactly when something was lost or duplicated")
	}
	if _, err := os.Stat("../../testdata/scenarios/README.md"); err != nil {
		t.Errorf("the scenario format is undocumented: %v", err)
	}
}
