// Package live runs one real transient node (transport.Node) against
// REPRAM substrates that are already running — migsim live — and accounts
// honestly for the writes it makes on them (transport/repramtest/ledger).
package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/policy"
	"github.com/repram/handover/tools/migsim/internal/run"
	"github.com/repram/handover/tools/migsim/internal/scenario"
	"github.com/repram/handover/tools/migsim/internal/table"
	"github.com/repram/handover/tools/migsim/internal/timeline"
	"github.com/repram/handover/transport"
	"github.com/repram/handover/transport/engine"
	"github.com/repram/handover/transport/repramtest/ledger"
)

// Config configures a live run: one real transient node against
// substrates that are already running.
type Config struct {
	Targets      []string // HOST:PORT or ID@HOST:PORT
	Secret       []byte
	Enclave      string
	NodeID       string
	Cycle        time.Duration // evaluation cycle
	MigrateEvery time.Duration // 0: migrate on measured latency
	Duration     time.Duration // 0: until ctx ends
	PublishRate  float64       // PUTs a second over the HTTP API; 0: none
	Writers      int           // PUTs in flight at once; 0: the ledger's default
	Timeline     io.Writer     // transitions as they happen; nil: none
	// OnTransition, when set, sees every transition as it is recorded
	// (on one goroutine): an embedder or a test that ends the run at a
	// chosen point, e.g. after a number of migrations, cancels ctx there.
	OnTransition func(transport.Transition)
	Logger       *zerolog.Logger
	// Transport overrides the transport's timings (zero fields keep the
	// transport's defaults, which suit real networks).
	Transport scenario.Timings
	// Quiet is how long nothing new must be delivered, after the run,
	// before the writes are accounted (at most 3 s; default 500 ms): what
	// is still crossing the mesh arrives meanwhile.
	Quiet time.Duration
}

// Result is what a live run measured.
type Result struct {
	run.Summary
	GossipDelivered int               `json:"gossip_delivered"` // every message handed to the handler
	DistinctIDs     int               `json:"distinct_ids"`
	PublishErrors   int               `json:"publish_errors"` // PUTs that failed or timed out
	Account         ledger.Report     `json:"account"`        // the honest account of the writes
	SwitchLog       []timeline.Switch `json:"switch_log"`
	Substrates      []string          `json:"substrates"` // ID@HOST:PORT as used
	Probed          map[string]int    `json:"probed"`     // successful transport.Probe measurements by substrate
}

// liveTarget is a substrate given on the command line.
type liveTarget struct {
	id, addr string
}

func parseTargets(list []string) ([]liveTarget, error) {
	var out []liveTarget
	for _, t := range list {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		id, addr, ok := strings.Cut(t, "@")
		if !ok {
			id, addr = "", t
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("-connect %q: want HOST:PORT or ID@HOST:PORT (the substrate's HTTP port): %w", t, err)
		}
		out = append(out, liveTarget{id, addr})
	}
	if len(out) == 0 {
		return nil, errors.New("-connect lists no substrate")
	}
	return out, nil
}

func (t liveTarget) substrate() transport.Substrate {
	return transport.Substrate{ID: t.id, URL: "ws://" + t.addr + "/v1/ws"}
}

// schedule is the -migrate-every policy: it moves to the next substrate in
// turn every few cycles, whatever the latencies.
type schedule struct {
	every, since int
	order        []string
	current      string
	cooling      bool
}

// Evaluate moves to the next substrate in turn every s.every cycles.
func (s *schedule) Evaluate(obs policy.Snapshot) policy.Decision {
	if s.cooling {
		s.cooling = false
		return policy.Decision{Event: fsm.CooldownElapsed, Reason: "cooldown over"}
	}
	s.since++
	if s.since < s.every || len(s.order) < 2 {
		return policy.Decision{}
	}
	for _, next := range s.after(obs.Current.ID) {
		for _, c := range obs.Candidates {
			if c.ID == next {
				s.since = 0
				return policy.Decision{Event: fsm.CandidateBetter, Candidate: c,
					Reason: fmt.Sprintf("schedule: every %d cycles, next is %s", s.every, next)}
			}
		}
	}
	return policy.Decision{}
}

