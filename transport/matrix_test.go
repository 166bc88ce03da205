package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport/substratetest"
	"github.com/repram/handover/transport/wire"
)

// The fault matrix: every fault a link can suffer, in every state of the
// declared chart where it can happen, over loopback. The cells are derived
// from fsm.Declaration(), not listed: each fault names the event it makes
// the node fire and the links it needs; a state's links come from running
// the declared actions along the path that reaches it (fsm.Links), and the
// expected outcome is the declared cell for (state, event). A new state or
// event fails TestFaultMatrixIsDecided until someone decides its cells.

// roles is a set of links: the primary and/or the candidate.
type roles uint8

const (
	rolePrimary roles = 1 << iota
	roleCandidate
)

// matrixFault is one fault and the event it makes the link side produce.
type matrixFault struct {
	name  string
	event fsm.Event
	needs roles // links that must exist for the fault to happen
	// breaks are the links the fault ruins; the others stay healthy.
	breaks roles
	// welcomed, for a fault that needs the candidate: whether the
	// candidate must already have its welcome (false: awaiting it).
	welcomed bool
	// quiet faults show only after missed heartbeats: they get cells only
	// in states the harness can hold indefinitely (no timed exit).
	quiet bool
	// arm prepares the substrate about to be dialed into the state and
	// returns the one to dial instead (faults before the welcome).
	arm func(r *cellRun, target *substratetest.Substrate) *substratetest.Substrate
	// inject applies the fault once the state is reached.
	inject func(r *cellRun)
}

// notFaults are the declared events no link fault produces, with why.
var notFaults = map[fsm.Event]string{
	fsm.Attach:          "the embedder or the rejoin loop",
	fsm.CandidateBetter: "the policy",
	fsm.CooldownElapsed: "the policy",
	fsm.Close:           "the embedder",
	fsm.HandshakeOK:     "a healthy welcome",
}

// drivers are the events the harness uses to walk the chart into a state:
// how it raises each, and whether the node raises it on its own (then
// holding a state means delaying it).
var drivers = map[fsm.Event]struct {
	spontaneous bool
	dials       bool
}{
	fsm.Attach:          {dials: true},
	fsm.CandidateBetter: {dials: true},
	fsm.HandshakeOK:     {spontaneous: true},
	fsm.OverlapDone:     {spontaneous: true},
	fsm.Close:           {},
}

const (
	holdWelcome = 500 * time.Millisecond // keeps a candidate awaiting its welcome
	holdOverlap = 800 * time.Millisecond // OverlapMin while holding an overlap
)

