package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/policy"
	"github.com/repram/handover/transport"
	"github.com/repram/handover/transport/dedup"
)

// breakBeforeMake is the baseline: the same policy decides, but a migration
// closes the node (its only link) and only then starts a fresh
// transport.Node attached to the new substrate, as REPRAM does on goodbye
// today. The gap between the two is real: nothing is faked in it. When the
// new substrate fails, the node keeps whatever its rejoin loop found, or
// goes back to the old substrate.
type breakBeforeMake struct {
	cfg transport.Config
	pol *policy.Evaluator
	r   *run

	forced chan string // goodbye seen: the alternative the node picked
	quit   chan struct{}
	wg     sync.WaitGroup

	// Read without mu, so the cycle loop never waits for a switch.
	live atomic.Pointer[transport.Node] // the current node, nil between two
	busy atomic.Bool                    // a policy switch is under way

	mu         sync.Mutex // serializes switches and observations
	node       *transport.Node
	failed     error         // a switch that could not run: ends the run at the next cycle
	fwd        chan struct{} // closed when node's transitions are all recorded
	cur        string        // the substrate the policy believes we are on
	acc        transport.Stats
	migrations int
	cancelled  int
	forcedN    int

	// One dedup window across the successive nodes, as a REPRAM node keeps
	// its seen-set across reattachments.
	seenMu    sync.Mutex
	seen      *dedup.Set
	dupAcross int
}

// passive is the inner nodes' policy: it never decides; the wrapper does.
type passive struct{}

func (passive) Evaluate(policy.Observation) policy.Decision { return policy.Decision{} }
func (passive) Attached(string)                             {}
func (passive) MigrationFailed(string)                      {}
func (passive) Forced()                                     {}

func newBreakBeforeMake(cfg transport.Config, s policy.Strategy, r *run) (*breakBeforeMake, error) {
	pol, err := policy.NewStrategy(s, cfg.Policy)
	if err != nil {
		return nil, err
	}
	cfg.Decider = passive{}
	b := &breakBeforeMake{cfg: cfg, pol: pol, r: r, forced: make(chan string, 1), quit: make(chan struct{}),
		seen: dedup.New(dedup.Config{})}
	deliver := cfg.Handler
	if deliver == nil {
		deliver = func(transport.Gossip) {}
	}
	b.cfg.Handler = func(g transport.Gossip) {
		b.seenMu.Lock()
		dup := b.seen.Seen(g.Message.MessageID, time.Now())
		if dup {
			b.dupAcross++
		}
		b.seenMu.Unlock()
		if !dup {
			deliver(g)
		}
	}
	b.wg.Add(1)
	go b.onGoodbye()
	return b, nil
}

// start makes a fresh node and records its transitions; a goodbye from its
// primary asks onGoodbye for a break.
func (b *breakBeforeMake) start() error {
	n, err := transport.New(b.cfg)
	if err != nil {
		return err
	}
	ch := n.Subscribe(1 << 12)
	fwd := make(chan struct{})
	go func() {
		defer close(fwd)
		for tr := range ch {
			if tr.Step.Event == fsm.Close {
				continue // the wrapper's own break entry says why
			}
			b.r.rec.transition(tr)
			if tr.Step.Event == fsm.Goodbye && tr.Step.Path == fsm.PathForced {
				select {
				case b.forced <- tr.Candidate:
				default:
				}
			}
		}
	}()
	b.node, b.fwd = n, fwd
	b.live.Store(n)
	return nil
}

func (b *breakBeforeMake) attach(ctx context.Context, s transport.Substrate) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.start(); err != nil {
		return err
	}
	b.cur = s.ID
	b.pol.Attached(s.ID)
	return b.node.Attach(ctx, s)
}

// stop closes the current node and folds its counters in.
func (b *breakBeforeMake) stop(ctx context.Context) error {
	if b.node == nil {
		return nil
	}
	b.live.Store(nil)
	err := b.node.Close(ctx)
	if err != nil {
		return err
	}
	<-b.fwd
	st := b.node.Status().Stats
	b.acc.Joins += st.Joins
	b.acc.Detaches += st.Detaches
	b.acc.Rejoins += st.Rejoins
	b.acc.Delivered += st.Delivered
	b.acc.DuplicatesDropped += st.DuplicatesDropped
	b.acc.StaleEventsDropped += st.StaleEventsDropped
	b.acc.FramesRejected += st.FramesRejected
	b.acc.TransitionsDropped += st.TransitionsDropped
	b.node = nil
	return nil
}

