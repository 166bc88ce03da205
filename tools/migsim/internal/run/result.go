package run

import (
	"math"
	"time"

	"github.com/repram/handover/tools/migsim/internal/scenario"
	"github.com/repram/handover/tools/migsim/internal/timeline"
	"github.com/repram/handover/transport"
)

// Result is everything a run measured.
type Result struct {
	Scenario *scenario.Scenario
	Options  Options
	Virtual  bool // run in virtual time (Virtual), not over sockets
	Entries  []timeline.Entry
	Alive    [][]bool // Alive[i][c]: substrate i was up during cycle c
	Elapsed  time.Duration
	Summary  Summary
}

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

// summarize is the summary of a socket run: what the recorder saw, the
// node's counters and the timeline.
func (rec *recorder) summarize(res *Result, st transport.Stats) Summary {
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
	return s.WithSwitches(timeline.Switches(res.Entries), sc.Policy.Config().WithDefaults().PingPongWindow)
}

// Failed reports whether the run broke the guarantee: a message lost or
// delivered twice.
func (s Summary) Failed() bool { return s.Lost != 0 || s.DuplicatesDelivered != 0 }

// WithSwitches is s with the figures of the switches sw: migrations,
// switches, ping-pongs within window cycles, and switch time percentiles.
func (s Summary) WithSwitches(sw []timeline.Switch, window int) Summary {
	migrations, ms := timeline.SwitchStats(sw)
	s.Migrations, s.Switches = migrations, len(sw)
	s.PingPongs = timeline.PingPongs(sw, window)
	s.SwitchMsP50, s.SwitchMsP99 = timeline.Percentile(ms, 50), timeline.Percentile(ms, 99)
	return s
}