func matrixFaults() []matrixFault {
	kill := func(s *substratetest.Substrate) { s.Kill() }
	return []matrixFault{
		{name: "new dial refused", event: fsm.NewFailed, needs: roleCandidate, breaks: roleCandidate,
			arm: func(r *cellRun, _ *substratetest.Substrate) *substratetest.Substrate { return r.dead }},
		{name: "handshake never answered", event: fsm.HandshakeTimeout, needs: roleCandidate, breaks: roleCandidate,
			arm: func(_ *cellRun, s *substratetest.Substrate) *substratetest.Substrate { s.SetMuteHello(true); return s }},
		{name: "goodbye instead of welcome", event: fsm.NewFailed, needs: roleCandidate, breaks: roleCandidate,
			arm: func(_ *cellRun, s *substratetest.Substrate) *substratetest.Substrate {
				s.RefuseWithGoodbye(nil)
				return s
			}},
		{name: "websocket error mid-handshake", event: fsm.NewFailed, needs: roleCandidate, breaks: roleCandidate,
			arm: func(r *cellRun, s *substratetest.Substrate) *substratetest.Substrate {
				s.SetOnHello(func(wire.Hello) { r.bg.Go(s.Kill) })
				return s
			}},
		{name: "new link dies during overlap", event: fsm.NewFailed, needs: roleCandidate, breaks: roleCandidate, welcomed: true,
			inject: func(r *cellRun) { kill(r.cand) }},
		{name: "new substrate stops forwarding", event: fsm.OverlapExpired, needs: roleCandidate, breaks: roleCandidate, welcomed: true,
			inject: func(r *cellRun) { r.cand.SetNoForward(true) }},
		{name: "new substrate slow", event: fsm.OverlapDone, needs: roleCandidate, welcomed: true,
			inject: func(r *cellRun) { r.cand.SetDelay(300 * time.Millisecond) }},
		{name: "new substrate stalled", event: fsm.OverlapExpired, needs: roleCandidate, breaks: roleCandidate, welcomed: true,
			inject: func(r *cellRun) { r.cand.SetDelay(3 * time.Second) }},
		{name: "old link dies", event: fsm.OldDied, needs: rolePrimary, breaks: rolePrimary,
			inject: func(r *cellRun) { kill(r.prim) }},
		{name: "old says goodbye", event: fsm.Goodbye, needs: rolePrimary, breaks: rolePrimary,
			inject: func(r *cellRun) {
				r.alt = r.spare
				r.prim.Shutdown([]wire.Parent{r.spare.Parent()}, true)
			}},
		{name: "old says goodbye, alternatives dead", event: fsm.Goodbye, needs: rolePrimary, breaks: rolePrimary,
			inject: func(r *cellRun) {
				r.alt = r.dead
				r.prim.Shutdown([]wire.Parent{r.dead.Parent(), r.dead2.Parent()}, true)
			}},
		{name: "old stops reading", event: fsm.OldDied, needs: rolePrimary, breaks: rolePrimary, quiet: true,
			inject: func(r *cellRun) { r.prim.SetNoRead(true) }},
		{name: "both die, old first", event: fsm.OldDied, needs: rolePrimary | roleCandidate, breaks: rolePrimary | roleCandidate, welcomed: true,
			inject: func(r *cellRun) {
				from := r.node.Status().State
				kill(r.prim)
				r.waitTook(r.mark, from, fsm.OldDied, "")
				kill(r.cand)
			}},
		{name: "both die, old first, before welcome", event: fsm.OldDied, needs: rolePrimary | roleCandidate, breaks: rolePrimary | roleCandidate,
			inject: func(r *cellRun) {
				from := r.node.Status().State
				kill(r.prim)
				r.waitTook(r.mark, from, fsm.OldDied, "")
				kill(r.cand)
			}},
	}
}

// matrixCell is one (state, fault) pair and what the declaration says.
type matrixCell struct {
	state   fsm.State
	fault   matrixFault
	decided fsm.Cell
	path    []fsm.Transition // from the initial state, driver events only
	hold    map[fsm.Event]bool
	covered bool // a welcomed link the fault does not break exists: nothing may be lost
}

func (c matrixCell) name() string {
	return string(c.state) + "/" + strings.ReplaceAll(c.fault.name, " ", "_")
}

// reach finds, for each state, the shortest path of driver events from the
// initial state and the links the declared actions leave along it.
func reach(chart fsm.Chart) (paths map[fsm.State][]fsm.Transition, links map[fsm.State]fsm.Links) {
	paths = map[fsm.State][]fsm.Transition{chart.Initial: nil}
	links = map[fsm.State]fsm.Links{chart.Initial: {}}
	queue := []fsm.State{chart.Initial}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, tr := range chart.Transitions {
			if _, ok := drivers[tr.Event]; !ok || tr.From != s {
				continue
			}
			if _, seen := paths[tr.To]; seen {
				continue
			}
			l := links[s]
			l.Apply(tr.Actions)
			paths[tr.To] = append(slices.Clone(paths[s]), tr)
			links[tr.To] = l
			queue = append(queue, tr.To)
		}
	}
	return paths, links
}

