package transport

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport/dedup"
	"github.com/repram/handover/transport/substratetest"
	"github.com/repram/handover/transport/wire"
)

// The chaos soak: seeded random fault schedules against a running node
// under a steady publish rate, with the invariants checked all along.
//
//	HANDOVER_CHAOS_SEED=N       replay the one schedule of seed N
//	HANDOVER_CHAOS_SCHEDULES=K  run K schedules (default 3)
//	HANDOVER_CHAOS_DURATION=D   each schedule's length (default 4s)
//
// Invariants:
//   - state and links agree at every Status sample and every transition
//     (fsm.Links.CheckStep): outside handshaking and overlapping the node
//     holds at most one link, a cancel keeps the old primary, an accelerate
//     promotes the candidate;
//   - no message is delivered twice;
//   - nothing is lost while a healthy link existed: a message published at
//     p must be delivered when some link was welcomed before p and stayed
//     open until p+chaosReach, to a substrate with no fault that loses
//     gossip (kill, shutdown, no-forward, corrupt frames) from p-chaosSlack
//     to p+chaosReach. Mesh delays stay below OverlapGrace, the assumption
//     of the no-gap guarantee;
//   - memory is bounded: the dedup set never exceeds its capacity and the
//     goroutine count stays within a fixed bound.
const (
	chaosReach   = 200 * time.Millisecond // publish → written by the substrate, with slack for -race
	chaosSlack   = 50 * time.Millisecond
	chaosMaxSkew = 40 * time.Millisecond // mesh delays: below fastConfig's OverlapGrace
)

func envOr[T any](t *testing.T, name string, def T, parse func(string) (T, error)) T {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	x, err := parse(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return x
}

func TestChaosSoak(t *testing.T) {
	t.Parallel()
	schedules := envOr(t, "HANDOVER_CHAOS_SCHEDULES", 3, strconv.Atoi)
	dur := envOr(t, "HANDOVER_CHAOS_DURATION", 4*time.Second, time.ParseDuration)
	seed := envOr(t, "HANDOVER_CHAOS_SEED", time.Now().UnixNano(), func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) })
	if os.Getenv("HANDOVER_CHAOS_SEED") != "" {
		schedules = 1
	}
	var total chaosTotals
	sem := make(chan struct{}, 3)
	var wg sync.WaitGroup
	for i := range schedules {
		s := seed + int64(i)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			t.Run(fmt.Sprintf("seed=%d", s), func(t *testing.T) {
				t.Cleanup(func() {
					if t.Failed() {
						t.Logf("replay with HANDOVER_CHAOS_SEED=%d HANDOVER_CHAOS_DURATION=%v", s, dur)
					}
				})
				runChaos(t, s, dur, &total)
			})
		})
	}
	wg.Wait()
	t.Logf("chaos: %d schedules × %v: %d published, %d required, %d delivered, %d faults, %d transitions, %d migrations",
		schedules, dur, total.published.Load(), total.required.Load(), total.delivered.Load(),
		total.faults.Load(), total.transitions.Load(), total.migrations.Load())
}

type chaosTotals struct {
	published, required, delivered, faults, transitions, migrations atomic.Int64
}

// chaos is one schedule being run.
type chaos struct {
	*harness
	rng    *rand.Rand
	next   int                                      // for fresh substrate ids
	impair map[string][][2]time.Time                // per substrate: windows in which it may lose gossip
	pubAt  []time.Time                              // when each of h.published was published; under h.mu
	undo   []func()                                 // faults to clear at their time
	at     []time.Time                              // when each undo is due
	faults map[string]int                           // injected, by kind
	live   func() []*substratetest.Substrate        // the mesh's live substrates
	start2 func(id string) *substratetest.Substrate // starts one with a random delay
}

