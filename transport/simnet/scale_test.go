package simnet

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/repram/handover/transport/engine"
)

// TestScale measures a large run: SIMNET_SCALE=nodes (200 per substrate)
// nodes attach, one substrate shuts down gracefully, writes flow at 5/s.
// Skipped unless SIMNET_SCALE is set; it reports wall time and heap per
// node, which hold only on a quiet machine.
func TestScale(t *testing.T) {
	v := os.Getenv("SIMNET_SCALE")
	if v == "" {
		t.Skip("set SIMNET_SCALE=nodes to run")
	}
	nodes, err := strconv.Atoi(v)
	if err != nil || nodes < 200 {
		t.Fatalf("SIMNET_SCALE=%q: want at least 200 nodes", v)
	}
	start := time.Now()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	subs := nodes / 200
	s := New(Config{Seed: 1, NoChecks: true})
	for i := range subs + 1 {
		s.MustAddSubstrate(SubstrateConfig{ID: fmt.Sprint("s", i), Enclave: "e", RTT: time.Duration(1+i%7) * time.Millisecond,
			Delay: time.Duration(1+i%13) * time.Millisecond, MaxChildren: 300})
	}
	s.MustAddSubstrate(SubstrateConfig{ID: "w", Enclave: "w", RTT: time.Millisecond, Hidden: true})
	for i := range nodes {
		if _, err := s.AddNode(NodeConfig{Engine: engine.Config{Enclave: "e"}, Attach: fmt.Sprint("s", i%subs),
			At: time.Duration(i%1000) * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}
	built := time.Since(start)
	s.PublishRate("w", 5, time.Second, 8*time.Second)
	s.At(5*time.Second, func() { s.Shutdown("s0") })
	if err := s.Run(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	r := s.Report()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	maxLoad, mean := r.Load()
	t.Logf("%d nodes, %d substrates: built in %v, ran 10 s virtual in %v; heap %.1f KiB/node; %v; rehome p50 %v p99 %v; load max %d mean %.0f",
		nodes, subs+1, built.Round(time.Millisecond), time.Since(start).Round(time.Millisecond),
		float64(after.HeapAlloc-before.HeapAlloc)/1024/float64(nodes), r, Percentile(r.Rehome, 50), Percentile(r.Rehome, 99), maxLoad, mean)
	if r.Total.Lost != 0 || r.Total.Duplicates != 0 || r.Total.Rehomes != 200 {
		t.Fatalf("%v: want the 200 children of s0 rehomed, nothing lost", r)
	}
}
