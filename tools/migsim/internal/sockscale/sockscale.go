// Package sockscale runs a mass migration over real loopback WebSockets —
// migsim scale -sockets: N real transport.Nodes attach to one substratetest
// substrate, which then shuts down gracefully (goodbye twice, with
// alternatives). Both ends of every link run in this process, so at large N
// it measures the process's scheduler and heap as much as the protocol;
// package vscale is the scale study in virtual time.
package sockscale

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/tools/migsim/internal/table"
	"github.com/repram/handover/tools/migsim/internal/timeline"
	"github.com/repram/handover/transport"
	"github.com/repram/handover/transport/engine"
	"github.com/repram/handover/transport/substratetest"
	"github.com/repram/handover/transport/wire"
)

// Config configures a mass migration.
type Config struct {
	Nodes       int
	PublishRate float64       // messages a second published in the mesh
	GoodbyeGap  time.Duration // between the leaving substrate's two goodbyes
	Settle      time.Duration // publishing before the goodbye, and after everyone rehomed (and the leaving substrate closed)
}

// Result is what a mass migration measured.
type Result struct {
	Nodes               int     `json:"nodes"`
	AttachSeconds       float64 `json:"attach_s"`  // until every node was attached to the first substrate
	RehomeSeconds       float64 `json:"rehome_s"`  // from the goodbye until every node was attached elsewhere
	Rehomed             int     `json:"rehomed"`   // nodes attached to another substrate at the end
	Published           int     `json:"published"` // messages published while everyone was attached
	Owed                int     `json:"owed"`      // published × nodes
	Delivered           int     `json:"delivered"` // distinct (node, message) deliveries
	Lost                int     `json:"lost"`
	DuplicatesDelivered int     `json:"duplicates_delivered"`
	Migrations          int     `json:"migrations"`
	Accelerated         int     `json:"accelerated"`
	ContinuedAlone      int     `json:"continued_alone"`
	Cancelled           int     `json:"cancelled"`
	Detaches            int     `json:"detaches"`
	// WelcomeMs* is, per node, from the node taking its first goodbye to
	// its new substrate's welcome (WelcomeSamples nodes had both). A node
	// welcomed after the leaving substrate closed (a little more than
	// GoodbyeGap after it started sending goodbyes) misses what is
	// published in between: the margin that decides whether anything is lost.
	WelcomeSamples    int     `json:"welcome_samples"`
	WelcomeMsP50      float64 `json:"welcome_ms_p50"`
	WelcomeMsP99      float64 `json:"welcome_ms_p99"`
	WelcomeMsMax      float64 `json:"welcome_ms_max"`
	KiBPerNode        float64 `json:"kib_per_node"`        // heap and stacks per attached node, both ends
	GoroutinesPerNode float64 `json:"goroutines_per_node"` // both ends
	// Causes counts the cancelled, continued-alone and detached
	// transitions by event and reason.
	Causes map[string]int `json:"causes,omitempty"`
}

// trimReason keeps a transition's reason short enough to group by: no
// addresses, no ports.
func trimReason(r string) string {
	f := strings.Fields(r)
	for i, w := range f {
		if strings.Contains(w, "://") || strings.Contains(w, "127.0.0.1") {
			f[i] = "…"
		}
	}
	r = strings.Join(f, " ")
	if len(r) > 90 {
		r = r[:90] + "…"
	}
	return r
}

// counted is what one node delivered and when it rehomed.
type counted struct {
	mu        sync.Mutex
	seen      map[string]int
	goodbyeAt time.Time // the first goodbye's transition
	welcomeAt time.Time // the first handshake_ok after it
}

