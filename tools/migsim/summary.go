package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport"
)

// Summary is a run's outcome, printed as a table or as one JSON object.
type Summary struct {
	Scenario string  `json:"scenario"`
	Strategy string  `json:"strategy"`
	Policy   string  `json:"policy"`
	Cycles   int     `json:"cycles"`
	Seconds  float64 `json:"seconds"`

	Published int `json:"published"`
	// Owed counts publications made once a substrate of the node's enclave
	// forwarded to it (before that no strategy can deliver them).
	Owed                int `json:"owed"`
	Delivered           int `json:"delivered"` // distinct published messages handed to the handler
	DuplicatesDelivered int `json:"duplicates_delivered"`
	DuplicatesDropped   int `json:"duplicates_dropped"` // by the node's dedup window
	Lost                int `json:"lost"`               // owed and never delivered

	Migrations         int `json:"migrations"`
	Cancelled          int `json:"cancelled"`
	Accelerated        int `json:"accelerated"`
	Forced             int `json:"forced"`
	Detaches           int `json:"detaches"`
	Switches           int `json:"switches"` // changes of primary substrate
	PingPongs          int `json:"ping_pongs"`
	StaleEventsDropped int `json:"stale_events_dropped"`
	FramesRejected     int `json:"frames_rejected"`

	SwitchMsP50 float64 `json:"switch_ms_p50"`
	SwitchMsP99 float64 `json:"switch_ms_p99"`
}

// Switch is one change of primary substrate.
type Switch struct {
	At    float64 `json:"at_s"` // seconds since the start
	Cycle int     `json:"cycle,omitempty"`
	From  string  `json:"from"`
	To    string  `json:"to"`
	// Cause is the path of the transition that set the move off: migrate
	// (the policy), forced (a goodbye), suspect (a silent primary),
	// reattach (the primary died), or continue_alone when the primary died
	// before a candidate's welcome; Accelerated when the old link died
	// mid-overlap.
	Cause       fsm.Path `json:"cause"`
	Accelerated bool     `json:"accelerated,omitempty"`
	// Ms is from the move's first dial to the new primary's promotion
	// (make-before-break: the old link closed or gone; break-before-make:
	// the new link up); -1 when the start was not seen.
	Ms float64 `json:"ms"`
}

// forced reports whether the node was made to move (anything but the
// policy), which ping-pong counting leaves out.
func (s Switch) forced() bool { return s.Cause != fsm.PathMigrate }

func summarize(res *Result, rec *recorder, st transport.Stats) Summary {
	sc := res.Scenario
	s := Summary{Scenario: sc.Name, Strategy: res.Options.Strategy, Policy: string(res.Options.Policy),
		Cycles: sc.Cycles, Seconds: math.Round(res.Elapsed.Seconds()*10) / 10}
	rec.mu.Lock()
	s.Published = len(rec.published)
	for id, at := range rec.published {
		n := rec.delivered[id]
		if n > 0 {
			s.Delivered++
		}
		if n > 1 {
			s.DuplicatesDelivered += n - 1
		}
		if rec.owed(at) {
			s.Owed++
			if n == 0 {
				s.Lost++
			}
		}
	}
	rec.mu.Unlock()
	return finishSummary(s, res, st)
}

// finishSummary adds to s what both back-ends derive alike: the engine's
// counters and the switches of the timeline.
func finishSummary(s Summary, res *Result, st transport.Stats) Summary {
	sc := res.Scenario
	s.Cancelled, s.Accelerated, s.Forced = st.Cancelled, st.Accelerated, st.Forced
	s.Detaches, s.DuplicatesDropped = st.Detaches, st.DuplicatesDropped
	s.StaleEventsDropped, s.FramesRejected = st.StaleEventsDropped, st.FramesRejected
	sw := switches(res.Entries)
	migrations, switchMs := switchStats(sw)
	s.Migrations = migrations
	s.Switches = len(sw)
	s.PingPongs = pingPongs(sw, sc.Policy.Config().WithDefaults().PingPongWindow)
	s.SwitchMsP50, s.SwitchMsP99 = percentile(switchMs, 50), percentile(switchMs, 99)
	return s
}

// switchStarts are the paths on which the node sets out to change its
// primary: the policy's migration and the moves it is made to make.
var switchStarts = []fsm.Path{fsm.PathMigrate, fsm.PathForced, fsm.PathSuspect, fsm.PathReattach}

