// Package timeline holds what a migsim run recorded, in order — the node's
// transitions, the faults done and the phases begun — and the headline
// figures derived from it: switches and switch time, ping-pongs, which
// publications the node was owed, percentiles. Every back-end (loopback
// WebSockets, virtual time, live) and every report uses these definitions,
// so a figure means the same everywhere.
package timeline

import (
	"slices"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport/engine"
)

// Kind says what a timeline entry records.
type Kind string

// The kinds of timeline entries.
const (
	KindTransition Kind = "transition" // the node's machine took a transition
	KindFault      Kind = "fault"      // the scenario applied a fault
	KindPhase      Kind = "phase"      // a phase of the scenario began
)

// Entry is one line of the timeline. A transition entry carries the step
// as the machine took it; the others only a reason.
type Entry struct {
	At          time.Duration // since the run started
	Cycle       int
	Kind        Kind
	Step        fsm.Step
	Primary     string // after the transition (a fault: its substrate)
	Candidate   string // after the transition
	PrevPrimary string // before the transition
	Reason      string
}

// FromTransition is tr as a timeline entry, timed from start (PrevPrimary
// and Cycle left for the caller).
func FromTransition(tr engine.Transition, start time.Time) Entry {
	return Entry{At: tr.At.Sub(start), Kind: KindTransition, Step: tr.Step, Primary: tr.Primary,
		Candidate: tr.Candidate, Reason: tr.Reason}
}

// has reports whether the entry's transition carries out action a.
func (e Entry) has(a fsm.Action) bool { return slices.Contains(e.Step.Actions, a) }

// letsPrimaryGo reports whether the transition gives up the primary link
// without promoting a successor: the break of break-before-make, or a
// primary that died before the new link was up.
func (e Entry) letsPrimaryGo() bool {
	return (e.has(fsm.CloseOld) || e.has(fsm.DropOld)) && !e.has(fsm.PromoteCandidate)
}

// Breaks reports whether the entry is break-before-make's own step: the
// primary let go on purpose before a new link is up.
func (e Entry) Breaks() bool {
	p := e.Step.Path
	return e.Kind == KindTransition && e.letsPrimaryGo() && p != fsm.PathContinue && p != fsm.PathDetach && p != fsm.PathReattach
}

// Leaving is the substrate the node starts leaving at this entry — its
// overlap with a new substrate begins, or break-before-make lets the old
// one go for a policy migration — or "" (where a scenario's "leaving"
// faults fire).
func (e Entry) Leaving() string {
	switch {
	case e.Kind != KindTransition:
	case e.has(fsm.StartOverlap):
		return e.Primary
	case e.letsPrimaryGo() && e.Step.Path == fsm.PathMigrate:
		return e.PrevPrimary
	}
	return ""
}
