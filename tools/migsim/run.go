package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/policy"
	"github.com/repram/handover/transport"
	"github.com/repram/handover/transport/substratetest"
	"github.com/repram/handover/transport/wire"
)

// The migration strategies migsim runs.
const (
	// MakeBeforeBreak is this project: transport.Node migrating with overlap.
	MakeBeforeBreak = "make-before-break"
	// BreakBeforeMake is the baseline: close the old link, then attach to the
	// new substrate (what REPRAM does on goodbye today).
	BreakBeforeMake = "break-before-make"
)

// Options select what a run compares.
type Options struct {
	Strategy string          // MakeBeforeBreak (default) or BreakBeforeMake
	Policy   policy.Strategy // policy.Hysteresis (default) or policy.Naive
	Logger   *zerolog.Logger // the transport's logs; nil is silent
}

func (o Options) withDefaults() (Options, error) {
	if o.Strategy == "" {
		o.Strategy = MakeBeforeBreak
	}
	if o.Policy == "" {
		o.Policy = policy.Hysteresis
	}
	if o.Strategy != MakeBeforeBreak && o.Strategy != BreakBeforeMake {
		return o, fmt.Errorf("strategy %q: want %s or %s", o.Strategy, MakeBeforeBreak, BreakBeforeMake)
	}
	if _, err := policy.ParseStrategy(string(o.Policy)); err != nil {
		return o, err
	}
	return o, nil
}

// Label names the combination for tables.
func (o Options) Label() string {
	if o.Strategy == BreakBeforeMake {
		return o.Strategy + " (" + string(o.Policy) + ")"
	}
	return string(o.Policy) + " " + o.Strategy
}

// EntryKind says what a timeline entry records.
type EntryKind string

// The kinds of timeline entries.
const (
	KindTransition EntryKind = "transition" // the node's machine took a transition
	KindFault      EntryKind = "fault"      // the scenario applied a fault
	KindPhase      EntryKind = "phase"      // a phase of the scenario began
)

// Entry is one line of the timeline. A transition entry carries the step
// as the machine took it; the others only a reason.
type Entry struct {
	At          time.Duration // since the run started
	Cycle       int
	Kind        EntryKind
	Step        fsm.Step
	Primary     string // after the transition
	Candidate   string // after the transition
	PrevPrimary string // before the transition
	Reason      string
}

// has reports whether the entry's transition carries out action a.
func (e Entry) has(a fsm.Action) bool { return slices.Contains(e.Step.Actions, a) }

// letsPrimaryGo reports whether the transition gives up the primary link
// without promoting a successor: the break of break-before-make, or a
// primary that died before the new link was up.
func (e Entry) letsPrimaryGo() bool {
	return (e.has(fsm.CloseOld) || e.has(fsm.DropOld)) && !e.has(fsm.PromoteCandidate)
}

// Result is everything a run measured.
type Result struct {
	Scenario *Scenario
	Options  Options
	Virtual  bool // run in virtual time (RunVirtual), not over sockets
	Entries  []Entry
	Alive    [][]bool // Alive[i][c]: substrate i was up during cycle c
	Elapsed  time.Duration
	Summary  Summary
}

// recorder collects transitions, publications and deliveries.
type recorder struct {
	start    time.Time
	cycle    atomic.Int64
	enclaves map[string]string
	node     string // the node's enclave
	onEntry  func(Entry)

	mu        sync.Mutex
	entries   []Entry
	published map[string]time.Time
	delivered map[string]int
	joinedAt  time.Time
	primary   string // after the last transition
}

func newRecorder(sc *Scenario) *recorder {
	r := &recorder{start: time.Now(), enclaves: map[string]string{}, node: sc.Node.Enclave,
		published: map[string]time.Time{}, delivered: map[string]int{}}
	for _, s := range sc.Substrates {
		r.enclaves[s.ID] = s.Enclave
	}
	return r
}

