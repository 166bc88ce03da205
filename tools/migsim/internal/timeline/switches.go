package timeline

import (
	"math"
	"slices"
	"time"

	"github.com/repram/handover/fsm"
)

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

// SwitchStarts are the paths on which the node sets out to change its
// primary: the policy's migration and the moves it is made to make.
var SwitchStarts = []fsm.Path{fsm.PathMigrate, fsm.PathForced, fsm.PathSuspect, fsm.PathReattach}

// Switches derives every change of primary from the timeline, with its
// cause and time. A move starts on a transition that dials its first
// candidate (candidate_better, a goodbye, a suspicion, a death) and ends
// when a candidate is promoted, the old link being closed or gone then;
// for break-before-make that is the new link attached. A cancel or a
// detach ends it without a switch. A primary that dies before the move's
// welcome (continue_alone) becomes its cause only when no move was under
// way.
func Switches(entries []Entry) []Switch {
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
		case started < 0 && slices.Contains(SwitchStarts, st.Path) && (e.has(fsm.DialCandidate) || e.has(fsm.DialAlternative)):
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

// SwitchStats sums up switches: how many the policy completed by the switch
// itself (overlap_done, or break-before-make's new link up, not an
// accelerate), and the switch times measured.
func SwitchStats(sw []Switch) (migrations int, ms []float64) {
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

// PingPongs counts returns to the substrate the previous policy migration
// left, within window cycles (InPingPongWindow).
func PingPongs(moves []Switch, window int) int {
	n := 0
	for i := 1; i < len(moves); i++ {
		p, m := moves[i-1], moves[i]
		if !p.forced() && !m.forced() && p.From == m.To && InPingPongWindow(int64(p.Cycle), int64(m.Cycle), int64(window)) {
			n++
		}
	}
	return n
}

// InPingPongWindow reports whether a policy migration back in cycle back,
// after the one that left in cycle left, is within window cycles: at most
// window cycles later, window included (the policy package's definition).
func InPingPongWindow(left, back, window int64) bool { return back-left <= window }

// Owed reports whether a publication made at at is owed to a node that
// joined its enclave's forwarding at joined (zero: never): from that
// instant on, the instant included. Before it no strategy can deliver it.
func Owed(joined, at time.Time) bool { return !joined.IsZero() && !at.Before(joined) }

// Percentile is the nearest-rank percentile of xs, rounded to 0.1; 0 for
// no samples.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	return math.Round(s[max(k, 0)]*10) / 10
}
