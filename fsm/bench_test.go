package fsm_test

import (
	"testing"

	"github.com/repram/handover/fsm"
)

// switchMachine is the chart hand-written as a plain Go switch: the baseline
// BenchmarkFireSwitch measures the looplab-backed Machine against.
// TestSwitchAgreesWithDeclaration keeps it from drifting. It carries no
// ignore reasons and treats undeclared events as ignored.
type switchMachine struct{ state fsm.State }

var (
	dialAndHello       = []fsm.Action{fsm.DialCandidate, fsm.SendHello}
	dialAltAndHello    = []fsm.Action{fsm.DialAlternative, fsm.SendHello}
	replaceCandidate   = []fsm.Action{fsm.DropCandidate, fsm.DialAlternative, fsm.SendHello}
	reattach           = []fsm.Action{fsm.DropOld, fsm.DialAlternative, fsm.SendHello}
	closeRivalsPromote = []fsm.Action{fsm.CloseRivals, fsm.PromoteCandidate}
	closeRivalsOverlap = []fsm.Action{fsm.CloseRivals, fsm.StartOverlap}
	dropCandidateOnly  = []fsm.Action{fsm.DropCandidate}
	dropOldOnly        = []fsm.Action{fsm.DropOld}
	dropOldAndPromote  = []fsm.Action{fsm.DropOld, fsm.PromoteCandidate}
	closeOldAndPromote = []fsm.Action{fsm.CloseOld, fsm.PromoteCandidate}
	closeAllOnly       = []fsm.Action{fsm.CloseAll}
)

func (m *switchMachine) Fire(e fsm.Event, holds fsm.GuardFunc) fsm.Step {
	from := m.state
	if holds == nil {
		holds = func(fsm.Guard) bool { return false }
	}
	to, g, actions, path, ok := switchCell(from, e, holds)
	if !ok {
		return fsm.Step{From: from, Event: e, To: from, Ignored: true}
	}
	m.state = to
	return fsm.Step{From: from, Event: e, Guard: g, To: to, Actions: actions, Path: path}
}

// switchCell is one hand-written decision: the target, the guard that
// selected it, the actions and the path, or false when the event is ignored.
func switchCell(s fsm.State, e fsm.Event, holds fsm.GuardFunc) (fsm.State, fsm.Guard, []fsm.Action, fsm.Path, bool) {
	alt, racing := fsm.HasAlternative, fsm.OthersRacing
	failed := e == fsm.HandshakeTimeout || e == fsm.NewFailed
	if e == fsm.Close && s != fsm.Closed {
		return fsm.Closed, "", closeAllOnly, fsm.PathClose, true
	}
	switch s {
	case fsm.Detached:
		if e == fsm.Attach {
			return fsm.Joining, "", dialAltAndHello, fsm.PathJoin, true
		}
	case fsm.Joining:
		switch {
		case e == fsm.HandshakeOK:
			return fsm.Attached, "", closeRivalsPromote, fsm.PathJoin, true
		case failed && holds(alt):
			return fsm.Joining, alt, replaceCandidate, fsm.PathRace, true
		case failed && holds(racing):
			return fsm.Joining, racing, dropCandidateOnly, fsm.PathRace, true
		case failed:
			return fsm.Detached, "", dropCandidateOnly, fsm.PathDetach, true
		case e == fsm.AttemptDelay && holds(alt):
			return fsm.Joining, alt, dialAltAndHello, fsm.PathRace, true
		}
	case fsm.Attached, fsm.Cooldown:
		switch {
		case e == fsm.CandidateBetter && s == fsm.Attached:
			return fsm.Handshaking, "", dialAndHello, fsm.PathMigrate, true
		case e == fsm.CooldownElapsed && s == fsm.Cooldown:
			return fsm.Attached, "", nil, fsm.PathSettle, true
		case e == fsm.Goodbye && holds(alt):
			return fsm.Handshaking, alt, dialAltAndHello, fsm.PathForced, true
		case e == fsm.OldSuspected && holds(alt):
			return fsm.Handshaking, alt, dialAltAndHello, fsm.PathSuspect, true
		case e == fsm.OldDied && holds(alt):
			return fsm.Joining, alt, reattach, fsm.PathReattach, true
		case e == fsm.OldDied:
			return fsm.Detached, "", dropOldOnly, fsm.PathDetach, true
		}
	case fsm.Handshaking:
		switch {
		case e == fsm.HandshakeOK:
			return fsm.Overlapping, "", closeRivalsOverlap, fsm.PathMigrate, true
		case failed && holds(alt):
			return fsm.Handshaking, alt, replaceCandidate, fsm.PathRace, true
		case failed && holds(racing):
			return fsm.Handshaking, racing, dropCandidateOnly, fsm.PathRace, true
		case failed:
			return fsm.Attached, "", dropCandidateOnly, fsm.PathCancel, true
		case e == fsm.AttemptDelay && holds(alt):
			return fsm.Handshaking, alt, dialAltAndHello, fsm.PathRace, true
		case e == fsm.OldDied:
			return fsm.Joining, "", dropOldOnly, fsm.PathContinue, true
		}
	case fsm.Overlapping:
		overlapFailed := e == fsm.NewFailed || e == fsm.OverlapExpired
		switch {
		case e == fsm.OldDied:
			return fsm.Cooldown, "", dropOldAndPromote, fsm.PathAccelerate, true
		case overlapFailed && holds(alt):
			return fsm.Handshaking, alt, replaceCandidate, fsm.PathRace, true
		case overlapFailed:
			return fsm.Attached, "", dropCandidateOnly, fsm.PathCancel, true
		case e == fsm.OverlapDone:
			return fsm.Cooldown, "", closeOldAndPromote, fsm.PathMigrate, true
		}
	}
	return "", "", nil, "", false
}