func runChaos(t *testing.T, seed int64, dur time.Duration, total *chaosTotals) {
	cfg := fastConfig()
	cfg.Dedup = dedup.Config{Capacity: 2000, Window: time.Minute}
	h := newHarness(t, cfg)
	c := &chaos{harness: h, rng: rand.New(rand.NewPCG(uint64(seed), 0x5eed)),
		impair: map[string][][2]time.Time{}, faults: map[string]int{}}
	c.live = h.mesh.Substrates
	c.start2 = func(id string) *substratetest.Substrate {
		return h.start(id, time.Duration(c.rng.Int64N(int64(chaosMaxSkew))))
	}
	for range 4 {
		c.fresh()
	}
	h.attach(c.live()[0])
	stop := c.publishing(3 * time.Millisecond)
	t.Cleanup(stop)

	// Continuous invariants.
	var violations []string
	var vmu sync.Mutex
	violate := func(format string, args ...any) {
		vmu.Lock()
		defer vmu.Unlock()
		if len(violations) < 20 {
			violations = append(violations, fmt.Sprintf(format, args...))
		}
	}
	baseGoroutines := runtime.NumGoroutine()
	quit := make(chan struct{})
	checkerDone := make(chan struct{})
	peakDedup, peakGoroutines := 0, 0
	go func() {
		defer close(checkerDone)
		for i := 0; ; i++ {
			select {
			case <-quit:
				return
			case <-time.After(2 * time.Millisecond):
			}
			st := h.node.Status()
			l := fsm.Links{Primary: present(st.Primary), Candidate: present(st.Candidate)}
			if err := l.CheckStep(fsm.Links{}, fsm.Step{From: st.State, To: st.State}); err != nil {
				violate("status: %v", err)
			}
			if i%25 == 0 {
				var n int
				if err := h.node.call(context.Background(), func() error { n = h.node.seen.Len(); return nil }); err != nil {
					violate("event loop: %v", err)
				}
				peakDedup = max(peakDedup, n)
				if n > cfg.Dedup.Capacity {
					violate("dedup holds %d ids, capacity %d", n, cfg.Dedup.Capacity)
				}
				g := runtime.NumGoroutine()
				peakGoroutines = max(peakGoroutines, g)
				// Process-wide: other tests run alongside, hence the slack;
				// a per-link leak still breaks it in a longer soak.
				if g > baseGoroutines+1500 {
					violate("%d goroutines, %d at the start", g, baseGoroutines)
				}
			}
		}
	}()

	// The schedule.
	end := time.Now().Add(dur)
	for time.Now().Before(end) {
		c.runDue(time.Now())
		c.step()
		time.Sleep(time.Duration(20+c.rng.IntN(80)) * time.Millisecond)
	}
	// Heal: clear every fault, keep the node fed until it is attached.
	c.runDue(time.Now().Add(time.Hour))
	for _, s := range c.live() {
		s.ClearFaults()
	}
	h.eventually("attached after the schedule", func() bool {
		c.observe()
		st := h.node.Status()
		return st.Primary.URL != "" && (st.State == fsm.Attached || st.State == fsm.Cooldown)
	})
	time.Sleep(2 * chaosReach)
	stop()
	close(quit)
	<-checkerDone

	// Transitions against the model, and what had to arrive.
	steps := h.snapshot()
	if st := h.node.Status(); st.Stats.TransitionsDropped != 0 {
		t.Errorf("%d transitions dropped by the subscriber: the checks below miss some", st.Stats.TransitionsDropped)
	}
	c.checkSteps(steps, violate)
	required := c.required(steps, time.Now())
	h.eventually(fmt.Sprintf("%d required messages delivered", len(required)), func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, id := range required {
			if h.delivered[id] == 0 {
				return false
			}
		}
		return true
	})
	h.mu.Lock()
	published, delivered := len(h.published), 0
	for id, n := range h.delivered {
		delivered += n
		if n > 1 {
			violate("message %s delivered %d times", id, n)
		}
	}
	h.mu.Unlock()
	vmu.Lock()
	for _, v := range violations {
		t.Error(v)
	}
	vmu.Unlock()
	if t.Failed() {
		t.Logf("timeline:\n%s", h.timeline())
	}
	nfaults := 0
	for _, n := range c.faults {
		nfaults += n
	}
	st := h.node.Status().Stats
	total.published.Add(int64(published))
	total.required.Add(int64(len(required)))
	total.delivered.Add(int64(delivered))
	total.faults.Add(int64(nfaults))
	total.transitions.Add(int64(len(steps)))
	total.migrations.Add(int64(st.Migrations))
	t.Logf("seed %d: published %d, required %d, delivered %d; faults %v; %d transitions; stats %+v; dedup peak %d/%d; goroutines peak %d (base %d)",
		seed, published, len(required), delivered, c.faults, len(steps), st, peakDedup, cfg.Dedup.Capacity, peakGoroutines, baseGoroutines)
}

