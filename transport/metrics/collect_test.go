package metrics_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport"
	"github.com/repram/handover/transport/metrics"
)

// fakeNode serves a fixed status and a transition channel the test closes.
type fakeNode struct {
	status transport.Status
	ch     chan transport.Transition
}

func (f *fakeNode) Status() transport.Status                  { return f.status }
func (f *fakeNode) Subscribe(int) <-chan transport.Transition { return f.ch }

// gather returns every sample of reg as series → value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			series := mf.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[series] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[series] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[series+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// Every counter and gauge reads its own field of the status: each field
// holds a distinct value, so a metric wired to the wrong one shows.
func TestCollectReadsEveryField(t *testing.T) {
	node := &fakeNode{ch: make(chan transport.Transition, 4), status: transport.Status{
		State:      fsm.Handshaking,
		Candidates: []transport.Substrate{{ID: "b"}, {ID: "c"}},
		PrimaryRTT: 1500 * time.Microsecond,
		Stats: transport.Stats{Joins: 1, Migrations: 2, Cancelled: 3, Accelerated: 4, Forced: 5, Suspected: 6,
			Reattached: 7, ContinuedAlone: 8, Detaches: 9, Rejoins: 10, Dials: 11, RaceDials: 12, Delivered: 13,
			DuplicatesDropped: 14, StaleEventsDropped: 15, FramesRejected: 16, TooOld: 17, PingsFailed: 18},
		TransitionsDropped: 19,
	}}
	c := metrics.New(node, metrics.Options{})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)

	t0 := time.Unix(0, 0)
	node.ch <- transport.Transition{At: t0, Step: fsm.Step{From: fsm.Attached, To: fsm.Handshaking,
		Path: fsm.PathSuspect, Actions: []fsm.Action{fsm.DialAlternative, fsm.SendHello}}}
	node.ch <- transport.Transition{At: t0.Add(time.Second), Step: fsm.Step{From: fsm.Overlapping, To: fsm.Cooldown,
		Path: fsm.PathMigrate, Actions: []fsm.Action{fsm.CloseOld, fsm.PromoteCandidate}}}
	close(node.ch)
	<-c.Done()

	want := map[string]float64{
		`handover_joins_total{}`:                              1,
		`handover_migrations_total{path="migrate"}`:           2,
		`handover_migrations_cancelled_total{}`:               3,
		`handover_migrations_total{path="accelerate_to_new"}`: 4,
		`handover_moves_started_total{cause="forced"}`:        5,
		`handover_moves_started_total{cause="suspect"}`:       6,
		`handover_moves_started_total{cause="reattach"}`:      7,
		`handover_detaches_total{}`:                           9,
		`handover_rejoins_total{}`:                            10,
		`handover_dials_total{}`:                              11,
		`handover_delivered_total{}`:                          13,
		`handover_duplicates_dropped_total{}`:                 14,
		`handover_stale_events_dropped_total{}`:               15,
		`handover_frames_rejected_total{}`:                    16,
		`handover_too_old_dropped_total{}`:                    17,
		`handover_pings_failed_total{}`:                       18,
		`handover_transitions_dropped_total{}`:                19,
		`handover_candidates{}`:                               2,
		`handover_link_rtt_seconds{}`:                         0.0015,
		`handover_state{state="handshaking"}`:                 1,
		`handover_state{state="attached"}`:                    0,
		`handover_switch_seconds{cause="suspect"}_count`:      1,
	}
	got := gather(t, reg)
	for series, v := range want {
		if g, ok := got[series]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", series, g, ok, v)
		}
	}
	states := 0
	for series := range got {
		if strings.HasPrefix(series, "handover_state{") {
			states++
		}
	}
	if states != len(fsm.Declaration().States) {
		t.Errorf("%d handover_state series, want one per state (%d)", states, len(fsm.Declaration().States))
	}
}