// switches derives every change of primary from the timeline, with its
// cause and time. A move starts on a transition that dials its first
// candidate (candidate_better, a goodbye, a suspicion, a death) and ends
// when a candidate is promoted, the old link being closed or gone then;
// for break-before-make that is the new link attached. A cancel or a
// detach ends it without a switch. A primary that dies before the move's
// welcome (continue_alone) becomes its cause only when no move was under
// way.
func switches(entries []Entry) []Switch {
	var (
		out     []Switch
		prim    string
		cause   fsm.Path
		accel   bool
		started = time.Duration(-1)
		ms      = -1.0
	)
	for _, e := range entries {
		if e.Kind != KindTransition {
			continue
		}
		st := e.Step
		switch {
		case started < 0 && slices.Contains(switchStarts, st.Path) && (e.has(fsm.DialCandidate) || e.has(fsm.DialAlternative)):
			started, cause, accel = e.At, st.Path, false
		case st.Path == fsm.PathContinue && started < 0:
			started, cause = e.At, st.Path
		case st.Path == fsm.PathCancel || st.Path == fsm.PathDetach:
			started, cause = -1, ""
		case started >= 0 && e.has(fsm.PromoteCandidate):
			ms = float64((e.At - started).Microseconds()) / 1000
			accel = st.Path == fsm.PathAccelerate
			started = -1
		}
		if e.Primary != "" && e.Primary != prim {
			if prim != "" {
				if cause == "" {
					cause, ms = fsm.PathJoin, -1 // attached again from nothing
				}
				out = append(out, Switch{At: math.Round(e.At.Seconds()*100) / 100, Cycle: e.Cycle, From: prim, To: e.Primary,
					Cause: cause, Accelerated: accel, Ms: ms})
			}
			prim, cause, accel, ms = e.Primary, "", false, -1
		}
	}
	return out
}

// switchStats sums up switches: how many the policy completed by the switch
// itself (overlap_done, or break-before-make's new link up, not an
// accelerate), and the switch times measured.
func switchStats(sw []Switch) (migrations int, ms []float64) {
	for _, s := range sw {
		if s.Cause == fsm.PathMigrate && !s.Accelerated {
			migrations++
		}
		if s.Ms >= 0 {
			ms = append(ms, s.Ms)
		}
	}
	return migrations, ms
}

// pingPongs counts returns to the substrate the previous policy migration
// left, within window cycles (the policy package's definition).
func pingPongs(moves []Switch, window int) int {
	n := 0
	for i := 1; i < len(moves); i++ {
		p, m := moves[i-1], moves[i]
		if !p.forced() && !m.forced() && p.From == m.To && m.Cycle-p.Cycle <= window {
			n++
		}
	}
	return n
}

// percentile is the nearest-rank percentile, 0 for no samples.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	return math.Round(s[max(k, 0)]*10) / 10
}

// Failed reports whether the run broke the guarantee: a message lost or
// delivered twice.
func (s Summary) Failed() bool { return s.Lost != 0 || s.DuplicatesDelivered != 0 }

// WriteJSON writes v as one line of JSON.
func WriteJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// WriteHeader explains the scenario before the timeline.
func WriteHeader(w io.Writer, sc *Scenario, opt Options) {
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
			fmt.Fprintf(w, "    %s: %s %s%s (%s)\n", when, f.Substrate, f.Action, v, faultActions[f.Action])
		}
	}
	fmt.Fprintln(w)
}

// WriteTimeline prints every transition, fault and phase in order, in
// aligned columns.
func WriteTimeline(w io.Writer, entries []Entry) {
	rows := [][]string{{"time", "cycle", "transition", "event", "primary", "candidate", "why"}}
	for _, e := range entries {
		at := fmt.Sprintf("%.2fs", e.At.Seconds())
		cyc := fmt.Sprint(e.Cycle)
		switch e.Kind {
		case KindPhase:
			rows = append(rows, []string{"── cycle " + cyc + ": " + e.Reason + " ──"})
		case KindFault:
			rows = append(rows, []string{at, cyc, "* fault *", "", e.Primary, "", e.Reason})
		default:
			ev := string(e.Step.Event)
			if p := pathNote(e); p != "" {
				ev += " (" + p + ")"
			}
			rows = append(rows, []string{at, cyc, string(e.Step.From) + " → " + string(e.Step.To), ev,
				dash(e.Primary), dash(e.Candidate), e.Reason})
		}
	}
	writeColumns(w, rows, 2)
	fmt.Fprintln(w)
}

// writeColumns prints rows in aligned columns; the first rightAligned
// columns are right-aligned, and a row of one cell is printed as is.
func writeColumns(w io.Writer, rows [][]string, rightAligned int) {
	var width []int
	for _, r := range rows {
		if len(r) == 1 {
			continue
		}
		for i, c := range r {
			if i == len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range rows {
		if len(r) == 1 {
			fmt.Fprintln(w, r[0])
			continue
		}
		var b strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			switch {
			case i == len(r)-1:
				b.WriteString(c)
			case i < rightAligned:
				b.WriteString(pad + c + "  ")
			default:
				b.WriteString(c + pad + "  ")
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// pathNote is what the timeline says of a transition beside its event.
func pathNote(e Entry) string {
	if breaks(e) {
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

// breaks reports whether the entry is break-before-make's own step: the
// primary let go on purpose before a new link is up.
func breaks(e Entry) bool {
	p := e.Step.Path
	return e.letsPrimaryGo() && p != fsm.PathContinue && p != fsm.PathDetach && p != fsm.PathReattach
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WriteSummary prints the summary table.
func WriteSummary(w io.Writer, s Summary) {
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
	writeColumns(w, rows, 2)
}