// matrixCells derives the cells from the declaration.
func matrixCells(t *testing.T) []matrixCell {
	chart := fsm.Declaration()
	paths, links := reach(chart)
	var cells []matrixCell
	for _, s := range chart.States {
		path, ok := paths[s]
		if !ok {
			t.Errorf("state %s cannot be reached with the harness's drivers: add a driver or decide its cells", s)
			continue
		}
		var have roles
		if links[s].Primary != 0 {
			have |= rolePrimary
		}
		if links[s].Candidate != 0 {
			have |= roleCandidate
		}
		pending, hold := false, map[fsm.Event]bool{}
		for e, d := range drivers {
			if c, _ := chart.Cell(s, e); c.Transition != nil && d.spontaneous {
				hold[e] = true
			}
		}
		if c, _ := chart.Cell(s, fsm.HandshakeOK); c.Transition != nil && have&roleCandidate != 0 {
			pending = true
		}
		for _, f := range matrixFaults() {
			if have&f.needs != f.needs || (f.needs&roleCandidate != 0 && f.welcomed == pending) ||
				(f.quiet && len(hold) > 0) {
				continue
			}
			decided, ok := chart.Cell(s, f.event)
			if !ok {
				t.Errorf("(%s, %s) is undecided in the declaration", s, f.event)
				continue
			}
			healthy := have &^ f.breaks
			cells = append(cells, matrixCell{state: s, fault: f, decided: decided, path: path, hold: hold,
				covered: healthy&rolePrimary != 0 || (healthy&roleCandidate != 0 && !pending)})
		}
	}
	return cells
}

// TestFaultMatrixIsDecided fails when a declared event is neither produced
// by some fault nor listed as not a fault, or a fault names an undeclared
// event, so a new event cannot slip past the matrix.
func TestFaultMatrixIsDecided(t *testing.T) {
	chart := fsm.Declaration()
	produced := map[fsm.Event]bool{}
	for _, f := range matrixFaults() {
		if !slices.Contains(chart.Events, f.event) {
			t.Errorf("fault %q produces undeclared event %s", f.name, f.event)
		}
		produced[f.event] = true
	}
	for _, e := range chart.Events {
		_, not := notFaults[e]
		switch {
		case produced[e] && not:
			t.Errorf("event %s is both produced by a fault and listed as not a fault", e)
		case !produced[e] && !not:
			t.Errorf("event %s: no fault produces it and it is not listed in notFaults: decide its matrix cells", e)
		}
	}
	for e := range drivers {
		if !slices.Contains(chart.Events, e) {
			t.Errorf("driver for undeclared event %s", e)
		}
	}
	cells := matrixCells(t)
	perState := map[fsm.State]int{}
	for _, c := range cells {
		perState[c.state]++
	}
	for _, s := range chart.States {
		// A state holding a link must have cells.
		if _, links := reach(chart); (links[s].Primary != 0 || links[s].Candidate != 0) && perState[s] == 0 {
			t.Errorf("state %s holds links but no fault cell", s)
		}
	}
	if len(cells) == 0 {
		t.Fatal("no cells")
	}
	t.Logf("fault matrix: %d cells %v", len(cells), perState)
}

// TestFaultMatrix runs every cell over loopback. Cells run concurrently
// (their own meshes and ports), a few at a time.
func TestFaultMatrix(t *testing.T) {
	t.Parallel()
	cells := matrixCells(t)
	t.Logf("fault matrix: %d cells", len(cells))
	sem := make(chan struct{}, 6)
	var wg sync.WaitGroup
	for _, c := range cells {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			t.Run(c.name(), func(t *testing.T) { runCell(t, c) })
		})
	}
	wg.Wait()
}

// cellRun is one cell being run.
type cellRun struct {
	*harness
	log                      *logSink
	a, b, spare, dead, dead2 *substratetest.Substrate
	prim, cand               *substratetest.Substrate // the links the node holds, as the model says
	alt                      *substratetest.Substrate // where a goodbye sends the node first
	mark                     int                      // steps seen before the fault
	bg                       sync.WaitGroup
}

