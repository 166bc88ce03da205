package simnet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport/engine"
)

// The fault matrix in virtual time: every link fault, in every state of the
// declared chart it can happen in, reached along every path of driver
// events. The cells are derived from fsm.Declaration(), not listed: a
// state's paths come from the declared transitions, a fault names the
// events it makes the engine fire, and the expected outcome is the declared
// cell for (state, event), its guards evaluated on what the node knows.
// Each cell runs twice: with a spare substrate the node knows (the
// "spare" world) and with none beyond those on its path ("alone").
//
// The world: a (attached first, 4 ms), b (the policy's target and the
// first alternative, 1 ms), c (the spare, 3 ms), w (hidden, where the
// writes are made, 50/s).

type role uint8

const (
	rolePrimary role = 1 << iota
	roleCandidate
)

// mfault is one link fault.
type mfault struct {
	name string
	on   role // the link it hits
	// welcomed: a candidate fault after the welcome (overlapping); else
	// before it (armed on the substrate about to be dialled).
	welcomed bool
	// slow faults show after seconds: they need a state that holds that
	// long (no old link closing within 500 ms after a goodbye, no overlap
	// ending once the margin passed) unless the fault holds it itself.
	slow, holds bool
	// arm prepares the substrate the last driver dials; inject hits the
	// link once the state is entered.
	arm    func(l *lab, target string)
	inject func(l *lab, target string)
	// events are what the engine fires, in order.
	events func(faultCtx) []fsm.Event
}

// faultCtx is what decides the events a fault makes the engine fire.
type faultCtx struct {
	race    bool // the candidate was dialled by a race: its attempt delay is armed
	pending bool // a candidate awaits its welcome
}

func one(e fsm.Event) func(faultCtx) []fsm.Event {
	return func(faultCtx) []fsm.Event { return []fsm.Event{e} }
}

// leavingPrimary is the events of a primary that goes (goodbye, silence)
// without closing at once: first, then, while a candidate awaits its
// welcome, the attempt delay a refilled queue re-arms, then old_died.
func leavingPrimary(first fsm.Event) func(faultCtx) []fsm.Event {
	return func(c faultCtx) []fsm.Event {
		if c.pending {
			return []fsm.Event{first, fsm.AttemptDelay, fsm.OldDied}
		}
		return []fsm.Event{first, fsm.OldDied}
	}
}

func matrixFaults() []mfault {
	return []mfault{
		{name: "dial refused", on: roleCandidate, arm: func(l *lab, t string) { l.SetRefuse(t, true) }, events: one(fsm.NewFailed)},
		{name: "refused at capacity", on: roleCandidate, arm: func(l *lab, t string) { l.SetFull(t, true) }, events: one(fsm.NewFailed)},
		{name: "bad frame for a welcome", on: roleCandidate, arm: func(l *lab, t string) { l.SetBadFrames(t, true) }, events: one(fsm.NewFailed)},
		{name: "killed mid-handshake", on: roleCandidate, inject: func(l *lab, t string) {
			l.At(l.Now()+1500*time.Microsecond, func() { l.Kill(t) }) // connected, before the welcome
		}, events: one(fsm.NewFailed)},
		{name: "hung before the welcome", on: roleCandidate, arm: func(l *lab, t string) { l.Hang(t) }, slow: true,
			events: func(c faultCtx) []fsm.Event {
				if c.race {
					return []fsm.Event{fsm.AttemptDelay, fsm.HandshakeTimeout}
				}
				return []fsm.Event{fsm.HandshakeTimeout}
			}},
		{name: "new link dies", on: roleCandidate, welcomed: true, inject: func(l *lab, t string) { l.Kill(t) }, events: one(fsm.NewFailed)},
		{name: "new link sends bad frames", on: roleCandidate, welcomed: true, inject: func(l *lab, t string) { l.SetBadFrames(t, true) },
			events: one(fsm.NewFailed)},
		{name: "new substrate stops forwarding", on: roleCandidate, welcomed: true, slow: true, holds: true,
			inject: func(l *lab, t string) { l.SetNoForward(t, true) }, events: one(fsm.OverlapExpired)},
		{name: "old killed", on: rolePrimary, inject: func(l *lab, t string) { l.Kill(t) }, events: one(fsm.OldDied)},
		{name: "old says goodbye", on: rolePrimary, inject: func(l *lab, t string) { l.Shutdown(t) },
			events: leavingPrimary(fsm.Goodbye)},
		{name: "old hung", on: rolePrimary, slow: true, inject: func(l *lab, t string) { l.Hang(t) },
			events: leavingPrimary(fsm.OldSuspected)},
	}
}