// after lists the other substrates in the order the schedule tries them
// after current.
func (s *schedule) after(current string) []string {
	at := 0
	for i, id := range s.order {
		if id == current {
			at = i
		}
	}
	var out []string
	for k := 1; k < len(s.order); k++ {
		out = append(out, s.order[(at+k)%len(s.order)])
	}
	return out
}

// Attached starts the count again after one cooldown cycle.
func (s *schedule) Attached(id string) { s.current, s.cooling, s.since = id, true, 0 }

// MigrationFailed changes nothing: the schedule moves on in turn.
func (s *schedule) MigrationFailed(string) {}

// Forced changes nothing: the schedule moves on in turn.
func (s *schedule) Forced() {}

// learnID names a substrate: its GET /v1/health node_id (REPRAM), or, for
// a substrate without it, the parent id of a welcome to a short-lived
// probe node (its own node id, so our real node's registration is
// untouched).
func learnID(ctx context.Context, cfg Config, t liveTarget, c *ledger.Client) (string, error) {
	if h, err := c.Health(ctx, t.addr); err == nil && h.NodeID != "" {
		return h.NodeID, nil
	}
	n, err := transport.New(transport.Config{
		Identity: transport.Identity{NodeID: cfg.NodeID + "-probe", Enclave: cfg.Enclave, Address: "127.0.0.1"},
		Secret:   cfg.Secret, Tuning: engine.Tuning{HandshakeTimeout: 5 * time.Second},
	})
	if err != nil {
		return "", err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Close(cctx)
	}()
	if err := n.Attach(ctx, t.substrate()); err != nil {
		return "", err
	}
	deadline := time.Now().Add(6 * time.Second)
	for time.Now().Before(deadline) {
		if st := n.Status(); st.State == fsm.Attached && st.Primary.ID != "" {
			return st.Primary.ID, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "", fmt.Errorf("no /v1/health and no welcome from %s within 5s: check the address, the -secret and that it serves /v1/ws "+
		"(or name it as ID@HOST:PORT)", t.addr)
}

// probeEvery bounds how often live mode probes the substrates.
const probeEvery = 500 * time.Millisecond

// probeAll measures every target with transport.Probe (the library's own
// measurement: WebSocket pings, no hello), concurrently, bounded by d; 0
// for a target that did not answer.
func probeAll(ctx context.Context, targets []liveTarget, d time.Duration) []time.Duration {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	out := make([]time.Duration, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			if rtt, err := transport.Probe(ctx, t.substrate(), transport.ProbeOptions{Count: 3}); err == nil {
				out[i] = max(rtt, time.Microsecond)
			}
		})
	}
	wg.Wait()
	return out
}