// Run attaches cfg.Nodes transient nodes to one substrate, publishes,
// then makes that substrate shut down (goodbye twice, with alternatives)
// and measures how the nodes rehome.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Nodes <= 0 {
		return nil, errors.New("scale: -nodes must be positive")
	}
	secret := []byte("migsim-scale-secret")
	mesh := substratetest.NewMesh(substratetest.MeshConfig{Secret: secret, GoodbyeGap: cfg.GoodbyeGap,
		QueueSize: 4096, WriteTimeout: 10 * time.Second})
	defer mesh.Close()
	var subs []*substratetest.Server
	for i, id := range []string{"leaving", "stay-a", "stay-b"} {
		s, err := mesh.Start(substratetest.Config{ID: id, Delay: time.Duration(i) * time.Millisecond})
		if err != nil {
			return nil, err
		}
		subs = append(subs, s)
	}
	leaving := subs[0]
	target := transport.Substrate{ID: leaving.ID(), URL: leaving.URL(), Enclave: leaving.Enclave()}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()

	res := &Result{Nodes: cfg.Nodes}
	nodes := make([]*transport.Node, cfg.Nodes)
	counts := make([]*counted, cfg.Nodes)
	var (
		subWG    sync.WaitGroup // subscriptions end when their node is closed
		causesMu sync.Mutex
		causes   = map[string]int{}
	)
	defer subWG.Wait()
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for _, n := range nodes {
			if n != nil {
				wg.Go(func() { _ = n.Close(cctx) })
			}
		}
		wg.Wait()
	}()
	start := time.Now()
	for i := range nodes {
		c := &counted{seen: map[string]int{}}
		counts[i] = c
		n, err := transport.New(transport.Config{
			Identity: transport.Identity{NodeID: fmt.Sprintf("t%04d", i), Enclave: substratetest.DefaultEnclave, Address: "127.0.0.1"},
			Secret:   secret, DeliveryBuffer: 64,
			Tuning: engine.Tuning{OverlapGrace: 100 * time.Millisecond, OverlapMax: 5 * time.Second,
				RejoinBackoff: 100 * time.Millisecond, RejoinBackoffMax: time.Second},
			Handler: func(g transport.Gossip) {
				c.mu.Lock()
				c.seen[g.Message.MessageID]++
				c.mu.Unlock()
			},
		})
		if err != nil {
			return nil, err
		}
		nodes[i] = n
		ch := n.Subscribe(64)
		subWG.Go(func() {
			for tr := range ch {
				c.mu.Lock()
				switch {
				case tr.Step.Event == fsm.Goodbye && c.goodbyeAt.IsZero():
					c.goodbyeAt = tr.At
				case tr.Step.Event == fsm.HandshakeOK && !c.goodbyeAt.IsZero() && c.welcomeAt.IsZero():
					c.welcomeAt = tr.At
				}
				c.mu.Unlock()
				if p := tr.Step.Path; p == fsm.PathCancel || p == fsm.PathContinue || p == fsm.PathDetach {
					causesMu.Lock()
					causes[string(tr.Step.Event)+": "+trimReason(tr.Reason)]++
					causesMu.Unlock()
				}
			}
		})
		if err := n.Attach(ctx, target); err != nil {
			return nil, err
		}
	}
	settled := func(n *transport.Node, not string) bool {
		st := n.Status()
		return st.Primary.ID != "" && st.Primary.ID != not && len(st.Candidates) == 0 &&
			(st.State == fsm.Attached || st.State == fsm.Cooldown)
	}
	if err := waitAll(ctx, nodes, 60*time.Second, func(n *transport.Node) bool { return settled(n, "") }); err != nil {
		return nil, fmt.Errorf("scale: attaching %d nodes: %w", cfg.Nodes, err)
	}
	res.AttachSeconds = time.Since(start).Seconds()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	used := float64(after.HeapInuse+after.StackInuse) - float64(before.HeapInuse+before.StackInuse)
	res.KiBPerNode = math.Round(used/float64(cfg.Nodes)/1024*10) / 10
	res.GoroutinesPerNode = math.Round(float64(runtime.NumGoroutine()-g0)/float64(cfg.Nodes)*10) / 10

	var (
		pubMu     sync.Mutex
		published []string
		quit      = make(chan struct{})
		pubDone   = make(chan struct{})
	)
	go func() {
		defer close(pubDone)
		gap := time.Duration(float64(time.Second) / math.Max(cfg.PublishRate, 0.1))
		t := time.NewTicker(gap)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			msg, err := mesh.Publish(wire.Message{From: "migsim-publisher", Data: []byte("v")})
			if err != nil {
				return
			}
			pubMu.Lock()
			published = append(published, msg.MessageID)
			pubMu.Unlock()
		}
	}()
	stopPub := func() {
		select {
		case <-quit:
		default:
			close(quit)
		}
		<-pubDone
	}
	defer stopPub()
	sleep(ctx, cfg.Settle)
	byeAt := time.Now()
	var byeWG sync.WaitGroup
	byeWG.Go(func() { leaving.Shutdown(nil, true) })
	err := waitAll(ctx, nodes, 60*time.Second, func(n *transport.Node) bool { return settled(n, leaving.ID()) })
	res.RehomeSeconds = math.Round(time.Since(byeAt).Seconds()*1000) / 1000
	if err != nil {
		byeWG.Wait()
		return nil, fmt.Errorf("scale: rehoming: %w", err)
	}
	// Publish for Settle more on the substrates the nodes moved to, and
	// until the leaving one has closed, whichever ends later: no node is
	// on it any more, so the rest of its goodbye gap need not come first.
	sleep(ctx, cfg.Settle)
	byeWG.Wait()
	stopPub()

	pubMu.Lock()
	ids := published
	pubMu.Unlock()
	// Wait for what is in flight: until everything owed has arrived, or
	// nothing more has for a second (a message published while a node had
	// no link never comes), at most 10 s.
	deadline := time.Now().Add(10 * time.Second)
	last, lastAt := -1, time.Now()
	for {
		res.tally(ids, counts)
		if res.Delivered != last {
			last, lastAt = res.Delivered, time.Now()
		}
		if res.Delivered == res.Owed || time.Since(lastAt) >= time.Second || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var welcomeMs []float64
	for _, c := range counts {
		c.mu.Lock()
		if !c.welcomeAt.IsZero() {
			welcomeMs = append(welcomeMs, float64(c.welcomeAt.Sub(c.goodbyeAt).Microseconds())/1000)
		}
		c.mu.Unlock()
	}
	res.WelcomeSamples = len(welcomeMs)
	res.WelcomeMsP50, res.WelcomeMsP99 = timeline.Percentile(welcomeMs, 50), timeline.Percentile(welcomeMs, 99)
	res.WelcomeMsMax = timeline.Percentile(welcomeMs, 100)
	causesMu.Lock()
	res.Causes = maps.Clone(causes)
	causesMu.Unlock()
	for _, n := range nodes {
		st := n.Status()
		if settled(n, leaving.ID()) {
			res.Rehomed++
		}
		res.Migrations += st.Stats.Migrations
		res.Accelerated += st.Stats.Accelerated
		res.ContinuedAlone += st.Stats.ContinuedAlone
		res.Cancelled += st.Stats.Cancelled
		res.Detaches += st.Stats.Detaches
	}
	return res, nil
}