// notFaults are the declared events no link fault produces, with why.
var notFaults = map[fsm.Event]string{
	fsm.Attach:          "the embedder or the rejoin loop",
	fsm.CandidateBetter: "the policy",
	fsm.CooldownElapsed: "the policy",
	fsm.Close:           "the embedder",
	fsm.HandshakeOK:     "a healthy welcome",
	fsm.OverlapDone:     "a healthy catch-up",
}

// drivers are the events the matrix walks the chart with, and whether the
// node raises each by itself.
var drivers = map[fsm.Event]bool{fsm.Attach: false, fsm.CandidateBetter: false, fsm.Goodbye: false,
	fsm.HandshakeOK: true, fsm.OverlapDone: true}

// paths lists, per state, every path of driver transitions from the
// initial state that visits no state twice.
func paths(chart fsm.Chart) map[fsm.State][][]fsm.Edge {
	out := map[fsm.State][][]fsm.Edge{}
	var walk func(s fsm.State, path []fsm.Edge)
	walk = func(s fsm.State, path []fsm.Edge) {
		out[s] = append(out[s], path)
		for _, tr := range chart.Transitions {
			if _, ok := drivers[tr.Event]; !ok || tr.From != s || tr.To == s || tr.Guard == fsm.OthersRacing ||
				slices.ContainsFunc(path, func(p fsm.Edge) bool { return p.From == tr.To }) || tr.To == chart.Initial {
				continue
			}
			walk(tr.To, append(slices.Clone(path), tr))
		}
	}
	walk(chart.Initial, nil)
	return out
}

// mcell is one (path, fault, world) cell.
type mcell struct {
	state fsm.State
	path  []fsm.Edge
	fault mfault
	alone bool
}

func (c mcell) name() string {
	var p []string
	for _, tr := range c.path {
		p = append(p, string(tr.Event))
	}
	world := "spare"
	if c.alone {
		world = "alone"
	}
	return fmt.Sprintf("%s(%s)/%s/%s", c.state, strings.Join(p, ","), strings.ReplaceAll(c.fault.name, " ", "_"), world)
}

// moves reports whether the node is moving at the end of the path: it
// needs a link (a first attach, or the old link said goodbye), so a
// refusal's alternatives join the race, until a welcome promotes a link.
func moves(path []fsm.Edge) bool {
	m := false
	for _, tr := range path {
		switch {
		case tr.Event == fsm.Attach, tr.Event == fsm.Goodbye:
			m = true
		case slices.Contains(tr.Actions, fsm.PromoteCandidate):
			m = false
		}
	}
	return m
}

// forced reports whether the path leaves the node in a move it must make
// (the old link said goodbye and is still there), rather than a first
// attach, a policy migration or a settled state.
func forced(path []fsm.Edge) bool {
	leaving := false
	for _, tr := range path {
		switch tr.Event {
		case fsm.Goodbye:
			leaving = true
		case fsm.OverlapDone:
			leaving = false
		}
	}
	return leaving
}

func matrixCells(t *testing.T) []mcell {
	chart := fsm.Declaration()
	var cells []mcell
	for _, s := range chart.States {
		for _, path := range paths(chart)[s] {
			links := fsm.Links{}
			for _, tr := range path {
				links.Apply(tr.Actions)
			}
			welcomed := s == fsm.Overlapping // the only state with a welcomed candidate
			for _, f := range matrixFaults() {
				switch {
				case f.on == rolePrimary && links.Primary == 0,
					f.on == roleCandidate && len(links.Candidates) == 0,
					f.on == roleCandidate && f.welcomed != welcomed,
					f.on == roleCandidate && !f.welcomed && len(path) == 0,
					f.slow && !f.holds && s == fsm.Overlapping,
					forced(path) && (f.slow || f.name == "old says goodbye"):
					continue
				}
				for _, e := range f.events(faultCtx{race: true, pending: true}) {
					if _, ok := chart.Cell(s, e); !ok {
						t.Errorf("(%s, %s) is undecided in the declaration", s, e)
					}
				}
				cells = append(cells, mcell{state: s, path: path, fault: f}, mcell{state: s, path: path, fault: f, alone: true})
			}
		}
	}
	return cells
}