// publishing publishes one message every gap, remembering when, until the
// returned stop is called.
func (c *chaos) publishing(gap time.Duration) (stop func()) {
	var quit atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !quit.Load() {
			at := time.Now()
			msg, err := c.mesh.Publish(wire.Message{})
			if err != nil {
				c.t.Errorf("publish: %v", err)
				return
			}
			c.mu.Lock()
			c.published = append(c.published, msg.MessageID)
			c.pubAt = append(c.pubAt, at)
			c.mu.Unlock()
			time.Sleep(gap)
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { quit.Store(true); <-done }) }
}

func present(s Substrate) int {
	if s.URL != "" {
		return 1
	}
	return 0
}

func (c *chaos) fresh() *substratetest.Substrate {
	c.next++
	return c.start2(fmt.Sprintf("s%d", c.next))
}

// later schedules undo at a random time within [lo, hi).
func (c *chaos) later(lo, hi time.Duration, undo func()) time.Time {
	due := time.Now().Add(lo + time.Duration(c.rng.Int64N(int64(hi-lo))))
	c.undo, c.at = append(c.undo, undo), append(c.at, due)
	return due
}

func (c *chaos) runDue(now time.Time) {
	for i := 0; i < len(c.undo); {
		if c.at[i].After(now) {
			i++
			continue
		}
		c.undo[i]()
		c.undo, c.at = slices.Delete(c.undo, i, i+1), slices.Delete(c.at, i, i+1)
	}
}

func (c *chaos) lose(id string, from, to time.Time) {
	c.impair[id] = append(c.impair[id], [2]time.Time{from, to})
}

// observe feeds one cycle: a favourite candidate much faster than the
// primary, so the policy migrates every few cycles.
func (c *chaos) observe() {
	live := c.live()
	if len(live) == 0 {
		return
	}
	others := slices.DeleteFunc(slices.Clone(live), func(s *substratetest.Substrate) bool {
		return s.ID() == c.node.Status().Primary.ID
	})
	fav := live[c.rng.IntN(len(live))]
	if len(others) > 0 && c.rng.IntN(4) > 0 {
		fav = others[c.next%len(others)] // mostly the same one, so streaks form
	}
	obs := Observation{CurrentLatency: 100 * time.Millisecond}
	for _, s := range live {
		lat := time.Duration(150+c.rng.IntN(150)) * time.Millisecond
		if s == fav {
			lat = 5 * time.Millisecond
		}
		obs.Candidates = append(obs.Candidates, Candidate{Substrate: sub(s), Latency: lat})
	}
	if _, err := c.node.Observe(context.Background(), obs); err != nil {
		c.t.Errorf("observe: %v", err)
	}
}

