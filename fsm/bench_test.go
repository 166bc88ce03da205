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
	promoteOnly        = []fsm.Action{fsm.PromoteCandidate}
	dropCandidateOnly  = []fsm.Action{fsm.DropCandidate}
	dropOldOnly        = []fsm.Action{fsm.DropOld}
	startOverlapOnly   = []fsm.Action{fsm.StartOverlap}
	dropOldAndPromote  = []fsm.Action{fsm.DropOld, fsm.PromoteCandidate}
	closeOldAndPromote = []fsm.Action{fsm.CloseOld, fsm.PromoteCandidate}
	closeAllOnly       = []fsm.Action{fsm.CloseAll}
)

func (m *switchMachine) Fire(e fsm.Event) fsm.Step {
	from := m.state
	to, actions, path, ok := switchCell(from, e)
	if !ok {
		return fsm.Step{From: from, Event: e, To: from, Ignored: true}
	}
	m.state = to
	return fsm.Step{From: from, Event: e, To: to, Actions: actions, Path: path}
}

func switchCell(s fsm.State, e fsm.Event) (fsm.State, []fsm.Action, fsm.Path, bool) {
	if e == fsm.Close && s != fsm.Closed {
		return fsm.Closed, closeAllOnly, fsm.PathClose, true
	}
	switch s {
	case fsm.Detached:
		if e == fsm.Attach {
			return fsm.Joining, dialAndHello, fsm.PathJoin, true
		}
	case fsm.Joining:
		switch e {
		case fsm.HandshakeOK:
			return fsm.Attached, promoteOnly, fsm.PathJoin, true
		case fsm.HandshakeTimeout, fsm.NewFailed:
			return fsm.Detached, dropCandidateOnly, fsm.PathDetach, true
		}
	case fsm.Attached:
		switch e {
		case fsm.CandidateBetter:
			return fsm.Handshaking, dialAndHello, fsm.PathMigrate, true
		case fsm.Goodbye:
			return fsm.Handshaking, dialAltAndHello, fsm.PathForced, true
		case fsm.OldDied:
			return fsm.Detached, dropOldOnly, fsm.PathDetach, true
		}
	case fsm.Handshaking:
		switch e {
		case fsm.HandshakeOK:
			return fsm.Overlapping, startOverlapOnly, fsm.PathMigrate, true
		case fsm.HandshakeTimeout, fsm.NewFailed:
			return fsm.Attached, dropCandidateOnly, fsm.PathCancel, true
		case fsm.OldDied:
			return fsm.Joining, dropOldOnly, fsm.PathContinue, true
		}
	case fsm.Overlapping:
		switch e {
		case fsm.OldDied:
			return fsm.Cooldown, dropOldAndPromote, fsm.PathAccelerate, true
		case fsm.NewFailed, fsm.OverlapExpired:
			return fsm.Attached, dropCandidateOnly, fsm.PathCancel, true
		case fsm.OverlapDone:
			return fsm.Cooldown, closeOldAndPromote, fsm.PathMigrate, true
		}
	case fsm.Cooldown:
		switch e {
		case fsm.Goodbye:
			return fsm.Handshaking, dialAltAndHello, fsm.PathForced, true
		case fsm.OldDied:
			return fsm.Detached, dropOldOnly, fsm.PathDetach, true
		case fsm.CooldownElapsed:
			return fsm.Attached, nil, fsm.PathSettle, true
		}
	}
	return "", nil, "", false
}

// TestSwitchAgreesWithDeclaration checks the benchmark's hand-written switch
// against the declaration for every (state, event) pair.
func TestSwitchAgreesWithDeclaration(t *testing.T) {
	m := declaredModel(t)
	for _, s := range m.chart.States {
		for _, e := range m.chart.Events {
			want, _ := m.step(s, e)
			want.Reason = ""
			sm := switchMachine{state: s}
			if d := diffStep(sm.Fire(e), want); d != "" {
				t.Errorf("(%s, %s): switch: %s", s, e, d)
			}
			if sm.state != want.To {
				t.Errorf("(%s, %s): switch in %s, want %s", s, e, sm.state, want.To)
			}
		}
	}
}

// migrationLoop is a realistic steady loop: migrate, cool down, migrate again.
var migrationLoop = []fsm.Event{fsm.CandidateBetter, fsm.HandshakeOK, fsm.OverlapDone, fsm.CooldownElapsed}

func BenchmarkFire(b *testing.B) {
	m, err := fsm.NewIn(fsm.Attached)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		st, err := m.Fire(migrationLoop[i%len(migrationLoop)])
		if err != nil || st.Ignored {
			b.Fatalf("step %d: %+v, %v", i, st, err)
		}
	}
}

func BenchmarkFireSwitch(b *testing.B) {
	m := &switchMachine{state: fsm.Attached}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if st := m.Fire(migrationLoop[i%len(migrationLoop)]); st.Ignored {
			b.Fatalf("step %d: %+v", i, st)
		}
	}
}