// TestFaultMatrixIsDecided fails when a declared event is neither produced
// by some fault nor listed as not a fault, or when a state holding a link
// has no cell, so a new event or state cannot slip past the matrix.
func TestFaultMatrixIsDecided(t *testing.T) {
	chart := fsm.Declaration()
	produced := map[fsm.Event]bool{}
	for _, f := range matrixFaults() {
		for _, e := range f.events(faultCtx{race: true, pending: true}) {
			produced[e] = true
		}
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
	perState := map[fsm.State]int{}
	for _, c := range matrixCells(t) {
		perState[c.state]++
	}
	for s, ps := range paths(chart) {
		for _, p := range ps {
			var l fsm.Links
			for _, tr := range p {
				l.Apply(tr.Actions)
			}
			if (l.Primary != 0 || len(l.Candidates) > 0) && perState[s] == 0 {
				t.Errorf("state %s holds links but has no fault cell", s)
			}
		}
	}
	for _, s := range chart.States {
		if _, ok := paths(chart)[s]; !ok && s != fsm.Closed {
			t.Errorf("state %s cannot be reached with the matrix's drivers: add a driver or decide its cells", s)
		}
	}
	t.Logf("fault matrix: %v cells per state", perState)
}

// ignoredLog collects the engine's "event ignored" debug lines.
type ignoredLog struct{ lines []map[string]any }

func (g *ignoredLog) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(`"event ignored"`)) {
		var m map[string]any
		if err := json.Unmarshal(p, &m); err == nil {
			g.lines = append(g.lines, m)
		}
	}
	return len(p), nil
}

func (g *ignoredLog) has(from int, s fsm.State, e fsm.Event) bool {
	for _, m := range g.lines[from:] {
		if m["state"] == string(s) && m["event"] == string(e) {
			return true
		}
	}
	return false
}

func TestFaultMatrix(t *testing.T) {
	cells := matrixCells(t)
	for _, c := range cells {
		t.Run(c.name(), func(t *testing.T) { runCell(t, c) })
	}
	t.Logf("%d cells", len(cells))
}

