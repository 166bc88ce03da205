package run

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/policy"
	"github.com/repram/handover/tools/migsim/internal/scenario"
	"github.com/repram/handover/tools/migsim/internal/timeline"
	"github.com/repram/handover/transport"
	"github.com/repram/handover/transport/substratetest"
	"github.com/repram/handover/transport/wire"
)

// recorder collects transitions, publications and deliveries.
type recorder struct {
	start    time.Time
	cycle    atomic.Int64
	enclaves map[string]string
	node     string // the node's enclave
	onEntry  func(timeline.Entry)

	mu        sync.Mutex
	entries   []timeline.Entry
	published map[string]time.Time
	delivered map[string]int
	joinedAt  time.Time
	primary   string // after the last transition
}

func newRecorder(sc *scenario.Scenario) *recorder {
	r := &recorder{start: time.Now(), enclaves: map[string]string{}, node: sc.Node.Enclave,
		published: map[string]time.Time{}, delivered: map[string]int{}}
	for _, s := range sc.Substrates {
		r.enclaves[s.ID] = s.Enclave
	}
	return r
}

func (r *recorder) add(e timeline.Entry) {
	if e.At == 0 {
		e.At = time.Since(r.start)
	}
	e.Cycle = int(r.cycle.Load())
	r.mu.Lock()
	r.entries = append(r.entries, e)
	r.mu.Unlock()
	if r.onEntry != nil {
		r.onEntry(e)
	}
}

func (r *recorder) transition(tr transport.Transition) {
	r.mu.Lock()
	if r.joinedAt.IsZero() && (r.enclaves[tr.Primary] == r.node ||
		(slices.Contains(tr.Step.Actions, fsm.StartOverlap) && r.enclaves[tr.Candidate] == r.node)) {
		// From here on a substrate of the node's enclave forwards to it:
		// every later publication is owed to the node.
		r.joinedAt = tr.At
	}
	prev := r.primary
	r.primary = tr.Primary
	r.mu.Unlock()
	e := timeline.FromTransition(tr, r.start)
	e.PrevPrimary = prev
	r.add(e)
}

// transitions counts the transitions recorded so far.
func (r *recorder) transitions() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.entries {
		if e.Kind == timeline.KindTransition {
			n++
		}
	}
	return n
}

func (r *recorder) deliver(g transport.Gossip) {
	r.mu.Lock()
	r.delivered[g.Message.MessageID]++
	r.mu.Unlock()
}

// missing counts messages owed to the node and not delivered yet.
func (r *recorder) missing() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for id, at := range r.published {
		if r.owed(at) && r.delivered[id] == 0 {
			n++
		}
	}
	return n
}

func (r *recorder) owed(at time.Time) bool { return timeline.Owed(r.joinedAt, at) }

// socketRun is one scenario run over sockets in progress.
type socketRun struct {
	sc    *scenario.Scenario
	opt   Options
	rec   *recorder
	mesh  *substratetest.Mesh
	subs  []*substratetest.Server
	alive []atomic.Bool
	node  *transport.Node
	trs   chan struct{} // closed when every transition is recorded

	faultsMu sync.Mutex
	armed    []scenario.Fault
	faultWG  sync.WaitGroup
}

