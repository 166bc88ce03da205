package metrics

import (
	"testing"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport"
)

// edge is one transition of a chart, taken at offset ms from the start.
type edge struct {
	from  fsm.State
	event fsm.Event
	guard fsm.Guard
	ms    int
}

// transitionFor builds the transition the chart declares for e.
func transitionFor(t *testing.T, c fsm.Chart, t0 time.Time, e edge) transport.Transition {
	t.Helper()
	for _, d := range c.Transitions {
		if d.From == e.from && d.Event == e.event && d.Guard == e.guard {
			return transport.Transition{At: t0.Add(time.Duration(e.ms) * time.Millisecond),
				Step: fsm.Step{From: d.From, Event: d.Event, Guard: d.Guard, To: d.To, Actions: d.Actions, Path: d.Path}}
		}
	}
	t.Fatalf("no transition %s --%s[%s]-->", e.from, e.event, e.guard)
	return transport.Transition{}
}

type observed struct {
	cause string
	ms    int
}

func TestSwitchTracker(t *testing.T) {
	const alt = fsm.HasAlternative
	mbb := fsm.Declaration()
	tests := []struct {
		name  string
		chart fsm.Chart
		edges []edge
		want  []observed
	}{
		{"policy migration", mbb, []edge{
			{fsm.Attached, fsm.CandidateBetter, "", 0},
			{fsm.Handshaking, fsm.HandshakeOK, "", 40},
			{fsm.Overlapping, fsm.OverlapDone, "", 300},
			{fsm.Cooldown, fsm.CooldownElapsed, "", 900},
		}, []observed{{"policy", 300}}},
		{"cancelled migration is not a switch", mbb, []edge{
			{fsm.Attached, fsm.CandidateBetter, "", 0},
			{fsm.Handshaking, fsm.HandshakeTimeout, "", 1000},
			{fsm.Attached, fsm.OldDied, "", 2000}, // then a detach and a fresh join
			{fsm.Detached, fsm.Attach, "", 2100},
			{fsm.Joining, fsm.HandshakeOK, "", 2200},
		}, nil},
		{"first join is not a switch", mbb, []edge{
			{fsm.Detached, fsm.Attach, "", 0},
			{fsm.Joining, fsm.HandshakeOK, "", 10},
		}, nil},
		{"reattach after the primary died", mbb, []edge{
			{fsm.Attached, fsm.OldDied, alt, 0},
			{fsm.Joining, fsm.AttemptDelay, alt, 250},
			{fsm.Joining, fsm.HandshakeOK, "", 1000},
		}, []observed{{"reattach", 1000}}},
		{"forced, then the old link dies before a welcome", mbb, []edge{
			{fsm.Attached, fsm.Goodbye, alt, 0},
			{fsm.Handshaking, fsm.OldDied, "", 20},
			{fsm.Joining, fsm.HandshakeOK, "", 70},
		}, []observed{{"forced", 70}}},
		{"suspected in cooldown, accelerated", mbb, []edge{
			{fsm.Cooldown, fsm.OldSuspected, alt, 0},
			{fsm.Handshaking, fsm.HandshakeOK, "", 30},
			{fsm.Overlapping, fsm.OldDied, "", 45},
		}, []observed{{"suspect", 45}}},
		{"a move that detaches is not a switch", mbb, []edge{
			{fsm.Attached, fsm.OldDied, alt, 0},
			{fsm.Joining, fsm.HandshakeTimeout, "", 500},
			{fsm.Detached, fsm.Attach, "", 800},
			{fsm.Joining, fsm.HandshakeOK, "", 900},
		}, nil},
		{"break-before-make chart", fsm.BreakBeforeMake(mbb), []edge{
			{fsm.Attached, fsm.CandidateBetter, "", 0},
			{fsm.Joining, fsm.HandshakeOK, "", 120},
			{fsm.Cooldown, fsm.Goodbye, alt, 5000},
			{fsm.Joining, fsm.HandshakeOK, "", 5050},
		}, []observed{{"policy", 120}, {"forced", 50}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Unix(1000, 0)
			var tr switchTracker
			var got []observed
			for _, e := range tc.edges {
				if cause, d, ok := tr.observe(transitionFor(t, tc.chart, t0, e)); ok {
					got = append(got, observed{cause, int(d / time.Millisecond)})
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("observed %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("observed %v, want %v", got, tc.want)
				}
			}
		})
	}
}
