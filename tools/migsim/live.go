package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/policy"
	"github.com/repram/handover/transport"
	"github.com/repram/handover/transport/engine"
)

// LiveConfig configures live mode: one real transient node against
// substrates that are already running.
type LiveConfig struct {
	Targets      []string // HOST:PORT or ID@HOST:PORT
	Secret       []byte
	Enclave      string
	NodeID       string
	Cycle        time.Duration // evaluation cycle
	MigrateEvery time.Duration // 0: migrate on measured latency
	Duration     time.Duration // 0: until ctx ends
	PublishRate  float64       // PUTs a second over the HTTP API; 0: none
	Timeline     io.Writer     // transitions as they happen; nil: none
	// Transport overrides the transport's timings (zero fields keep the
	// transport's defaults, which suit real networks).
	Transport Timings
}

// LiveResult is what live mode measured.
type LiveResult struct {
	Summary
	GossipDelivered int `json:"gossip_delivered"` // every message handed to the handler
	DistinctIDs     int `json:"distinct_ids"`
	PublishErrors   int `json:"publish_errors"` // PUTs the substrates did not accept
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

func (s *schedule) Evaluate(obs policy.Observation) policy.Decision {
	if s.cooling {
		s.cooling = false
		return policy.Decision{Event: fsm.CooldownElapsed, Reason: "cooldown over"}
	}
	s.since++
	if s.since < s.every || len(s.order) < 2 {
		return policy.Decision{}
	}
	at := 0
	for i, id := range s.order {
		if id == obs.Current.ID {
			at = i
		}
	}
	for k := 1; k < len(s.order); k++ {
		next := s.order[(at+k)%len(s.order)]
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

func (s *schedule) Attached(id string)     { s.current, s.cooling, s.since = id, true, 0 }
func (s *schedule) MigrationFailed(string) {}
func (s *schedule) Forced()                {}

// probeID learns a substrate's id by attaching a short-lived node (its own
// node id, so our real node's registration is untouched) and reading the
// welcome.
func probeID(ctx context.Context, cfg LiveConfig, t liveTarget) (string, error) {
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
	return "", fmt.Errorf("no welcome from %s within 5s: check the address, the -secret and that it serves /v1/ws "+
		"(or name it as ID@HOST:PORT)", t.addr)
}

// dialRTT measures a substrate's latency as one TCP connect to its port,
// the same way for every substrate; 0 when it does not answer.
func dialRTT(addr string, bound time.Duration) time.Duration {
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, bound)
	if err != nil {
		return 0
	}
	d := time.Since(start)
	_ = c.Close()
	return max(d, time.Microsecond)
}

// Live runs one transient node against running substrates until ctx ends
// or cfg.Duration passes.
func Live(ctx context.Context, cfg LiveConfig) (*LiveResult, error) {
	targets, err := parseTargets(cfg.Targets)
	if err != nil {
		return nil, err
	}
	if cfg.PublishRate > 0 && len(targets) < 3 {
		return nil, errors.New("-publish-rate needs 3 or more substrates: each write goes to one that is neither the primary nor the candidate")
	}
	if cfg.Cycle <= 0 {
		cfg.Cycle = time.Second
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
	for i := range targets {
		if targets[i].id == "" {
			if targets[i].id, err = probeID(ctx, cfg, targets[i]); err != nil {
				return nil, err
			}
		}
	}
	var (
		mu        sync.Mutex
		byID      = map[string]int{}
		byKey     = map[string]int{}
		published = map[string]time.Time{}
		joinedAt  time.Time
		entries   []Entry // transitions, for switches and ping-pongs
		cycles    atomic.Int64
		begin     = time.Now()
	)
	tcfg := transport.Config{
		Identity: transport.Identity{NodeID: cfg.NodeID, Enclave: cfg.Enclave, Address: "127.0.0.1"},
		Secret:   cfg.Secret,
		Tuning:   cfg.Transport.tuning(cfg.Cycle),
		Handler: func(g transport.Gossip) {
			mu.Lock()
			byID[g.Message.MessageID]++
			byKey[g.Message.Key]++
			mu.Unlock()
		},
	}
	if cfg.MigrateEvery > 0 {
		sch := &schedule{every: max(1, int(cfg.MigrateEvery/cfg.Cycle))}
		for _, t := range targets {
			sch.order = append(sch.order, t.id)
		}
		tcfg.Decider = sch
	}
	node, err := transport.New(tcfg)
	if err != nil {
		return nil, err
	}
	ch := node.Subscribe(1024)
	subDone := make(chan struct{})
	go func() {
		defer close(subDone)
		for tr := range ch {
			mu.Lock()
			if joinedAt.IsZero() && tr.Primary != "" {
				joinedAt = tr.At
			}
			e := transitionEntry(tr, begin)
			e.Cycle = int(cycles.Load())
			entries = append(entries, e)
			mu.Unlock()
			if cfg.Timeline != nil {
				fmt.Fprintf(cfg.Timeline, "%7.2fs  %s → %s  %s  primary=%s candidate=%s  %s\n", tr.At.Sub(begin).Seconds(),
					tr.Step.From, tr.Step.To, tr.Step.Event, dash(tr.Primary), dash(tr.Candidate), tr.Reason)
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

	var pubWG sync.WaitGroup
	pubErrs := 0
	if cfg.PublishRate > 0 {
		pubWG.Go(func() {
			client := &http.Client{Timeout: 5 * time.Second}
			t := time.NewTicker(time.Duration(float64(time.Second) / cfg.PublishRate))
			defer t.Stop()
			for seq := 0; ; seq++ {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				st := node.Status()
				if st.Primary.ID == "" {
					continue
				}
				// On a schedule the next target is known: skip it too, so a
				// migration that starts while the write is in flight is
				// never towards the substrate that took it.
				next := ""
				if cfg.MigrateEvery > 0 {
					for i, t := range targets {
						if t.id == st.Primary.ID {
							next = targets[(i+1)%len(targets)].id
							break
						}
					}
				}
				var via *liveTarget
				for i := range targets {
					if t := &targets[(seq+i)%len(targets)]; t.id != st.Primary.ID && !racing(st, t.id) && t.id != next {
						via = t
						break
					}
				}
				if via == nil {
					continue
				}
				key := fmt.Sprintf("%s-%d", cfg.NodeID, seq)
				at := time.Now()
				if err := putHTTP(ctx, client, via.addr, key); err != nil {
					mu.Lock()
					pubErrs++
					mu.Unlock()
					continue
				}
				mu.Lock()
				published[key] = at
				mu.Unlock()
			}
		})
	}

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
		cur := node.Status().Primary.ID
		obs := transport.Observation{}
		for _, t := range targets {
			rtt := dialRTT(t.addr, cfg.Cycle/2)
			if t.id == cur {
				obs.CurrentLatency = rtt
				continue
			}
			if rtt > 0 {
				obs.Candidates = append(obs.Candidates, transport.Candidate{Substrate: t.substrate(), Latency: rtt})
			}
		}
		if _, err := node.Observe(context.WithoutCancel(ctx), obs); err != nil {
			break loop
		}
	}
	pubWG.Wait()
	// Let writes already accepted reach us through the mesh.
	if cfg.PublishRate > 0 {
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			missing := 0
			for k := range published {
				if byKey[k] == 0 {
					missing++
				}
			}
			mu.Unlock()
			if missing == 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err := closeNode(); err != nil {
		return nil, err
	}
	// Read after Close, when every transition has reached entries too.
	st := node.Status().Stats
	mu.Lock()
	defer mu.Unlock()
	res := &LiveResult{Summary: Summary{Scenario: "live", Strategy: MakeBeforeBreak, Policy: string(policy.Hysteresis),
		Cycles: int(cycles.Load()), Seconds: math.Round(time.Since(begin).Seconds()*10) / 10,
		Migrations: st.Migrations, Cancelled: st.Cancelled, Accelerated: st.Accelerated, Forced: st.Forced,
		Detaches: st.Detaches, DuplicatesDropped: st.DuplicatesDropped, StaleEventsDropped: st.StaleEventsDropped,
		FramesRejected: st.FramesRejected}}
	if cfg.MigrateEvery > 0 {
		res.Policy = "schedule"
	}
	moves, switchMs, _ := analyze(entries)
	res.Switches = len(moves)
	res.PingPongs = pingPongs(moves, policy.Default().PingPongWindow)
	res.SwitchMsP50, res.SwitchMsP99 = percentile(switchMs, 50), percentile(switchMs, 99)
	for _, n := range byID {
		res.GossipDelivered += n
	}
	res.DistinctIDs = len(byID)
	res.PublishErrors = pubErrs
	res.Published = len(published)
	for k, at := range published {
		n := byKey[k]
		if n > 0 {
			res.Delivered++
		}
		if n > 1 {
			res.DuplicatesDelivered += n - 1
		}
		if !joinedAt.IsZero() && !at.Before(joinedAt) {
			res.Owed++
			if n == 0 {
				res.Lost++
			}
		}
	}
	return res, nil
}

// putHTTP writes one key on a substrate over its HTTP API.
func putHTTP(ctx context.Context, c *http.Client, addr, key string) error {
	u := "http://" + addr + "/v1/data/" + url.PathEscape(key)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader([]byte("migsim")))
	if err != nil {
		return err
	}
	req.Header.Set("X-TTL", "300")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("PUT %s: %s", u, resp.Status)
	}
	return nil
}

func runLive(ctx context.Context, f flags, out io.Writer) error {
	cfg := LiveConfig{Targets: strings.Split(f.connect, ","), Secret: []byte(f.secret), Enclave: f.enclave,
		NodeID: f.nodeID, Cycle: f.cycle, MigrateEvery: f.migrateEvery, Duration: f.duration, PublishRate: f.publishRate}
	if !f.json {
		cfg.Timeline = out
		fmt.Fprintf(out, "migsim live: attaching to %s (enclave %q); Ctrl-C to stop\n", f.connect, f.enclave)
	}
	res, err := Live(ctx, cfg)
	if err != nil {
		return err
	}
	if f.json {
		if err := WriteJSON(out, res); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "\ngossip delivered %d (distinct ids %d), writes refused %d\n", res.GossipDelivered, res.DistinctIDs, res.PublishErrors)
		WriteSummary(out, res.Summary)
	}
	if res.Failed() {
		return errFailed
	}
	return nil
}

// racing reports whether substrate id is one of the node's candidates.
func racing(st transport.Status, id string) bool {
	for _, c := range st.Candidates {
		if c.ID == id {
			return true
		}
	}
	return false
}