// switchTo closes the old link, then attaches to target. If that fails it
// keeps the substrate the node's rejoin loop found meanwhile, if any, or
// goes back to the old substrate the same way.
func (b *breakBeforeMake) switchTo(ctx context.Context, target string, event fsm.Event, why string) error {
	old := b.cur
	to, ok := b.r.byID(target)
	if !ok {
		return fmt.Errorf("break-before-make: unknown substrate %q", target)
	}
	b.r.rec.add(Entry{Kind: "transition", From: string(fsm.Attached), Event: string(event), To: string(fsm.Joining),
		Path: pathBreak, Primary: old, Candidate: target,
		Reason: fmt.Sprintf("break-before-make: close %s first, then dial %s (%s)", old, target, why)})
	if err := b.stop(ctx); err != nil {
		return err
	}
	if err := b.start(); err != nil {
		return err
	}
	if err := b.node.Attach(ctx, to); err != nil {
		return err
	}
	got := b.waitAttached()
	if got == target {
		b.cur = target
		b.migrations++
		b.pol.Attached(target)
		return nil
	}
	b.cancelled++
	b.pol.MigrationFailed(target)
	if got != "" {
		// The node's rejoin loop found another substrate when the target
		// refused: keep that link rather than break it again.
		b.cur = got
		b.pol.Attached(got)
		return nil
	}
	back, ok := b.r.byID(old)
	b.r.rec.add(Entry{Kind: "transition", From: string(fsm.Joining), Event: string(fsm.HandshakeTimeout), To: string(fsm.Joining),
		Path: pathBreak + "_back", Primary: "", Candidate: old,
		Reason: fmt.Sprintf("break-before-make: %s did not take us: back to %s", target, old)})
	if err := b.stop(ctx); err != nil {
		return err
	}
	if err := b.start(); err != nil {
		return err
	}
	if ok && b.r.alive[b.r.sc.index(old)].Load() {
		if err := b.node.Attach(ctx, back); err != nil {
			return err
		}
		b.waitAttached()
	}
	return nil
}

// waitAttached waits, at most a handshake timeout and a cycle, for the node
// to be attached, and returns to which substrate ("" for none).
func (b *breakBeforeMake) waitAttached() string {
	deadline := time.Now().Add(b.cfg.HandshakeTimeout + b.r.sc.Cycle.D())
	for time.Now().Before(deadline) {
		if st := b.node.Status(); st.State == fsm.Attached {
			return st.Primary.ID
		}
		time.Sleep(time.Millisecond)
	}
	return ""
}

// observe evaluates one cycle; a switch it decides runs on its own
// goroutine, as ours runs on the node's loop, so cycles keep their times.
// While it runs, cycles observe nothing: the break is the decision.
func (b *breakBeforeMake) observe(ctx context.Context, obs transport.Observation) error {
	if b.busy.Load() {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.failed; err != nil {
		return err
	}
	if p := b.node.Status().Primary.ID; p != "" && p != b.cur {
		b.cur = p // the node rejoined elsewhere on its own
		b.pol.Attached(p)
	}
	po := policy.Observation{Enclave: b.cfg.Identity.Enclave}
	if b.node.Status().Primary.ID != "" {
		po.Current = policy.Substrate{ID: b.cur, Enclave: b.r.rec.enclaves[b.cur], Latency: obs.CurrentLatency}
	}
	for _, c := range obs.Candidates {
		po.Candidates = append(po.Candidates, policy.Substrate{ID: c.ID, Address: c.URL, Enclave: c.Enclave, Latency: c.Latency})
	}
	d := b.pol.Evaluate(po)
	if d.Event != fsm.CandidateBetter {
		return nil
	}
	from := b.cur
	b.busy.Store(true)
	b.wg.Go(func() {
		defer b.busy.Store(false)
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.cur != from || b.node == nil {
			return // a goodbye moved the node meanwhile, or it is closing
		}
		if err := b.switchTo(ctx, d.Candidate.ID, fsm.CandidateBetter, "policy: "+d.Reason); err != nil {
			b.failed = err
		}
	})
	return nil
}

// onGoodbye breaks on the primary's goodbye: close, then dial the
// alternative the goodbye named.
func (b *breakBeforeMake) onGoodbye() {
	defer b.wg.Done()
	for {
		select {
		case <-b.quit:
			return
		case alt := <-b.forced:
			b.mu.Lock()
			if alt != "" && b.node != nil {
				b.forcedN++
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := b.switchTo(ctx, alt, fsm.Goodbye, b.cur+" said goodbye"); err != nil {
					b.r.rec.add(Entry{Kind: "fault", Reason: "break-before-make: " + err.Error()})
				}
				cancel()
			}
			b.mu.Unlock()
		}
	}
}

func (b *breakBeforeMake) primary() string {
	if n := b.live.Load(); n != nil {
		return n.Status().Primary.ID
	}
	return ""
}

func (b *breakBeforeMake) stats() transport.Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.acc
	st.Migrations, st.Cancelled, st.Forced = b.migrations, b.cancelled, b.forcedN
	b.seenMu.Lock()
	st.DuplicatesDropped += b.dupAcross
	b.seenMu.Unlock()
	return st
}

func (b *breakBeforeMake) close(ctx context.Context) error {
	close(b.quit)
	b.wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stop(ctx)
}
