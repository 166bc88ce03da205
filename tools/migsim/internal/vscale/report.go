package vscale

import (
	"fmt"
	"io"
	"time"
)

// WriteReport prints a Result as a short table.
func WriteReport(w io.Writer, r Result) {
	c := r.Config
	fmt.Fprintf(w, "migsim scale (virtual time, seed %d): %d nodes on %d substrates (max children %d, %d peers each, %d regions),\n"+
		"%.0f writes/s, s0 shuts down gracefully at %v (goodbye twice 500 ms apart, then close), churn %.1f substrates/min, noise ×%.1f,\n"+
		"%v of virtual time, evaluation cycle %v.\n\n",
		c.Seed, r.Nodes, r.Substrates, r.MaxChildren, c.Peers, c.Regions, c.PublishRate, c.Shutdown, c.Churn, c.Noise, c.Duration, c.Cycle)
	row := func(name string, v any, note string) { fmt.Fprintf(w, "  %-26s %-16v %s\n", name, v, note) }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	row("published", r.Published, "writes")
	row("owed / delivered", fmt.Sprintf("%d / %d", r.Owed, r.Delivered), "forwarded on an open link of the node's / distinct deliveries")
	row("lost", r.Lost, "owed, never delivered")
	row("duplicates", r.Duplicates, "delivered twice")
	row("shutdowns", r.Shutdowns, "graceful: s0, then churn")
	row("rehomes", r.Rehomes, "first goodbye → welcome from another substrate")
	row("rehome p50 / p99 / max", ms(r.RehomeP50)+" / "+ms(r.RehomeP99)+" / "+ms(r.RehomeMax), "")
	row("refusals", r.Refusals, `"at capacity" goodbyes`)
	row("load before (max/mean)", fmt.Sprintf("%d / %.1f", r.LoadMaxBefore, r.LoadMeanBefore), "children per live substrate, just before s0 leaves")
	row("load after (max/mean)", fmt.Sprintf("%d / %.1f", r.LoadMaxAfter, r.LoadMeanAfter), "at the end (a node mid-overlap counts on both)")
	row("migrations", r.Migrations, fmt.Sprintf("by the policy: %.1f per node-hour", r.PerNodeHour))
	row("ping-pongs", r.PingPongs, "back to the substrate just left, within the ping-pong window")
	row("detached at end", r.Detached, "")
	row("wall time", r.Wall.Round(time.Millisecond), "building and running the simulation")
	row("heap", fmt.Sprintf("%.0f MiB", float64(r.HeapBytes)/(1<<20)), fmt.Sprintf("%.1f KiB per node, live after the run", float64(r.HeapBytes)/1024/float64(r.Nodes)))
}