func (r *recorder) add(e Entry) {
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
	e := transitionEntry(tr, r.start)
	e.PrevPrimary = prev
	r.add(e)
}

// transitionEntry is tr as a timeline entry, timed from start.
func transitionEntry(tr transport.Transition, start time.Time) Entry {
	return Entry{At: tr.At.Sub(start), Kind: KindTransition, Step: tr.Step, Primary: tr.Primary,
		Candidate: tr.Candidate, Reason: tr.Reason}
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

func (r *recorder) owed(at time.Time) bool { return !r.joinedAt.IsZero() && !at.Before(r.joinedAt) }

// run is one scenario run in progress.
type run struct {
	sc    *Scenario
	opt   Options
	rec   *recorder
	mesh  *substratetest.Mesh
	subs  []*substratetest.Server
	alive []atomic.Bool
	node  *transport.Node
	trs   chan struct{} // closed when every transition is recorded

	faultsMu sync.Mutex
	armed    []Fault
	faultWG  sync.WaitGroup
}

// Run runs the scenario once with one strategy and policy.
func Run(ctx context.Context, sc *Scenario, opt Options) (*Result, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &run{sc: sc, opt: opt, rec: newRecorder(sc), alive: make([]atomic.Bool, len(sc.Substrates)),
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
	cfg := sc.transportConfig(sc.Node.ID)
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
	res.Entries = append([]Entry(nil), r.rec.entries...)
	r.rec.mu.Unlock()
	res.Summary = summarize(res, r.rec, r.node.Status().Stats)
	return res, nil
}

func (r *run) substrate(i int) transport.Substrate {
	return transport.Substrate{ID: r.subs[i].ID(), URL: r.subs[i].URL(), Enclave: r.subs[i].Enclave()}
}

func (r *run) byID(id string) (transport.Substrate, bool) {
	i := r.sc.index(id)
	if i < 0 {
		return transport.Substrate{}, false
	}
	return r.substrate(i), true
}

// loop attaches the node, publishes, and drives one observation per cycle.
func (r *run) loop(ctx context.Context) (*Result, error) {
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
	for c := 1; c <= sc.Cycles; c++ {
		r.rec.cycle.Store(int64(c))
		for _, p := range sc.Phases {
			if p.From == c {
				r.rec.add(Entry{Kind: KindPhase, Reason: p.Name})
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
			res.Alive[i][c] = r.alive[i].Load()
			lat := sc.Latency(i, c)
			switch {
			case !res.Alive[i][c] || lat == 0:
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
func (r *run) publish() (stop func()) {
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
func (r *run) faults(c int) {
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
func (r *run) trigger(e Entry) {
	leaving := ""
	switch {
	case e.Kind != KindTransition:
	case e.has(fsm.StartOverlap):
		leaving = e.Primary
	case e.letsPrimaryGo() && e.Step.Path == fsm.PathMigrate:
		leaving = e.PrevPrimary
	}
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

func corruption(v string) (substratetest.Corruption, error) {
	for c := substratetest.CorruptMalformed; c <= substratetest.CorruptBinary; c++ {
		if c.String() == v {
			return c, nil
		}
	}
	return 0, fmt.Errorf("corrupt %q: want malformed, unsigned, bad-signature, null or binary", v)
}

// apply carries out one fault (validated when the scenario was parsed).
func (r *run) apply(f Fault) {
	i := r.sc.index(f.Substrate)
	s := r.subs[i]
	what := faultActions[f.Action]
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
		c, _ := corruption(f.Value)
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
		r.rec.add(Entry{Kind: KindFault, Primary: f.Substrate, Reason: what})
		s.Kill()
		return
	case "shutdown":
		r.alive[i].Store(false)
		r.rec.add(Entry{Kind: KindFault, Primary: f.Substrate, Reason: what})
		r.faultWG.Go(func() { s.Shutdown(nil, true) })
		return
	}
	r.rec.add(Entry{Kind: KindFault, Primary: f.Substrate, Reason: what})
}
