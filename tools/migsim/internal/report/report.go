// Package report prints and plots a migsim scenario run (package run): the
// scenario's header, the timeline, the summary table, the comparison of
// strategies, and an SVG plot of latency, primary and migrations.
package report

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/tools/migsim/internal/run"
	"github.com/repram/handover/tools/migsim/internal/scenario"
	"github.com/repram/handover/tools/migsim/internal/table"
	"github.com/repram/handover/tools/migsim/internal/timeline"
)

// WriteHeader explains the scenario before the timeline.
func WriteHeader(w io.Writer, sc *scenario.Scenario, opt run.Options) {
	fmt.Fprintf(w, "migsim: scenario %q — %s\n", sc.Name, sc.Description)
	fmt.Fprintf(w, "  %d evaluation cycles of %v (%v), publisher %.0f msg/s into the mesh, node %s in enclave %q, starts on %s\n",
		sc.Cycles, sc.Cycle.D(), time.Duration(sc.Cycles)*sc.Cycle.D(), sc.PublishRate, sc.Node.ID, sc.Node.Enclave, sc.Start)
	pc := sc.Policy.Config().WithDefaults()
	fmt.Fprintf(w, "  strategy %s, policy %s", opt.Strategy, opt.Policy)
	if opt.Policy != "naive" {
		fmt.Fprintf(w, " (migrate when %.0f%% faster, or into the node's enclave, %d cycles in a row; cooldown %d cycle)",
			pc.Improvement*100, pc.Streak, pc.CooldownCycles)
	}
	fmt.Fprintln(w)
	t := sc.Transport
	fmt.Fprintf(w, "  transport: handshake timeout %v, overlap floor %v / grace %v / max %v, heartbeat %v (0: the default)\n",
		t.HandshakeTimeout.D(), t.OverlapFloor.D(), t.OverlapGrace.D(), t.OverlapMax.D(), t.Heartbeat.D())
	fmt.Fprintln(w, "  substrates:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "    id\tenclave\tmesh delay\tlatency fed to the policy (from cycle: value ±jitter)")
	for _, s := range sc.Substrates {
		var steps []string
		for _, l := range s.Latency {
			v := fmt.Sprintf("%d: %s", l.From, l.Latency)
			if l.Jitter > 0 {
				v += fmt.Sprintf(" ±%.0f%%", l.Jitter*100)
			}
			steps = append(steps, v)
		}
		fmt.Fprintf(tw, "    %s\t%s\t%v\t%s\n", s.ID, s.Enclave, s.Delay.D(), strings.Join(steps, ", "))
	}
	_ = tw.Flush()
	if len(sc.Faults) > 0 {
		fmt.Fprintln(w, "  faults:")
		for _, f := range sc.Faults {
			when := fmt.Sprintf("cycle %d", f.Cycle)
			if f.When == "leaving" {
				when = fmt.Sprintf("from cycle %d, %v after the node starts leaving it", f.Cycle, f.After.D())
			}
			v := ""
			if f.Value != "" {
				v = " " + f.Value
			}
			fmt.Fprintf(w, "    %s: %s %s%s (%s)\n", when, f.Substrate, f.Action, v, scenario.FaultActions[f.Action])
		}
	}
	fmt.Fprintln(w)
}

// WriteTimeline prints every transition, fault and phase in order, in
// aligned columns.
func WriteTimeline(w io.Writer, entries []timeline.Entry) {
	rows := [][]string{{"time", "cycle", "transition", "event", "primary", "candidate", "why"}}
	for _, e := range entries {
		at := fmt.Sprintf("%.2fs", e.At.Seconds())
		cyc := fmt.Sprint(e.Cycle)
		switch e.Kind {
		case timeline.KindPhase:
			rows = append(rows, []string{"── cycle " + cyc + ": " + e.Reason + " ──"})
		case timeline.KindFault:
			rows = append(rows, []string{at, cyc, "* fault *", "", e.Primary, "", e.Reason})
		default:
			ev := string(e.Step.Event)
			if p := pathNote(e); p != "" {
				ev += " (" + p + ")"
			}
			rows = append(rows, []string{at, cyc, string(e.Step.From) + " → " + string(e.Step.To), ev,
				table.Dash(e.Primary), table.Dash(e.Candidate), e.Reason})
		}
	}
	table.Write(w, rows, 2)
	fmt.Fprintln(w)
}

// pathNote is what the timeline says of a transition beside its event.
func pathNote(e timeline.Entry) string {
	if e.Breaks() {
		return string(e.Step.Path) + ", break first"
	}
	switch p := e.Step.Path; p {
	case fsm.PathCancel:
		return "cancel, keep old"
	case fsm.PathAccelerate, fsm.PathForced, fsm.PathSuspect, fsm.PathRace, fsm.PathReattach:
		return strings.ReplaceAll(string(p), "_", " ")
	case fsm.PathContinue:
		return "continue alone"
	}
	return ""
}

// WriteSummary prints the summary table.
func WriteSummary(w io.Writer, s run.Summary) {
	fmt.Fprintf(w, "summary (%s %s, %d cycles, %.1fs):\n", s.Policy, s.Strategy, s.Cycles, s.Seconds)
	rows := [][]string{}
	row := func(k string, v any, note string) { rows = append(rows, []string{"  " + k, fmt.Sprint(v), note}) }
	row("published", s.Published, "messages published in the mesh")
	row("owed", s.Owed, "published once a substrate of the node's enclave forwarded to it")
	row("delivered", s.Delivered, "distinct messages handed to the handler")
	row("lost", s.Lost, "owed, never delivered")
	row("duplicates_delivered", s.DuplicatesDelivered, "handler calls for a message it already had")
	row("duplicates_dropped", s.DuplicatesDropped, "dropped by the node's dedup during overlaps")
	row("migrations", s.Migrations, "the policy's switches completed (overlap_done; break-before-make: new link up)")
	row("cancelled", s.Cancelled, "migrations given up, old substrate kept")
	row("accelerated", s.Accelerated, "old link died mid-overlap, new one promoted")
	row("forced", s.Forced, "migrations started by a goodbye")
	row("detaches", s.Detaches, "times left with no link")
	row("switches", s.Switches, "changes of primary substrate, all causes")
	row("ping_pongs", s.PingPongs, "returns to the substrate just left, within the ping-pong window")
	row("stale_events_dropped", s.StaleEventsDropped, "late events from links already dropped")
	row("switch_ms_p50", s.SwitchMsP50, "candidate_better → old link closed (break-before-make: → new link up)")
	row("switch_ms_p99", s.SwitchMsP99, "")
	table.Write(w, rows, 2)
}

// WriteComparison prints one table of the runs.
func WriteComparison(w io.Writer, res []*run.Result) {
	rows := [][]string{{"strategy", "lost", "dup delivered", "flaps (ping-pongs)", "switches", "migrations", "cancelled", "accelerated", "switch ms p50"}}
	for _, r := range res {
		s := r.Summary
		label := r.Options.Label()
		if r.Options == run.Comparisons[0] {
			label += " (ours)"
		}
		if r.Virtual {
			label += ", virtual time"
		}
		rows = append(rows, []string{label, fmt.Sprintf("%d / %d", s.Lost, s.Owed), fmt.Sprint(s.DuplicatesDelivered),
			fmt.Sprint(s.PingPongs), fmt.Sprint(s.Switches), fmt.Sprint(s.Migrations), fmt.Sprint(s.Cancelled),
			fmt.Sprint(s.Accelerated), fmt.Sprint(s.SwitchMsP50)})
	}
	table.Write(w, rows, 0)
	fmt.Fprintln(w, "\nlost: owed messages (published once the node's enclave forwarded to it) never delivered.")
	fmt.Fprintln(w, "flaps: returns to the substrate just left within the policy's ping-pong window.")
	fmt.Fprintln(w, "break-before-make's switch time is the gap with no link at all; make-before-break's is overlap, gossip flowing.")
}

// ComparisonSVG names the plot of comparison i: ours gets name itself, a
// baseline name with its strategy or policy before the extension
// (run.svg → run-break-before-make.svg, run-naive.svg).
func ComparisonSVG(name string, i int) string {
	if i == 0 {
		return name
	}
	o := run.Comparisons[i]
	tag := o.Strategy
	if o.Strategy == run.Comparisons[0].Strategy {
		tag = string(o.Policy)
	}
	ext := filepath.Ext(name)
	return strings.TrimSuffix(name, ext) + "-" + tag + ext
}