// Sockets runs the scenario once with one strategy and policy over real
// loopback WebSockets: the scenario's substrates as substratetest servers,
// a publisher in their mesh, one transport.Node.
func Sockets(ctx context.Context, sc *scenario.Scenario, opt Options) (*Result, error) {
	opt, err := opt.WithDefaults()
	if err != nil {
		return nil, err
	}
	r := &socketRun{sc: sc, opt: opt, rec: newRecorder(sc), alive: make([]atomic.Bool, len(sc.Substrates)),
		mesh: substratetest.NewMesh(substratetest.MeshConfig{Secret: []byte(sc.Secret), GoodbyeGap: sc.Transport.GoodbyeGap.D()})}
	defer r.mesh.Close()
	r.rec.onEntry = r.trigger
	for i, s := range sc.Substrates {
		sub, err := r.mesh.Start(substratetest.Config{ID: s.ID, Enclave: s.Enclave, Delay: s.Delay.D(), Heartbeat: sc.Transport.Heartbeat.D()})
		if err != nil {
			return nil, fmt.Errorf("start substrate %s: %w", s.ID, err)
		}
		r.subs = append(r.subs, sub)
		r.alive[i].Store(true)
	}
	cfg := sc.TransportConfig(sc.Node.ID)
	cfg.Logger = opt.Logger
	cfg.Handler = r.rec.deliver
	cfg.BreakBeforeMake = opt.Strategy == BreakBeforeMake
	if cfg.Decider, err = policy.NewStrategy(opt.Policy, cfg.Policy); err != nil {
		return nil, err
	}
	if r.node, err = transport.New(cfg); err != nil {
		return nil, err
	}
	r.trs = make(chan struct{})
	go func(ch <-chan transport.Transition) {
		defer close(r.trs)
		for tr := range ch {
			r.rec.transition(tr)
		}
	}(r.node.Subscribe(1 << 14))
	res, err := r.loop(ctx)
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if cerr := r.node.Close(cctx); err == nil && cerr != nil {
		err = fmt.Errorf("close the node: %w", cerr)
	} else if cerr == nil {
		<-r.trs
	}
	r.faultWG.Wait()
	if err != nil {
		return nil, err
	}
	r.rec.mu.Lock()
	res.Entries = append([]timeline.Entry(nil), r.rec.entries...)
	r.rec.mu.Unlock()
	res.Summary = r.rec.summarize(res, r.node.Status().Stats)
	return res, nil
}

func (r *socketRun) substrate(i int) transport.Substrate {
	return transport.Substrate{ID: r.subs[i].ID(), URL: r.subs[i].URL(), Enclave: r.subs[i].Enclave()}
}

func (r *socketRun) byID(id string) (transport.Substrate, bool) {
	i := r.sc.Index(id)
	if i < 0 {
		return transport.Substrate{}, false
	}
	return r.substrate(i), true
}

// loop attaches the node, publishes, and drives one observation per cycle.
func (r *socketRun) loop(ctx context.Context) (*Result, error) {
	sc := r.sc
	res := &Result{Scenario: sc, Options: r.opt, Alive: make([][]bool, len(sc.Substrates))}
	for i := range res.Alive {
		res.Alive[i] = make([]bool, sc.Cycles+1)
	}
	start, _ := r.byID(sc.Start)
	if err := r.node.Attach(ctx, start); err != nil {
		return nil, err
	}
	stopPub := r.publish()
	cycle := sc.Cycle.D()
	begin := time.Now()
	// Cycles past the last one (SettleCycles) observe the last cycle's
	// latencies, until the node has settled. Attached means no migration
	// under way: the engine holds no candidate then (its soak test checks
	// the links fit the state after every step).
	settled := func() bool {
		return r.node.Status().State == fsm.Attached && r.rec.transitions() >= r.opt.SettleTransitions
	}
	for c := 1; c <= sc.Cycles || (c <= sc.Cycles+r.opt.SettleCycles && !settled()); c++ {
		lc := min(c, sc.Cycles) // the cycle whose latencies and liveness count
		r.rec.cycle.Store(int64(lc))
		for _, p := range sc.Phases {
			if p.From == c {
				r.rec.add(timeline.Entry{Kind: timeline.KindPhase, Reason: p.Name})
			}
		}
		r.faults(c)
		select {
		case <-ctx.Done():
			stopPub()
			return nil, ctx.Err()
		case <-time.After(time.Until(begin.Add(time.Duration(c) * cycle))):
		}
		obs := transport.Observation{}
		cur := r.node.Status().Primary.ID
		for i := range sc.Substrates {
			res.Alive[i][lc] = r.alive[i].Load()
			lat := sc.Latency(i, lc)
			switch {
			case !res.Alive[i][lc] || lat == 0:
			case sc.Substrates[i].ID == cur:
				obs.CurrentLatency = lat
			default:
				obs.Candidates = append(obs.Candidates, transport.Candidate{Substrate: r.substrate(i), Latency: lat})
			}
		}
		if _, err := r.node.Observe(ctx, obs); err != nil {
			stopPub()
			return nil, fmt.Errorf("cycle %d: observe: %w", c, err)
		}
	}
	stopPub()
	// Drain: what is owed and still in flight gets the longest a migration
	// may take to arrive.
	deadline := time.Now().Add(sc.Transport.OverlapMax.D() + time.Second)
	for r.rec.missing() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	res.Elapsed = time.Since(begin)
	return res, nil
}