// step injects one random fault, or feeds a policy cycle.
func (c *chaos) step() {
	live := c.live()
	pick := func() *substratetest.Substrate { return live[c.rng.IntN(len(live))] }
	primary := func() *substratetest.Substrate {
		if s := c.mesh.Substrate(c.node.Status().Primary.ID); s != nil && slices.Contains(live, s) && c.rng.IntN(2) == 0 {
			return s
		}
		return pick()
	}
	now := time.Now()
	r := c.rng.IntN(100)
	kind := ""
	switch {
	case r < 50:
		c.observe()
		return
	case r < 57 && len(live) > 2:
		kind = "kill"
		s := primary()
		c.lose(s.ID(), now, now.Add(time.Hour))
		s.Kill()
		c.fresh()
	case r < 63 && len(live) > 2:
		kind = "shutdown"
		s := primary()
		c.lose(s.ID(), now, now.Add(time.Hour))
		s.Shutdown(nil, c.rng.IntN(2) == 0)
		c.fresh()
	case r < 75:
		s := pick()
		switch c.rng.IntN(4) {
		case 0:
			kind = "mute-hello"
			s.SetMuteHello(true)
			c.later(200*time.Millisecond, 800*time.Millisecond, func() { s.SetMuteHello(false) })
		case 1:
			kind = "refuse"
			s.RefuseWithGoodbye(nil)
			c.later(200*time.Millisecond, 800*time.Millisecond, func() {
				f := s.Faults()
				f.Refuse = false
				s.SetFaults(f)
			})
		case 2:
			kind = "foreign-welcome"
			s.SetWelcomeParentID("not-" + s.ID())
			c.later(200*time.Millisecond, 800*time.Millisecond, func() { s.SetWelcomeParentID("") })
		default:
			kind = "slow-welcome"
			s.SetWelcomeDelay(time.Duration(100+c.rng.IntN(1500)) * time.Millisecond)
			c.later(200*time.Millisecond, 800*time.Millisecond, func() { s.SetWelcomeDelay(0) })
		}
	case r < 84:
		s := pick()
		var undo func()
		if c.rng.IntN(2) == 0 {
			kind = "no-forward"
			s.SetNoForward(true)
			undo = func() { s.SetNoForward(false) }
		} else {
			kind = "corrupt"
			s.SetCorrupt(substratetest.CorruptBadSignature)
			undo = func() { s.SetCorrupt(substratetest.CorruptNone) }
		}
		due := c.later(100*time.Millisecond, 400*time.Millisecond, undo)
		c.lose(s.ID(), now, due.Add(chaosReach))
	case r < 92:
		kind = "delay"
		pick().SetDelay(time.Duration(c.rng.Int64N(int64(chaosMaxSkew))))
	default:
		kind = "stop-reading"
		s := pick()
		s.SetNoRead(true)
		c.later(200*time.Millisecond, 600*time.Millisecond, func() { s.SetNoRead(false) })
	}
	if kind != "" {
		c.faults[kind]++
	}
}

// checkSteps replays the transitions on fsm.Links, with substrate ids as
// link ids.
func (c *chaos) checkSteps(steps []Transition, violate func(string, ...any)) {
	ids := map[string]int{}
	id := func(s string) int {
		if s == "" {
			return 0
		}
		if _, ok := ids[s]; !ok {
			ids[s] = len(ids) + 1
		}
		return ids[s]
	}
	var prev fsm.Links
	for _, tr := range steps {
		l := fsm.Links{Primary: id(tr.Primary), Candidate: id(tr.Candidate)}
		if err := l.CheckStep(prev, tr.Step); err != nil {
			violate("transition at %s: %v", tr.At.Format("15:04:05.000"), err)
		}
		prev = l
	}
}

// required lists the messages that had a healthy path (see the package
// comment above TestChaosSoak).
func (c *chaos) required(steps []Transition, end time.Time) []string {
	type span struct {
		id       string
		from, to time.Time
	}
	var spans []span
	var prim, cand string
	var primSince, candWelcomed time.Time
	for _, tr := range steps {
		if tr.Step.Event == fsm.HandshakeOK {
			candWelcomed = tr.At
		}
		for _, a := range tr.Step.Actions {
			switch a {
			case fsm.DialCandidate, fsm.DialAlternative:
				cand, candWelcomed = tr.Candidate, time.Time{}
			case fsm.PromoteCandidate:
				prim, primSince, cand = cand, candWelcomed, ""
			case fsm.DropCandidate:
				if !candWelcomed.IsZero() && cand != "" {
					spans = append(spans, span{cand, candWelcomed, tr.At})
				}
				cand = ""
			case fsm.DropOld, fsm.CloseOld:
				if prim != "" {
					spans = append(spans, span{prim, primSince, tr.At})
				}
				prim = ""
			case fsm.CloseAll:
				prim, cand = "", ""
			}
		}
	}
	if prim != "" {
		spans = append(spans, span{prim, primSince, end})
	}
	if cand != "" && !candWelcomed.IsZero() {
		spans = append(spans, span{cand, candWelcomed, end})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for i, id := range c.published {
		p := c.pubAt[i]
		for _, s := range spans {
			if s.from.IsZero() || s.from.After(p) || s.to.Before(p.Add(chaosReach)) {
				continue
			}
			ok := true
			for _, w := range c.impair[s.id] {
				if w[0].Before(p.Add(chaosReach)) && w[1].After(p.Add(-chaosSlack)) {
					ok = false
				}
			}
			if ok {
				out = append(out, id)
				break
			}
		}
	}
	return out
}