func runCell(t *testing.T, c matrixCell) {
	cfg := fastConfig()
	if c.hold[fsm.OverlapDone] {
		cfg.OverlapMin, cfg.OverlapMax = holdOverlap, 2*holdOverlap
	}
	sink := newLogSink(&cfg)
	r := &cellRun{harness: newHarness(t, cfg), log: sink}
	t.Cleanup(r.bg.Wait)
	r.a = r.start("sub-a", 0)
	r.b = r.start("sub-b", 30*time.Millisecond)
	r.spare = r.start("sub-c", 0)
	r.dead, r.dead2 = r.start("sub-dead", 0), r.start("sub-dead2", 0)
	r.dead.Kill()
	r.dead2.Kill()
	broken := map[*substratetest.Substrate]bool{r.dead: true, r.dead2: true}
	// The spare is known before anything else, so a rejoin tries it first.
	if _, err := r.node.Observe(context.Background(), Observation{Candidates: []Candidate{{Substrate: sub(r.spare)}}}); err != nil {
		t.Fatal(err)
	}
	stop := r.publishing(3 * time.Millisecond)
	t.Cleanup(stop)

	// Walk the declared path into the state.
	dials := []*substratetest.Substrate{r.a, r.b}
	var logMark, required int
	for i, tr := range c.path {
		last := i == len(c.path)-1
		if last {
			// A fault armed before the dial may fire as the state is entered.
			r.mark, logMark, required = len(r.snapshot()), sink.len(), r.publishedLen()
		}
		var target *substratetest.Substrate
		if drivers[tr.Event].dials {
			target, dials = dials[0], dials[1:]
			if last && c.fault.arm != nil {
				target = c.fault.arm(r, target)
				if c.fault.breaks&roleCandidate != 0 {
					broken[target] = true
				}
			}
			if last && c.hold[fsm.HandshakeOK] {
				target.SetWelcomeDelay(holdWelcome)
			}
		}
		switch tr.Event {
		case fsm.Attach:
			if err := r.node.Attach(context.Background(), sub(target)); err != nil {
				t.Fatal(err)
			}
		case fsm.CandidateBetter:
			r.settle()
			r.tryMigrate(target)
		case fsm.HandshakeOK, fsm.OverlapDone:
			// Raised by the node itself.
		default:
			t.Fatalf("no driver for %s", tr.Event)
		}
		r.waitTook(0, tr.From, tr.Event, tr.To)
		r.prim, r.cand = applyLinks(tr.Actions, r.prim, r.cand, target, nil)
	}
	if c.fault.inject != nil {
		c.fault.inject(r)
		if c.fault.breaks&rolePrimary != 0 {
			broken[r.prim] = true
		}
		if c.fault.breaks&roleCandidate != 0 {
			broken[r.cand] = true
		}
	}

	// The declared decision for (state, event) is what happened.
	if tr := c.decided.Transition; tr != nil {
		r.waitTook(r.mark, c.state, c.fault.event, tr.To)
	} else {
		r.eventually(fmt.Sprintf("%s ignored in %s (logged)", c.fault.event, c.state), func() bool {
			return sink.has(logMark, "event ignored", map[string]string{"state": string(c.state), "event": string(c.fault.event)})
		})
	}

	// Where the node ends up: the model's links after the declared step,
	// the first healthy one; none healthy means any live substrate.
	var want *substratetest.Substrate
	p, q := r.prim, r.cand
	if tr := c.decided.Transition; tr != nil {
		p, q = applyLinks(tr.Actions, p, q, nil, r.alt)
	}
	switch {
	case p != nil && !broken[p]:
		want = p
	case q != nil && !broken[q]:
		want = q
	}
	var settled string
	r.eventually("settled on a healthy substrate", func() bool {
		st := r.node.Status()
		if st.Candidate.URL != "" || (st.State != fsm.Attached && st.State != fsm.Cooldown) {
			return false
		}
		s := r.mesh.Substrate(st.Primary.ID)
		settled = st.Primary.ID
		return s != nil && !broken[s] && (want == nil || s == want)
	})
	if !c.covered {
		required = r.publishedLen()
	}
	time.Sleep(100 * time.Millisecond)
	stop()
	r.exactlyOnceFrom(required)
	t.Logf("%s: %s; settled on %s; covered=%v", c.name(), describe(c.decided), settled, c.covered)
}