// TestSwitchAgreesWithDeclaration checks the benchmark's hand-written switch
// against the declaration for every (state, event) pair under every
// combination of the guards.
func TestSwitchAgreesWithDeclaration(t *testing.T) {
	m := declaredModel(t)
	guards := []fsm.GuardFunc{only(), only(fsm.HasAlternative), only(fsm.OthersRacing),
		only(fsm.HasAlternative, fsm.OthersRacing)}
	for _, s := range m.chart.States {
		for _, e := range m.chart.Events {
			for gi, holds := range guards {
				want, _ := m.step(s, e, holds)
				want.Reason = ""
				sm := switchMachine{state: s}
				if d := diffStep(sm.Fire(e, holds), want); d != "" {
					t.Errorf("(%s, %s) guards #%d: switch: %s", s, e, gi, d)
				}
				if sm.state != want.To {
					t.Errorf("(%s, %s) guards #%d: switch in %s, want %s", s, e, gi, sm.state, want.To)
				}
			}
		}
	}
}

// benchInput is one step of a benchmark loop: an event and whether an
// alternative is queued.
type benchInput struct {
	e   fsm.Event
	alt bool
}

// migrationLoop is a realistic steady loop: migrate, cool down, migrate again.
var migrationLoop = []benchInput{{fsm.CandidateBetter, false}, {fsm.HandshakeOK, false},
	{fsm.OverlapDone, false}, {fsm.CooldownElapsed, false}}

// forcedLoop exercises the guarded branches: a forced migration whose first
// candidate fails and is replaced by the next alternative, then a raced
// welcome.
var forcedLoop = []benchInput{{fsm.Goodbye, true}, {fsm.NewFailed, true}, {fsm.AttemptDelay, true},
	{fsm.HandshakeOK, false}, {fsm.OverlapDone, false}, {fsm.CooldownElapsed, false}}

// benchGuards are the GuardFuncs of the loops, made once so that the
// benchmarks measure Fire, not closure allocation.
var benchGuards = [2]fsm.GuardFunc{only(), only(fsm.HasAlternative)}

func guardsFor(alt bool) fsm.GuardFunc {
	if alt {
		return benchGuards[1]
	}
	return benchGuards[0]
}

func benchFire(b *testing.B, loop []benchInput) {
	m, err := fsm.NewIn(fsm.Attached)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		in := loop[i%len(loop)]
		st, err := m.Fire(in.e, guardsFor(in.alt))
		if err != nil || st.Ignored {
			b.Fatalf("step %d: %+v, %v", i, st, err)
		}
	}
}

func benchSwitch(b *testing.B, loop []benchInput) {
	m := &switchMachine{state: fsm.Attached}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		in := loop[i%len(loop)]
		if st := m.Fire(in.e, guardsFor(in.alt)); st.Ignored {
			b.Fatalf("step %d: %+v", i, st)
		}
	}
}

func BenchmarkFire(b *testing.B)       { benchFire(b, migrationLoop) }
func BenchmarkFireSwitch(b *testing.B) { benchSwitch(b, migrationLoop) }

func BenchmarkFireForced(b *testing.B)       { benchFire(b, forcedLoop) }
func BenchmarkFireForcedSwitch(b *testing.B) { benchSwitch(b, forcedLoop) }