// Run runs one transient node against running substrates until ctx ends
// or cfg.Duration passes, writing PublishRate keys a second on them and
// accounting honestly for what the node was owed (package ledger).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	targets, err := parseTargets(cfg.Targets)
	if err != nil {
		return nil, err
	}
	if cfg.PublishRate > 0 && len(targets) < 2 {
		return nil, errors.New("-publish-rate needs 2 or more substrates: a write made on the node's own substrate never reaches it")
	}
	if cfg.Cycle <= 0 {
		cfg.Cycle = time.Second
	}
	if cfg.Quiet <= 0 {
		cfg.Quiet = 500 * time.Millisecond
	}
	if cfg.NodeID == "" {
		host, _ := os.Hostname()
		cfg.NodeID = fmt.Sprintf("migsim-%s-%d", host, os.Getpid())
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	client := ledger.NewClient(time.Second)
	subs := make([]ledger.Substrate, 0, len(targets))
	for i := range targets {
		if targets[i].id == "" {
			if targets[i].id, err = learnID(ctx, cfg, targets[i], client); err != nil {
				return nil, err
			}
		}
		subs = append(subs, ledger.Substrate{ID: targets[i].id, HTTP: targets[i].addr})
	}
	var (
		mu      sync.Mutex
		byID    = map[string]int{}
		entries []timeline.Entry // transitions, for switches and ping-pongs
		cycles  atomic.Int64
		begin   = time.Now()
		node    *transport.Node
	)
	led, err := ledger.New(ledger.Config{Substrates: subs, Prefix: fmt.Sprintf("%s-%d-", cfg.NodeID, begin.UnixNano()),
		Rate: cfg.PublishRate, Writers: cfg.Writers, Node: func() (string, string) {
			st := node.Status()
			cand := ""
			if len(st.Candidates) > 0 {
				cand = st.Candidates[0].ID
			}
			return st.Primary.ID, cand
		}})
	if err != nil {
		return nil, err
	}
	tcfg := transport.Config{
		Identity: transport.Identity{NodeID: cfg.NodeID, Enclave: cfg.Enclave, Address: "127.0.0.1"},
		Secret:   cfg.Secret,
		Tuning:   cfg.Transport.Tuning(cfg.Cycle),
		Logger:   cfg.Logger,
		Handler: func(g transport.Gossip) {
			led.Delivered(g)
			mu.Lock()
			byID[g.Message.MessageID]++
			mu.Unlock()
		},
	}
	var sch *schedule
	if cfg.MigrateEvery > 0 {
		sch = &schedule{every: max(1, int(cfg.MigrateEvery/cfg.Cycle))}
		for _, t := range targets {
			sch.order = append(sch.order, t.id)
		}
		tcfg.Decider = sch
	}
	if node, err = transport.New(tcfg); err != nil {
		return nil, err
	}
	ch := node.Subscribe(1024)
	subDone := make(chan struct{})
	go func() {
		defer close(subDone)
		for tr := range ch {
			led.Transition(tr)
			if cfg.OnTransition != nil {
				cfg.OnTransition(tr)
			}
			mu.Lock()
			e := timeline.FromTransition(tr, begin)
			e.Cycle = int(cycles.Load())
			entries = append(entries, e)
			mu.Unlock()
			if cfg.Timeline != nil {
				fmt.Fprintf(cfg.Timeline, "%7.2fs  %s → %s  %s  primary=%s candidate=%s  %s\n", tr.At.Sub(begin).Seconds(),
					tr.Step.From, tr.Step.To, tr.Step.Event, table.Dash(tr.Primary), table.Dash(tr.Candidate), tr.Reason)
			}
		}
	}()
	closeNode := func() error {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := node.Close(cctx)
		<-subDone
		return err
	}
	if err := node.Attach(ctx, targets[0].substrate()); err != nil {
		_ = closeNode()
		return nil, err
	}
	if sch != nil {
		if next := sch.after(targets[0].id); len(next) > 0 {
			led.Avoid(next[0]) // the first scheduled target (see the loop below)
		}
	}
	// Writes start at once and go on while the node has no link: those
	// count against an outage (as not reached), never as owed.
	led.Start(context.WithoutCancel(ctx))

	var (
		probed   = map[string]int{}
		rtts     []time.Duration
		probedAt time.Time
	)
	tick := time.NewTicker(cfg.Cycle)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		cycles.Add(1)
		st := node.Status()
		if sch != nil && st.Primary.ID != "" {
			// The next target is known: stop writing on it a cycle ahead
			// (ledger.Ledger.Avoid says why).
			if next := sch.after(st.Primary.ID); len(next) > 0 {
				led.Avoid(next[0])
			}
		}
		// Probes (a WebSocket each) run at most every probeEvery: with
		// short test cycles the last measurement is reused.
		if rtts == nil || time.Since(probedAt) >= probeEvery {
			rtts, probedAt = probeAll(ctx, targets, min(cfg.Cycle/2, 2*time.Second)), time.Now()
			for i, t := range targets {
				if rtts[i] > 0 {
					probed[t.id]++
				}
			}
		}
		obs := transport.Observation{}
		for i, t := range targets {
			if t.id == st.Primary.ID {
				obs.CurrentLatency = rtts[i] // 0: the heartbeat's round trip
				continue
			}
			// Latency 0 (the probe failed this cycle) reads as unmeasured:
			// the hysteresis policy ignores it, a schedule still moves.
			obs.Candidates = append(obs.Candidates, transport.Candidate{Substrate: t.substrate(), Latency: rtts[i]})
		}
		if _, err := node.Observe(context.WithoutCancel(ctx), obs); err != nil {
			break loop
		}
	}
	led.Stop()
	// Let writes already made reach the node through the mesh: wait until
	// nothing new is delivered for cfg.Quiet (at most 3 s).
	last, quiet := node.Status().Stats.Delivered, time.Now()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && time.Since(quiet) < cfg.Quiet; {
		time.Sleep(min(10*time.Millisecond, cfg.Quiet/10))
		if d := node.Status().Stats.Delivered; d != last {
			last, quiet = d, time.Now()
		}
	}
	rctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	rep := led.Report(rctx)
	cancel()
	if err := closeNode(); err != nil {
		return nil, err
	}
	// Read after Close, when every transition has reached entries too.
	st := node.Status().Stats
	mu.Lock()
	defer mu.Unlock()
	res := &Result{Summary: run.Summary{Scenario: "live", Strategy: run.MakeBeforeBreak, Policy: string(policy.Hysteresis),
		Cycles: int(cycles.Load()), Seconds: math.Round(time.Since(begin).Seconds()*10) / 10,
		Migrations: st.Migrations, Cancelled: st.Cancelled, Accelerated: st.Accelerated, Forced: st.Forced,
		Detaches: st.Detaches, DuplicatesDropped: st.DuplicatesDropped, StaleEventsDropped: st.StaleEventsDropped,
		FramesRejected: st.FramesRejected,
		Published:      rep.Published, Owed: rep.Owed, Delivered: rep.Delivered, Lost: rep.Lost, DuplicatesDelivered: rep.Duplicates},
		Account: rep, PublishErrors: rep.Refused, Probed: probed}
	if sch != nil {
		res.Policy = "schedule"
	}
	for _, t := range targets {
		res.Substrates = append(res.Substrates, t.id+"@"+t.addr)
	}
	res.SwitchLog = timeline.Switches(entries)
	// Migrations stay the node's own count (a scheduled move is one too).
	migrations := res.Migrations
	res.Summary = res.Summary.WithSwitches(res.SwitchLog, policy.Default().PingPongWindow)
	res.Migrations = migrations
	for _, n := range byID {
		res.GossipDelivered += n
	}
	res.DistinctIDs = len(byID)
	return res, nil
}

// Write prints what only live mode measures: the substrates and their
// mesh, the honest account of the writes, and every switch with its cause.
func Write(w io.Writer, res *Result) {
	fmt.Fprintf(w, "\nsubstrates: %s (transport.Probe answers per substrate: %v)\n", strings.Join(res.Substrates, ", "), res.Probed)
	fmt.Fprintf(w, "%s\n", res.Account)
	fmt.Fprintf(w, "gossip delivered %d (distinct ids %d)\n", res.GossipDelivered, res.DistinctIDs)
	for _, s := range res.SwitchLog {
		ms := "—"
		if s.Ms >= 0 {
			ms = fmt.Sprintf("%.1f ms", s.Ms)
		}
		cause := string(s.Cause)
		if s.Accelerated {
			cause += ", accelerated"
		}
		fmt.Fprintf(w, "switch at %6.2fs  %s → %s  %s  (%s)\n", s.At, s.From, s.To, ms, cause)
	}
}