func runCell(t *testing.T, c mcell) {
	peers := []string(nil)
	if c.alone {
		peers = []string{"w"} // receives the writes, names nobody
	}
	l := newLab(t, 1,
		SubstrateConfig{ID: "a", Enclave: "e", RTT: 4 * ms, Delay: 2 * ms, Peers: peers},
		SubstrateConfig{ID: "b", Enclave: "e", RTT: 1 * ms, Delay: 3 * ms, Peers: peers},
		SubstrateConfig{ID: "c", Enclave: "e", RTT: 3 * ms, Delay: 4 * ms, Peers: peers},
		SubstrateConfig{ID: "w", Enclave: "w", RTT: 1 * ms, Hidden: true})
	var logs ignoredLog
	n, err := l.AddNode(NodeConfig{Engine: engine.Config{Enclave: "e", Logger: zerolog.New(&logs).Level(zerolog.DebugLevel)}}) // attached by the walk below
	if err != nil {
		t.Fatal(err)
	}
	const pubUntil = 14 * time.Second // then a few seconds for what is in flight
	l.PublishRate("w", 50, 0, pubUntil)
	eng := l.Node(n)

	// Walk the path: each driver is raised and the run goes on until the
	// node took the declared step. The fault is armed and injected as the
	// last step is taken, before anything else can happen.
	entered := time.Duration(-1)
	var enteredMark, logMark int
	var raceArmed bool
	var psub engine.Substrate
	var cands, known []engine.Substrate
	var target string // the substrate the last driver dials
	lastTr := c.path[len(c.path)-1]
	l.on = func(id NodeID, tr engine.Transition) {
		if id != n || entered >= 0 || len(l.trs[n]) != len(c.path) {
			return
		}
		if tr.Step.From != lastTr.From || tr.Step.Event != lastTr.Event || tr.Step.To != lastTr.To {
			return // the walk check below reports it
		}
		entered, enteredMark, logMark = l.Now(), len(l.trs[n]), len(logs.lines)
		raceArmed = slices.Contains(lastTr.Actions, fsm.DialAlternative)
		_, psub, _ = eng.Primary()
		cands = eng.Candidates()
		known = eng.Known()
		switch {
		case c.fault.on == roleCandidate && !c.fault.welcomed:
			target = cands[len(cands)-1].ID
			if c.fault.arm != nil {
				c.fault.arm(l, target)
			}
		case lastTr.Event == fsm.CandidateBetter || lastTr.Event == fsm.Goodbye:
			l.SetSlowHello(cands[0].ID, 6*time.Second) // hold the handshake while the fault plays out
		case c.state == fsm.Overlapping && c.fault.on == rolePrimary:
			l.SetDelay(cands[0].ID, 8*time.Second) // hold the overlap: the new substrate lags
		}
		if c.fault.inject != nil {
			switch c.fault.on {
			case rolePrimary:
				c.fault.inject(l, psub.ID)
			case roleCandidate:
				c.fault.inject(l, cands[0].ID)
			}
		}
	}
	for i, tr := range c.path {
		if len(l.trs[n]) <= i {
			switch tr.Event {
			case fsm.Attach:
				l.Attach(n, "a")
			case fsm.CandidateBetter:
				for k := 0; k < 10 && len(l.trs[n]) <= i; k++ {
					l.Observe(n, "b")
					if err := l.Run(l.Now() + time.Second/4); err != nil {
						t.Fatal(err)
					}
				}
			case fsm.Goodbye:
				l.Observe(n, "b") // b measured: the first alternative
				l.Shutdown("a")
			}
		}
		for k := 0; k < 2000 && len(l.trs[n]) <= i; k++ {
			if err := l.Run(l.Now() + time.Millisecond/2); err != nil {
				t.Fatal(err)
			}
		}
		if len(l.trs[n]) <= i {
			l.dump()
			t.Fatalf("driver %s: no step taken", tr.Event)
		}
		if got := l.trs[n][i].Step; got.From != tr.From || got.Event != tr.Event || got.To != tr.To {
			l.dump()
			t.Fatalf("walking %s: took %s --%s--> %s", c.name(), got.From, got.Event, got.To)
		}
	}
	if entered < 0 {
		t.Fatal("the state was never entered")
	}

	// The declared outcome: events the cell ignores are logged as ignored,
	// the first one it decides is the next step the node takes.
	if err := l.Run(max(entered+20*time.Second, pubUntil+10*time.Second)); err != nil {
		l.dump()
		t.Fatal(err)
	}
	chart := fsm.Declaration()
	moving := moves(c.path)
	if !c.alone && (c.fault.name == "refused at capacity" || c.fault.name == "old says goodbye") {
		// The goodbye names the substrate's peers: the node learns them.
		known = append(known, l.byID["b"].substrate(), l.byID["c"].substrate())
	}
	var want *fsm.Edge
	var ignored []fsm.Event
	pending := len(cands) > 0 && (c.state == fsm.Joining || c.state == fsm.Handshaking)
	for _, e := range c.fault.events(faultCtx{race: raceArmed, pending: pending}) {
		cell, _ := chart.Cell(c.state, e)
		about := e == fsm.NewFailed || e == fsm.HandshakeTimeout || e == fsm.OverlapExpired
		if e == fsm.Goodbye || e == fsm.OldSuspected || e == fsm.OldDied {
			moving = true // the engine queues every known substrate for the move
		}
		holds := func(g fsm.Guard) bool {
			others := len(cands)
			if about {
				others--
			}
			switch g {
			case fsm.OthersRacing:
				return others > 0
			case fsm.HasAlternative:
				return moving && others < 3 && untried(known, psub, cands)
			}
			return false
		}
		for _, g := range cell.Guarded {
			if holds(g.Guard) {
				want = g
				break
			}
		}
		if want == nil && cell.Transition != nil {
			want = cell.Transition
		}
		if want != nil {
			break
		}
		ignored = append(ignored, e)
	}
	for _, e := range ignored {
		if !logs.has(logMark, c.state, e) {
			l.dump()
			t.Errorf("%s: want %s ignored in %s (declared: %q), not logged", c.name(), e, c.state, mustIgnore(chart, c.state, e))
		}
	}
	if want == nil {
		t.Fatalf("%s: every event of the fault is ignored: the cell proves nothing", c.name())
	}
	if len(l.trs[n]) <= enteredMark {
		l.dump()
		t.Fatalf("%s: no step after the fault; want %s --%s[%s]--> %s", c.name(), want.From, want.Event, want.Guard, want.To)
	}
	got := l.trs[n][enteredMark].Step
	if got.From != want.From || got.Event != want.Event || got.Guard != want.Guard || got.To != want.To {
		l.dump()
		t.Fatalf("%s: took %s --%s[%s]--> %s, declared %s --%s[%s]--> %s", c.name(), got.From, got.Event, got.Guard, got.To,
			want.From, want.Event, want.Guard, want.To)
	}
	r := l.Report()
	if nr := r.Nodes[n]; nr.Duplicates != 0 || nr.Lost != 0 {
		l.dump()
		t.Fatalf("%s: %+v: lost or duplicated", c.name(), nr)
	}
}

// untried reports whether a known substrate is left to dial: neither the
// primary nor a candidate.
func untried(known []engine.Substrate, primary engine.Substrate, cands []engine.Substrate) bool {
	for _, k := range known {
		if k.ID != primary.ID && !slices.ContainsFunc(cands, func(c engine.Substrate) bool { return c.ID == k.ID }) {
			return true
		}
	}
	return false
}

func mustIgnore(chart fsm.Chart, s fsm.State, e fsm.Event) string {
	if c, _ := chart.Cell(s, e); c.Ignore != nil {
		return c.Ignore.Reason
	}
	return "(not an ignore)"
}