func describe(c fsm.Cell) string {
	if c.Transition != nil {
		return fmt.Sprintf("%s --%s--> %s [%s]", c.Transition.From, c.Transition.Event, c.Transition.To, c.Transition.Path)
	}
	return fmt.Sprintf("%s ignored in %s: %s", c.Ignore.Event, c.Ignore.State, c.Ignore.Reason)
}

// applyLinks carries out declared actions on substrates standing for the
// links, like fsm.Links does on ids.
func applyLinks(actions []fsm.Action, p, q, dial, alt *substratetest.Substrate) (primary, candidate *substratetest.Substrate) {
	for _, a := range actions {
		switch a {
		case fsm.DialCandidate:
			q = dial
		case fsm.DialAlternative:
			q = alt
		case fsm.PromoteCandidate:
			p, q = q, nil
		case fsm.DropCandidate:
			q = nil
		case fsm.DropOld, fsm.CloseOld:
			p = nil
		case fsm.CloseAll:
			p, q = nil, nil
		}
	}
	return p, q
}

func (h *harness) snapshot() []Transition {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.steps)
}

func (h *harness) publishedLen() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.published)
}

// waitTook waits for a transition from → to on e among the steps from
// index since on; an empty to matches any target.
func (h *harness) waitTook(since int, from fsm.State, e fsm.Event, to fsm.State) {
	h.t.Helper()
	h.eventually(fmt.Sprintf("%s --%s--> %s", from, e, to), func() bool {
		steps := h.snapshot()
		for _, s := range steps[min(since, len(steps)):] {
			if s.Step.From == from && s.Step.Event == e && (to == "" || s.Step.To == to) {
				return true
			}
		}
		return false
	})
}

// logSink captures a node's zerolog output for assertions on logged reasons.
type logSink struct {
	mu    sync.Mutex
	lines [][]byte
	part  bytes.Buffer
}

// newLogSink makes cfg log everything, at debug level, into the sink.
func newLogSink(cfg *Config) *logSink {
	s := &logSink{}
	l := zerolog.New(s).Level(zerolog.DebugLevel)
	cfg.Logger = &l
	return s
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.part.Write(p)
	for {
		line, err := s.part.ReadBytes('\n')
		if err != nil {
			s.part.Write(line) // an incomplete line waits for the rest
			return len(p), nil
		}
		s.lines = append(s.lines, line)
	}
}

func (s *logSink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lines)
}

