// Package metrics exports a [transport.Node]'s counters and gauges to
// Prometheus. It is optional: package transport does not import Prometheus,
// and a runtime that does not export metrics never links it.
//
// A [Collector] is a prometheus.Collector. On each scrape it reads
// [transport.Node.Status], so the counters are the node's own [transport.Stats]
// and can never drift from them. The one metric the snapshot cannot give,
// how long each switch took, comes from [transport.Node.Subscribe]: a
// goroutine reads the node's transitions and ends when the node closes the
// channel, in [transport.Node.Close], so the collector leaves nothing
// running after its node.
//
// # Metrics
//
// Counters (each is the matching field of [transport.Stats], or
// Status.TransitionsDropped):
//
//	handover_migrations_total{path}          completed switches, by the fsm.Path of the
//	                                         transition that completed them: "migrate"
//	                                         (the new link caught up, overlap_done) or
//	                                         "accelerate_to_new" (the old link died mid-overlap)
//	handover_migrations_cancelled_total      moves given up, old link kept
//	handover_moves_started_total{cause}      moves the node had to make: "forced" (goodbye),
//	                                         "suspect" (silent primary), "reattach" (dead primary)
//	handover_joins_total                     first welcomes of a race from nothing
//	handover_rejoins_total                   attach attempts made by the rejoin backoff
//	handover_detaches_total                  times the node was left with no link
//	handover_dials_total                     links dialled
//	handover_delivered_total                 gossip handed to the handler
//	handover_duplicates_dropped_total        gossip dropped as already delivered
//	handover_too_old_dropped_total           gossip dropped as older than MaxMessageAge
//	handover_stale_events_dropped_total      reports from links no longer primary or candidate
//	handover_frames_rejected_total           frames that failed to decode, verify or fit
//	handover_pings_failed_total              heartbeat pings unanswered
//	handover_transitions_dropped_total       transitions lost by a full subscriber channel
//
// Gauges:
//
//	handover_state{state}                    1 for the current fsm.State, 0 for the others
//	handover_candidates                      candidates racing for a welcome now
//	handover_link_rtt_seconds                the primary's smoothed round trip (0: none yet)
//
// Histogram:
//
//	handover_switch_seconds{cause}           from the transition that dials the first
//	                                         candidate of a move to the one that promotes a
//	                                         candidate; cause is "policy", "forced",
//	                                         "suspect" or "reattach". A move that is
//	                                         cancelled, detaches or is closed is not observed.
//
// Every series carries the Options.ConstLabels, if any (a node id, say).
package metrics

import (
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport"
)

// Source is what a Collector reads: *transport.Node implements it.
type Source interface {
	Status() transport.Status
	Subscribe(buffer int) <-chan transport.Transition
}

// DefaultBuckets are the switch histogram's upper bounds in seconds: a
// switch takes at least the overlap floor (50 ms by default) and at most
// about the handshake timeout plus the maximum overlap (25 s).
var DefaultBuckets = []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Options configures a Collector; the zero value is fine.
type Options struct {
	// ConstLabels are added to every series, e.g. {"node": "t1"}.
	ConstLabels prometheus.Labels
	// Buckets overrides [DefaultBuckets].
	Buckets []float64
	// Buffer is the transition channel's capacity (default 256). A full
	// channel loses transitions (handover_transitions_dropped_total); a lost
	// start or end leaves that switch unobserved.
	Buffer int
}

// Collector is a prometheus.Collector for one node. Register it with a
// prometheus.Registerer; it is safe for concurrent scrapes.
type Collector struct {
	node     Source
	counters []counter
	started  *prometheus.Desc
	migr     *prometheus.Desc
	state    *prometheus.Desc
	cands    *prometheus.Desc
	rtt      *prometheus.Desc
	switches *prometheus.HistogramVec
	states   []fsm.State
	done     chan struct{}

	sw switchTracker // owned by the goroutine reading transitions
}

// counter is one counter read from the status snapshot.
type counter struct {
	desc *prometheus.Desc
	get  func(transport.Status) int
}