// tally counts what the nodes delivered of the published ids: every id is
// owed to every node; a node that got an id at least once delivered it,
// each time after the first is a duplicate, an id it never got is lost.
// What a node got that is not in ids (published after the count) is not
// counted.
func (r *Result) tally(ids []string, counts []*counted) {
	r.Published = len(ids)
	r.Owed = len(ids) * len(counts)
	r.Delivered, r.DuplicatesDelivered = 0, 0
	for _, c := range counts {
		c.mu.Lock()
		for _, id := range ids {
			if n := c.seen[id]; n > 0 {
				r.Delivered++
				r.DuplicatesDelivered += n - 1
			}
		}
		c.mu.Unlock()
	}
	r.Lost = r.Owed - r.Delivered
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// waitAll polls until cond holds for every node.
func waitAll(ctx context.Context, nodes []*transport.Node, bound time.Duration, cond func(*transport.Node) bool) error {
	deadline := time.Now().Add(bound)
	for {
		missing := 0
		for _, n := range nodes {
			if !cond(n) {
				missing++
			}
		}
		if missing == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d nodes not there after %v: this process runs both ends of every link, so try fewer -nodes (or a quieter machine)", missing, len(nodes), bound)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// WriteHeader explains a mass migration before it runs; gc says how the
// collector is set.
func WriteHeader(w io.Writer, cfg Config, gc string) {
	fmt.Fprintf(w, "migsim scale -sockets -nodes %d: %d transient nodes attach to substrate \"leaving\" (mesh of 3 substrates on loopback),\n"+
		"a publisher sends %.0f msg/s into the mesh, then \"leaving\" shuts down: goodbye twice (%v apart) to all its children,\n"+
		"naming stay-a and stay-b as alternatives. Every node must rehome make-before-break without losing a message.\n"+
		"Both ends of every link run in this process: %s.\n\n",
		cfg.Nodes, cfg.Nodes, cfg.PublishRate, cfg.GoodbyeGap, gc)
}

// Write prints the result of a mass migration run with cfg.
func Write(w io.Writer, cfg Config, res *Result) {
	rows := [][]string{
		{"nodes", fmt.Sprint(res.Nodes), ""},
		{"attach_s", fmt.Sprintf("%.2f", res.AttachSeconds), "until every node was attached (sequential Attach calls)"},
		{"rehome_s", fmt.Sprintf("%.3f", res.RehomeSeconds), "from the first goodbye until every node was attached elsewhere"},
		{"rehomed", fmt.Sprintf("%d / %d", res.Rehomed, res.Nodes), ""},
		{"published", fmt.Sprint(res.Published), "messages published while the nodes were attached"},
		{"owed", fmt.Sprint(res.Owed), "published × nodes"},
		{"delivered", fmt.Sprint(res.Delivered), "distinct (node, message) deliveries"},
		{"lost", fmt.Sprint(res.Lost), ""},
		{"duplicates_delivered", fmt.Sprint(res.DuplicatesDelivered), ""},
		{"migrations", fmt.Sprint(res.Migrations), "overlap_done before the leaving substrate closed"},
		{"accelerated", fmt.Sprint(res.Accelerated), "old link closed mid-overlap, new one promoted"},
		{"continued_alone", fmt.Sprint(res.ContinuedAlone), "old link closed before the new welcome"},
		{"cancelled", fmt.Sprint(res.Cancelled), ""},
		{"welcome_ms", fmt.Sprintf("p50 %.0f  p99 %.0f  max %.0f", res.WelcomeMsP50, res.WelcomeMsP99, res.WelcomeMsMax),
			fmt.Sprintf("goodbye taken → new welcome, per node; the leaving substrate closes just over %v after its first goodbye", cfg.GoodbyeGap)},
		{"kib_per_node", fmt.Sprint(res.KiBPerNode), "heap + stacks per attached node; this process hosts both ends of each WebSocket"},
		{"goroutines_per_node", fmt.Sprint(res.GoroutinesPerNode), "both ends"},
	}
	for i := range rows {
		rows[i][0] = "  " + rows[i][0]
	}
	table.Write(w, rows, 2)
	if len(res.Causes) > 0 {
		fmt.Fprintln(w, "\nwhy some migrations did not go the happy path (event: reason, count):")
		for _, k := range slices.Sorted(maps.Keys(res.Causes)) {
			fmt.Fprintf(w, "  %5d  %s\n", res.Causes[k], k)
		}
	}
}

// Failed reports whether a node was left behind or a message lost or
// delivered twice.
func (r *Result) Failed() bool {
	return r.Lost != 0 || r.DuplicatesDelivered != 0 || r.Rehomed != r.Nodes
}
