package fsm_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/repram/handover/fsm"
)

func TestNewStartsInInitialState(t *testing.T) {
	if got, want := fsm.New().State(), fsm.Declaration().Initial; got != want {
		t.Fatalf("New().State() = %s, want %s", got, want)
	}
}

func TestNewInEveryState(t *testing.T) {
	for _, s := range fsm.Declaration().States {
		m, err := fsm.NewIn(s)
		if err != nil {
			t.Fatalf("NewIn(%s): %v", s, err)
		}
		if m.State() != s {
			t.Errorf("NewIn(%s).State() = %s", s, m.State())
		}
	}
}

func TestNewInUnknownState(t *testing.T) {
	m, err := fsm.NewIn("limbo")
	if err == nil {
		t.Fatalf("NewIn(limbo) returned a machine in %s and no error", m.State())
	}
	if m != nil {
		t.Error("NewIn(limbo) returned a machine along with its error")
	}
	if !strings.Contains(err.Error(), `"limbo"`) {
		t.Errorf("error %q does not name the state", err)
	}
}

func TestFireReturnsActionsInOrder(t *testing.T) {
	for _, tc := range []struct {
		from  fsm.State
		event fsm.Event
		guard fsm.Guard // the one guard that holds
		to    fsm.State
		path  fsm.Path
		want  []fsm.Action
	}{
		{fsm.Detached, fsm.Attach, "", fsm.Joining, fsm.PathJoin, []fsm.Action{fsm.DialAlternative, fsm.SendHello}},
		{fsm.Attached, fsm.Goodbye, fsm.HasAlternative, fsm.Handshaking, fsm.PathForced, []fsm.Action{fsm.DialAlternative, fsm.SendHello}},
		{fsm.Attached, fsm.OldDied, fsm.HasAlternative, fsm.Joining, fsm.PathReattach,
			[]fsm.Action{fsm.DropOld, fsm.DialAlternative, fsm.SendHello}},
		{fsm.Handshaking, fsm.NewFailed, fsm.HasAlternative, fsm.Handshaking, fsm.PathRace,
			[]fsm.Action{fsm.DropCandidate, fsm.DialAlternative, fsm.SendHello}},
		{fsm.Handshaking, fsm.HandshakeOK, "", fsm.Overlapping, fsm.PathMigrate, []fsm.Action{fsm.CloseRivals, fsm.StartOverlap}},
		{fsm.Joining, fsm.HandshakeOK, "", fsm.Attached, fsm.PathJoin, []fsm.Action{fsm.CloseRivals, fsm.PromoteCandidate}},
		{fsm.Overlapping, fsm.OverlapDone, "", fsm.Cooldown, fsm.PathMigrate, []fsm.Action{fsm.CloseOld, fsm.PromoteCandidate}},
		{fsm.Overlapping, fsm.OldDied, "", fsm.Cooldown, fsm.PathAccelerate, []fsm.Action{fsm.DropOld, fsm.PromoteCandidate}},
		{fsm.Cooldown, fsm.CooldownElapsed, "", fsm.Attached, fsm.PathSettle, nil},
	} {
		m, err := fsm.NewIn(tc.from)
		if err != nil {
			t.Fatal(err)
		}
		st, err := m.Fire(tc.event, only(tc.guard))
		if err != nil {
			t.Fatalf("%s --%s-->: %v", tc.from, tc.event, err)
		}
		want := fsm.Step{From: tc.from, Event: tc.event, Guard: tc.guard, To: tc.to, Actions: tc.want, Path: tc.path}
		if d := diffStep(st, want); d != "" {
			t.Errorf("%s --%s-->: %s", tc.from, tc.event, d)
		}
		if m.State() != tc.to {
			t.Errorf("%s --%s-->: machine is in %s, want %s", tc.from, tc.event, m.State(), tc.to)
		}
	}
}

// TestFireIgnoredKeepsState fires every declared ignore with no guard
// holding (nil), the way it is reached.
func TestFireIgnoredKeepsState(t *testing.T) {
	for _, ig := range fsm.Declaration().Ignores {
		m, err := fsm.NewIn(ig.State)
		if err != nil {
			t.Fatal(err)
		}
		st, err := m.Fire(ig.Event, nil)
		if err != nil {
			t.Fatalf("(%s, %s): %v", ig.State, ig.Event, err)
		}
		want := fsm.Step{From: ig.State, Event: ig.Event, To: ig.State, Ignored: true, Reason: ig.Reason}
		if d := diffStep(st, want); d != "" {
			t.Errorf("(%s, %s): %s", ig.State, ig.Event, d)
		}
		if m.State() != ig.State {
			t.Errorf("ignored (%s, %s) moved the machine to %s", ig.State, ig.Event, m.State())
		}
	}
}