// New returns a collector for node and starts reading its transitions; the
// reading ends when the node closes.
func New(node Source, opts Options) *Collector {
	if opts.Buckets == nil {
		opts.Buckets = DefaultBuckets
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 256
	}
	cl := opts.ConstLabels
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("handover_"+name, help, labels, cl)
	}
	c := &Collector{
		node:    node,
		started: desc("moves_started_total", "Moves the node had to make, by cause: forced (the primary said goodbye), suspect (it went silent), reattach (it died).", "cause"),
		migr:    desc("migrations_total", "Completed switches to a new primary, by the fsm path of the completing transition: migrate (the new link caught up) or accelerate_to_new (the old link died mid-overlap).", "path"),
		state:   desc("state", "1 for the migration state machine's current state, 0 for the others.", "state"),
		cands:   desc("candidates", "Candidate links racing for a welcome now."),
		rtt:     desc("link_rtt_seconds", "The primary link's smoothed round trip (0 when there is no primary or no sample yet)."),
		switches: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        "handover_switch_seconds",
			Help:        "Duration of a switch: from the transition that dials the first candidate of a move to the one that promotes a candidate, by cause (policy, forced, suspect, reattach).",
			Buckets:     opts.Buckets,
			ConstLabels: cl,
		}, []string{"cause"}),
		states: fsm.Declaration().States,
		done:   make(chan struct{}),
	}
	stat := func(name, help string, get func(transport.Stats) int) counter {
		return counter{desc(name, help), func(s transport.Status) int { return get(s.Stats) }}
	}
	c.counters = []counter{
		stat("migrations_cancelled_total", "Moves given up with the old link kept.", func(s transport.Stats) int { return s.Cancelled }),
		stat("joins_total", "First welcomes of a race from no link.", func(s transport.Stats) int { return s.Joins }),
		stat("rejoins_total", "Attach attempts made by the rejoin backoff.", func(s transport.Stats) int { return s.Rejoins }),
		stat("detaches_total", "Times the node was left without any link.", func(s transport.Stats) int { return s.Detaches }),
		stat("dials_total", "Links dialled.", func(s transport.Stats) int { return s.Dials }),
		stat("delivered_total", "Gossip messages handed to the handler.", func(s transport.Stats) int { return s.Delivered }),
		stat("duplicates_dropped_total", "Gossip messages dropped because their id was already delivered.", func(s transport.Stats) int { return s.DuplicatesDropped }),
		stat("too_old_dropped_total", "Gossip messages dropped because they were older than the maximum message age.", func(s transport.Stats) int { return s.TooOld }),
		stat("stale_events_dropped_total", "Reports from links no longer primary or candidate, dropped unfired.", func(s transport.Stats) int { return s.StaleEventsDropped }),
		stat("frames_rejected_total", "Frames that failed to decode, verify or fit the protocol.", func(s transport.Stats) int { return s.FramesRejected }),
		stat("pings_failed_total", "Heartbeat pings left unanswered.", func(s transport.Stats) int { return s.PingsFailed }),
		{desc("transitions_dropped_total", "Transitions not delivered to a full subscriber channel (this collector's included)."),
			func(s transport.Status) int { return s.TransitionsDropped }},
	}
	go c.read(node.Subscribe(opts.Buffer))
	return c
}

// Done is closed once the collector has stopped reading transitions: after
// its node closed.
func (c *Collector) Done() <-chan struct{} { return c.done }

// read feeds the switch histogram until the node closes the channel.
func (c *Collector) read(ch <-chan transport.Transition) {
	defer close(c.done)
	for tr := range ch {
		if cause, d, ok := c.sw.observe(tr); ok {
			c.switches.WithLabelValues(cause).Observe(d.Seconds())
		}
	}
}

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, k := range c.counters {
		ch <- k.desc
	}
	ch <- c.started
	ch <- c.migr
	ch <- c.state
	ch <- c.cands
	ch <- c.rtt
	c.switches.Describe(ch)
}

// Collect reads the node's status and sends every metric.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.node.Status()
	for _, k := range c.counters {
		ch <- prometheus.MustNewConstMetric(k.desc, prometheus.CounterValue, float64(k.get(st)))
	}
	for cause, n := range map[string]int{"forced": st.Stats.Forced, "suspect": st.Stats.Suspected, "reattach": st.Stats.Reattached} {
		ch <- prometheus.MustNewConstMetric(c.started, prometheus.CounterValue, float64(n), cause)
	}
	ch <- prometheus.MustNewConstMetric(c.migr, prometheus.CounterValue, float64(st.Stats.Migrations), string(fsm.PathMigrate))
	ch <- prometheus.MustNewConstMetric(c.migr, prometheus.CounterValue, float64(st.Stats.Accelerated), string(fsm.PathAccelerate))
	for _, s := range c.states {
		v := 0.0
		if s == st.State {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, string(s))
	}
	ch <- prometheus.MustNewConstMetric(c.cands, prometheus.GaugeValue, float64(len(st.Candidates)))
	ch <- prometheus.MustNewConstMetric(c.rtt, prometheus.GaugeValue, st.PrimaryRTT.Seconds())
	c.switches.Collect(ch)
}

// switchTracker times switches from the transitions. It is pure: time comes
// from the transitions.
type switchTracker struct {
	cause string    // the move in progress; "" for none
	since time.Time // when its first candidate was dialled
}

// causes maps the path of a transition that starts a move to the cause.
var causes = map[fsm.Path]string{
	fsm.PathMigrate:  "policy",
	fsm.PathForced:   "forced",
	fsm.PathSuspect:  "suspect",
	fsm.PathReattach: "reattach",
}

// observe takes one transition and reports a switch that it completes.
func (t *switchTracker) observe(tr transport.Transition) (cause string, d time.Duration, ok bool) {
	st := tr.Step
	switch {
	case st.From == fsm.Attached || st.From == fsm.Cooldown:
		// A move starts when a steady state dials (in either chart, the
		// make-before-break one or its break-before-make variant).
		if c, moving := causes[st.Path]; moving && dials(st.Actions) {
			t.cause, t.since = c, tr.At
		}
	case t.cause == "":
	case slices.Contains(st.Actions, fsm.PromoteCandidate):
		cause, d, ok = t.cause, tr.At.Sub(t.since), true
		t.cause = ""
	case st.To == fsm.Attached || st.To == fsm.Detached || st.To == fsm.Closed:
		t.cause = "" // cancelled, detached or closed without a switch
	}
	return cause, d, ok
}

func dials(actions []fsm.Action) bool {
	return slices.Contains(actions, fsm.DialCandidate) || slices.Contains(actions, fsm.DialAlternative)
}
