package metrics_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/repram/handover/transport"
	"github.com/repram/handover/transport/engine"
	"github.com/repram/handover/transport/metrics"
	"github.com/repram/handover/transport/substratetest"
)

// A runtime registers one Collector per node and serves the registry; here
// a migration from "far" to "near" shows in the scrape.
func Example() {
	mesh := substratetest.NewMesh(substratetest.MeshConfig{})
	defer mesh.Close()
	far, _ := mesh.Start(substratetest.Config{ID: "far"})
	near, _ := mesh.Start(substratetest.Config{ID: "near"})
	node, _ := transport.New(transport.Config{
		Identity: transport.Identity{NodeID: "t1", Enclave: substratetest.DefaultEnclave},
		// Gossip crosses this loopback mesh within milliseconds, so the
		// overlap's margin can be short; the defaults (50 ms to 1 s) suit
		// real networks.
		Tuning: engine.Tuning{OverlapFloor: 20 * time.Millisecond, OverlapGrace: 20 * time.Millisecond},
	})
	ctx := context.Background()
	defer node.Close(ctx)

	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.New(node, metrics.Options{}))
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()

	_ = node.Attach(ctx, transport.Substrate{ID: far.ID(), URL: far.URL(), Enclave: far.Enclave()})
	obs := transport.Observation{CurrentLatency: 80 * time.Millisecond, Candidates: []transport.Candidate{
		{Substrate: transport.Substrate{ID: near.ID(), URL: near.URL(), Enclave: near.Enclave()}, Latency: 5 * time.Millisecond}}}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if node.Status().Stats.Migrations == 1 {
			break
		}
		_, _ = node.Observe(ctx, obs)
	}
	// The switch is timed from the transitions, which the collector reads
	// on its own goroutine: scrape until it shows (bounded).
	var lines []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if lines = scrape(srv.URL); slices.Contains(lines, `handover_switch_seconds_count{cause="policy"} 1`) {
			break
		}
	}
	for _, line := range lines {
		for _, prefix := range []string{`handover_migrations_total{path="migrate"}`, `handover_state{state="cooldown"}`,
			`handover_switch_seconds_count`, `handover_joins_total`} {
			if strings.HasPrefix(line, prefix) {
				fmt.Println(line)
			}
		}
	}
	// Output:
	// handover_joins_total 1
	// handover_migrations_total{path="migrate"} 1
	// handover_state{state="cooldown"} 1
	// handover_switch_seconds_count{cause="policy"} 1
}

// scrape returns the lines of one scrape of url.
func scrape(url string) []string {
	resp, err := http.Get(url)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var lines []string
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		lines = append(lines, sc.Text())
	}
	return lines
}