func TestFireUnknownEvent(t *testing.T) {
	for _, s := range fsm.Declaration().States {
		m, err := fsm.NewIn(s)
		if err != nil {
			t.Fatal(err)
		}
		st, err := m.Fire("teleport", only(fsm.HasAlternative, fsm.OthersRacing))
		var unknown *fsm.UnknownEventError
		if !errors.As(err, &unknown) {
			t.Fatalf("Fire(teleport) in %s: error %v (%T), want *fsm.UnknownEventError", s, err, err)
		}
		if unknown.Event != "teleport" || !strings.Contains(err.Error(), `"teleport"`) {
			t.Errorf("error %q does not name the event (Event=%q)", err, unknown.Event)
		}
		if d := diffStep(st, fsm.Step{}); d != "" {
			t.Errorf("Fire(teleport) in %s returned a step along with its error: %s", s, d)
		}
		if m.State() != s {
			t.Errorf("Fire(teleport) moved the machine from %s to %s", s, m.State())
		}
	}
}

func TestMachinesAreIndependent(t *testing.T) {
	a, b := fsm.New(), fsm.New()
	for _, e := range []fsm.Event{fsm.Attach, fsm.HandshakeOK} {
		if _, err := a.Fire(e, nil); err != nil {
			t.Fatal(err)
		}
	}
	if a.State() != fsm.Attached || b.State() != fsm.Detached {
		t.Fatalf("a in %s (want attached), b in %s (want detached)", a.State(), b.State())
	}
}

// TestFireActionsAreTheCallers checks that the caller owns the actions a Step
// returns: changing them must not change what the machine, or any other
// machine, returns later.
func TestFireActionsAreTheCallers(t *testing.T) {
	st, err := fsm.New().Fire(fsm.Attach, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(st.Actions)
	st.Actions[0] = fsm.CloseAll
	// Undo the change in case it reached the package's chart, so that one
	// failure here does not make every later test fail.
	defer copy(st.Actions, want)
	again, err := fsm.New().Fire(fsm.Attach, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again.Actions, want) {
		t.Fatalf("after a caller changed the actions of one step, a new machine returns %v, want %v: "+
			"Fire hands out the package's own slice", again.Actions, want)
	}
}

// TestGuardsAreAskedThroughLooplab checks that Fire asks the guards of a pair
// in the declared order, one looplab before-event callback per guarded
// transition: a guard that does not hold cancels its looplab event, the
// machine stays where it was for it, and the next branch is tried.
func TestGuardsAreAskedThroughLooplab(t *testing.T) {
	for _, tc := range []struct {
		name    string
		holding []fsm.Guard
		asked   []fsm.Guard
		guard   fsm.Guard
		to      fsm.State
	}{
		{"none holds: both cancelled, the fallback cancels the migration", nil,
			[]fsm.Guard{fsm.HasAlternative, fsm.OthersRacing}, "", fsm.Attached},
		{"has_alternative holds: asked first, taken", []fsm.Guard{fsm.HasAlternative, fsm.OthersRacing},
			[]fsm.Guard{fsm.HasAlternative}, fsm.HasAlternative, fsm.Handshaking},
		{"only others_racing holds: has_alternative cancelled, then taken", []fsm.Guard{fsm.OthersRacing},
			[]fsm.Guard{fsm.HasAlternative, fsm.OthersRacing}, fsm.OthersRacing, fsm.Handshaking},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := fsm.NewIn(fsm.Handshaking)
			if err != nil {
				t.Fatal(err)
			}
			var asked []fsm.Guard
			st, err := m.Fire(fsm.NewFailed, func(g fsm.Guard) bool {
				asked = append(asked, g)
				if m.State() != fsm.Handshaking {
					t.Errorf("guard %s asked in %s: looplab moved before its before-event callback", g, m.State())
				}
				return slices.Contains(tc.holding, g)
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(asked, tc.asked) {
				t.Errorf("guards asked %v, want %v", asked, tc.asked)
			}
			if st.Guard != tc.guard || st.To != tc.to || m.State() != tc.to {
				t.Errorf("took guard %s to %s (machine in %s), want guard %s to %s",
					guardName(st.Guard), st.To, m.State(), guardName(tc.guard), tc.to)
			}
		})
	}
}

// TestUnguardedPairsAskNoGuard checks that a pair without guarded branches
// never calls the GuardFunc, and that a nil GuardFunc means no guard holds.
func TestUnguardedPairsAskNoGuard(t *testing.T) {
	m, err := fsm.NewIn(fsm.Attached)
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.Fire(fsm.CandidateBetter, func(g fsm.Guard) bool {
		t.Errorf("guard %s asked for an unguarded pair", g)
		return true
	})
	if err != nil || st.To != fsm.Handshaking {
		t.Fatalf("candidate_better in attached: %+v, %v", st, err)
	}
	m, err = fsm.NewIn(fsm.Attached)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := m.Fire(fsm.Goodbye, nil); err != nil || !st.Ignored || m.State() != fsm.Attached {
		t.Fatalf("goodbye in attached with a nil GuardFunc: %+v, %v; want ignored", st, err)
	}
}