// publish publishes in the mesh at the scenario's rate until stopped.
func (r *socketRun) publish() (stop func()) {
	rate := r.sc.PublishRate
	if rate == 0 {
		return func() {}
	}
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(max(time.Millisecond, time.Duration(float64(time.Second)/rate)))
		defer tick.Stop()
		begin := time.Now()
		sent := 0
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			for due := int(rate * time.Since(begin).Seconds()); sent < due; sent++ {
				at := time.Now()
				msg, err := r.mesh.Publish(wire.Message{From: "migsim-publisher", Data: []byte("v")})
				if err != nil {
					return
				}
				r.rec.mu.Lock()
				r.rec.published[msg.MessageID] = at
				r.rec.mu.Unlock()
			}
		}
	}()
	return func() { close(quit); <-done }
}

// faults applies the faults due at cycle c and arms the "leaving" ones.
func (r *socketRun) faults(c int) {
	for _, f := range r.sc.Faults {
		if f.Cycle != c {
			continue
		}
		if f.When == "leaving" {
			r.faultsMu.Lock()
			r.armed = append(r.armed, f)
			r.faultsMu.Unlock()
			continue
		}
		r.apply(f)
	}
}

// trigger fires armed faults when the node starts leaving their substrate:
// its overlap with a new one begins, or break-before-make lets it go.
func (r *socketRun) trigger(e timeline.Entry) {
	leaving := e.Leaving()
	if leaving == "" {
		return
	}
	r.faultsMu.Lock()
	defer r.faultsMu.Unlock()
	for i := 0; i < len(r.armed); i++ {
		if f := r.armed[i]; f.Substrate == leaving {
			r.armed = append(r.armed[:i], r.armed[i+1:]...)
			i--
			r.faultWG.Add(1)
			time.AfterFunc(f.After.D(), func() {
				defer r.faultWG.Done()
				r.apply(f)
			})
		}
	}
}

// apply carries out one fault (validated when the scenario was parsed).
func (r *socketRun) apply(f scenario.Fault) {
	i := r.sc.Index(f.Substrate)
	s := r.subs[i]
	what := scenario.FaultActions[f.Action]
	switch f.Action {
	case "refuse":
		s.UpdateFaults(func(f *substratetest.Faults) { f.Refuse, f.RefuseAlternatives = true, nil })
	case "mute":
		s.UpdateFaults(func(f *substratetest.Faults) { f.MuteHello = true })
	case "welcome_delay":
		d, _ := time.ParseDuration(f.Value)
		s.UpdateFaults(func(f *substratetest.Faults) { f.WelcomeDelay = d })
		what = "delay each welcome by " + f.Value
	case "no_forward":
		s.UpdateFaults(func(f *substratetest.Faults) { f.NoForward = true })
	case "corrupt":
		c, _ := scenario.Corruption(f.Value)
		s.UpdateFaults(func(f *substratetest.Faults) { f.Corrupt = c })
		what = "send " + f.Value + " frames"
	case "heal":
		s.ClearFaults()
	case "delay":
		d, _ := time.ParseDuration(f.Value)
		s.SetDelay(d)
		what = "mesh propagation delay now " + f.Value
	case "kill":
		r.alive[i].Store(false)
		r.rec.add(timeline.Entry{Kind: timeline.KindFault, Primary: f.Substrate, Reason: what})
		s.Kill()
		return
	case "shutdown":
		r.alive[i].Store(false)
		r.rec.add(timeline.Entry{Kind: timeline.KindFault, Primary: f.Substrate, Reason: what})
		r.faultWG.Go(func() { s.Shutdown(nil, true) })
		return
	}
	r.rec.add(timeline.Entry{Kind: timeline.KindFault, Primary: f.Substrate, Reason: what})
}