// has reports whether a line from index since on has message msg and every
// field of want (a field's value must contain the wanted text).
func (s *logSink) has(since int, msg string, want map[string]string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, line := range s.lines[min(since, len(s.lines)):] {
		var e map[string]any
		if json.Unmarshal(line, &e) != nil || e["message"] != msg {
			continue
		}
		ok := true
		for k, v := range want {
			if got, _ := e[k].(string); !strings.Contains(got, v) {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(bytes.Join(s.lines, nil))
}

// Back-pressure, the fault that is not an event. A primary that stops
// reading: the node's Send is bounded by its ctx and never blocks the event
// loop; a write cut short by the ctx leaves a partial WebSocket frame, so
// the library closes the link, the node sees old_died and reattaches
// elsewhere. (Heartbeats alone would find the dead reader too, after
// MissedHeartbeats; they are slowed here so the Send is what breaks it.)
func TestSendToPrimaryThatStopsReading(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.HeartbeatInterval = time.Minute
	h, a, _, _ := setup(t, cfg)
	a.SetNoRead(true)

	done := make(chan struct{})
	loopErr := make(chan error, 1)
	go func() {
		defer close(loopErr)
		for {
			select {
			case <-done:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := h.node.Observe(ctx, Observation{})
			cancel()
			if err != nil {
				loopErr <- fmt.Errorf("the event loop did not answer while a Send was blocked: %w", err)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	big := wire.Message{Type: "PUT", From: "t1", Timestamp: time.Now().Unix(), MessageID: "big", Data: make([]byte, 256<<10)}
	var err error
	sends := 0
	for ; sends < 1000 && err == nil; sends++ {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err = h.node.Send(ctx, wire.TypePut, big)
		cancel()
	}
	close(done)
	if e := <-loopErr; e != nil {
		t.Fatal(e)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("after %d sends to a primary that does not read: %v, want context.DeadlineExceeded", sends, err)
	}
	t.Logf("send %d blocked until its ctx expired: %v", sends, err)
	// Under load the ctx may also expire before the write starts (the
	// link is then intact); more bounded sends break it mid-frame.
	for i := 0; i < 50 && !h.took(fsm.OldDied, fsm.Detached); i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_ = h.node.Send(ctx, wire.TypePut, big)
		cancel()
	}
	h.eventually("the broken primary dropped", func() bool { return h.took(fsm.OldDied, fsm.Detached) })
	h.waitAttached("sub-b")
	from := h.publishedLen()
	time.Sleep(100 * time.Millisecond)
	h.exactlyOnceFrom(from)
}

// A handler that stalls holds at most DeliveryBuffer messages in the node;
// the links stop reading, the substrate keeps the rest, the event loop keeps
// answering, and nothing is lost once the handler resumes.
func TestSlowHandlerBackPressure(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.DeliveryBuffer = 16
	cfg.MissedHeartbeats = 2
	mesh := substratetest.NewMesh(substratetest.MeshConfig{Secret: cfg.Secret})
	t.Cleanup(mesh.Close)
	a, err := mesh.Start(substratetest.Config{ID: "sub-a"})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var mu sync.Mutex
	got := map[string]int{}
	cfg.Handler = func(g Gossip) {
		<-release
		mu.Lock()
		got[g.Message.MessageID]++
		mu.Unlock()
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, node: n}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if err := n.Attach(context.Background(), sub(a)); err != nil {
		t.Fatal(err)
	}
	h.waitAttached("sub-a")
	const total = 300
	var ids []string
	for range total {
		m, err := mesh.Publish(wire.Message{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.MessageID)
	}
	h.eventually("the delivery buffer full", func() bool { return n.Status().Stats.Delivered == cfg.DeliveryBuffer })
	// The loop answers while the handler is stuck, and accepts no more.
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := n.Observe(ctx, Observation{})
		cancel()
		if err != nil {
			t.Fatalf("event loop blocked by a stuck handler: %v", err)
		}
		if d := n.Status().Stats.Delivered; d > cfg.DeliveryBuffer {
			t.Fatalf("%d messages accepted while the handler was stuck, buffer %d", d, cfg.DeliveryBuffer)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Stay stuck past MissedHeartbeats intervals: the parked reader cannot
	// read pongs, and that must not be taken for a dead link.
	time.Sleep(time.Duration(2*cfg.MissedHeartbeats+2) * cfg.HeartbeatInterval)
	close(release)
	h.eventually("every message handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == total
	})
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("message %s handled %d times", id, got[id])
		}
	}
	if st := n.Status(); st.Stats.Detaches != 0 || st.Primary.ID != "sub-a" {
		t.Errorf("back-pressure cost the link: %+v on %q", st.Stats, st.Primary.ID)
	}
}
