package repramtest_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport"
	"github.com/repram/handover/transport/repramtest"
	"github.com/repram/handover/transport/repramtest/ledger"
)

// rate is the writes a second every scenario makes: modest, so that three
// REPRAM processes, the node and the race detector fit on two busy cores.
const rate = 50

// scenario is one fault against real REPRAM substrates. Every scenario
// asserts lost <= maxLost and no duplicates on honest accounting (see
// package ledger), time without a link <= maxNoLinkMs and, for a fault
// that forces a move, attached elsewhere within maxRecover, all with the
// node's default settings.
type scenario struct {
	name        string
	replication int // default 3: a full mesh of three substrates
	maxChildren int
	start       string // the substrate the node attaches to first; default ra
	spread      bool   // writes ignore the mesh (ledger.Config.Spread)
	skip        string
	maxLost     int
	maxNoLinkMs float64
	maxRecover  time.Duration // fault → attached elsewhere; 0: not checked
	// fault runs once the node is attached to ra and writes flow; it
	// returns when the fault has played out (bounded).
	fault func(t *testing.T, e *env)
	// check asserts what the scenario is about, beyond lost and duplicates.
	check func(t *testing.T, e *env, rep ledger.Report)
}

// env is a scenario's cluster and node.
type env struct {
	*run
	faultAt   time.Time
	recovered time.Duration // fault → attached to another substrate; -1 if never
}

// row is one line of the summary table.
type row struct {
	name string
	rep  ledger.Report
	rec  time.Duration
	st   transport.Stats
}

var (
	summaryMu sync.Mutex
	summary   []row
)

func TestInterop(t *testing.T) {
	repramtest.Dir(t)
	t.Cleanup(func() {
		summaryMu.Lock()
		defer summaryMu.Unlock()
		var b strings.Builder
		fmt.Fprintf(&b, "\n| scenario | published | owed | delivered | lost | not reached | edge | duplicates | no link ms | recovered ms | achieved /s |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range summary {
			rec := "—"
			if r.rec > 0 {
				rec = fmt.Sprintf("%.0f", float64(r.rec.Microseconds())/1000)
			}
			fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d | %.0f | %s | %.0f |\n", r.name, r.rep.Published, r.rep.Owed,
				r.rep.Delivered, r.rep.Lost, r.rep.NotReached, r.rep.Edge, r.rep.Duplicates, r.rep.NoLinkMs, rec, r.rep.AchievedRate)
		}
		t.Log(b.String())
	})
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			if sc.skip != "" {
				t.Skip(sc.skip)
			}
			runScenario(t, sc)
		})
	}
}

func runScenario(t *testing.T, sc scenario) {
	if sc.replication == 0 {
		sc.replication = 3
	}
	c := repramtest.Start(t, 3, repramtest.Options{Replication: sc.replication, MaxChildren: sc.maxChildren})
	if sc.replication >= 3 {
		if err := c.Announce(); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitMesh(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{run: newRun(t, c, "handover-interop", rate, sc.spread), recovered: -1}
	if sc.start == "" {
		sc.start = "ra"
	}
	e.attach(c.Node(sc.start))
	e.led.Start(context.Background())
	time.Sleep(time.Second) // writes flowing before the fault
	sc.fault(t, e)
	time.Sleep(time.Second) // and after it
	rep := e.finish()
	st := e.node.Status().Stats
	if !e.faultAt.IsZero() {
		for _, tr := range e.transitions() {
			if tr.At.After(e.faultAt) && tr.Primary != "" && tr.Primary != "ra" {
				e.recovered = tr.At.Sub(e.faultAt)
				break
			}
		}
	}
	t.Logf("%s\nrecovered %v after the fault; stats %+v", rep, e.recovered, st)
	summaryMu.Lock()
	summary = append(summary, row{sc.name, rep, e.recovered, st})
	summaryMu.Unlock()
	if rep.Published == 0 {
		t.Errorf("no write was made: the ledger found no substrate to write on")
	}
	if rep.Lost > sc.maxLost {
		t.Errorf("lost %d owed writes (bound %d): %v", rep.Lost, sc.maxLost, rep.LostKeys)
	}
	if rep.Duplicates != 0 {
		t.Errorf("%d duplicates handed to the handler", rep.Duplicates)
	}
	if rep.NoLinkMs > sc.maxNoLinkMs {
		t.Errorf("%.0f ms without a link (bound %.0f ms)", rep.NoLinkMs, sc.maxNoLinkMs)
	}
	if sc.maxRecover > 0 && (e.recovered < 0 || e.recovered > sc.maxRecover) {
		t.Errorf("attached elsewhere %v after the fault (bound %v; -1: never)", e.recovered, sc.maxRecover)
	}
	if sc.check != nil {
		sc.check(t, e, rep)
	}
}

// attachedElsewhere waits (bounded) for the node to settle on a substrate
// other than ra.
func (e *env) attachedElsewhere(d time.Duration) bool {
	return e.waitFor(d, func(st transport.Status) bool { return settled(st) && st.Primary.ID != "ra" })
}

// overlapping drives a migration to target until the node overlaps (both
// links up), bounded.
func (e *env) overlapping(target string) bool {
	for i := 0; i < 50; i++ {
		e.cycle(target)
		if e.waitFor(200*time.Millisecond, func(st transport.Status) bool { return st.State == fsm.Overlapping }) {
			return true
		}
	}
	return false
}

// startMigration feeds cycles in which target is clearly better until a
// migration towards it starts (bounded).
func (e *env) startMigration(target string) bool {
	for i := 0; i < 20; i++ {
		e.cycle(target)
		if e.waitFor(100*time.Millisecond, func(st transport.Status) bool {
			return (len(st.Candidates) > 0 && st.Candidates[0].ID == target) || st.Stats.Cancelled > 0
		}) {
			return true
		}
	}
	return false
}

// shutdown records what the substrate holds, then shuts it down
// gracefully (SIGTERM: goodbye twice, then close).
func (e *env) shutdown(t *testing.T, s *repramtest.Substrate) {
	t.Helper()
	if err := e.led.Snapshot(context.Background(), s.ID); err != nil {
		t.Logf("%v: its keys are read again at the end", err)
	}
	e.faultAt = time.Now()
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
}

// snapshotKill records what the substrate holds, then kills it.
func (e *env) snapshotKill(t *testing.T, s *repramtest.Substrate) {
	t.Helper()
	if err := e.led.Snapshot(context.Background(), s.ID); err != nil {
		t.Logf("%v: its keys count as unread", err)
	}
	e.faultAt = time.Now()
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
}

func scenarios() []scenario {
	return []scenario{
		{
			name: "scheduled_migrations", maxNoLinkMs: 0,
			fault: func(t *testing.T, e *env) {
				for _, to := range []string{"rb", "rc", "ra"} {
					e.migrate(to)
					time.Sleep(300 * time.Millisecond)
				}
			},
			check: func(t *testing.T, e *env, rep ledger.Report) {
				// A migration whose new link does not catch up within
				// OverlapMax (15 s) is cancelled and retried: on a loaded
				// machine REPRAM's sequential fan-out can take longer than
				// the fixed OverlapGrace (1 s) between two substrates (issue
				// 11's adaptive overlap). Logged, not failed.
				st := e.node.Status().Stats
				if st.Migrations != 3 || rep.Owed == 0 {
					t.Errorf("migrations %d, owed %d: want 3 make-before-break migrations and writes owed", st.Migrations, rep.Owed)
				}
				t.Logf("migrations %d, cancelled %d", st.Migrations, st.Cancelled)
			},
		},
		{
			// REPRAM: goodbye (reason shutdown) twice ~500 ms apart, then
			// 1001. The alternative welcomes long before the close: no
			// time without a link.
			name: "graceful_shutdown", maxNoLinkMs: 0, maxRecover: 2 * time.Second,
			fault: func(t *testing.T, e *env) {
				ra := e.c.Node("ra")
				e.shutdown(t, ra)
				if !e.attachedElsewhere(10 * time.Second) {
					t.Fatalf("not attached elsewhere 10s after ra's goodbye: %+v", e.node.Status())
				}
				// How long REPRAM takes to exit after its goodbyes (open HTTP
				// keep-alives can hold it) is not the node's business: the
				// cleanup kills it.
				if err := ra.Wait(10 * time.Second); err != nil {
					t.Logf("%v (killed at cleanup)", err)
				}
			},
			check: func(t *testing.T, e *env, _ ledger.Report) {
				if st := e.node.Status().Stats; st.Forced == 0 || st.Detaches != 0 {
					t.Errorf("forced %d, detaches %d: want a forced make-before-break migration and no detach", st.Forced, st.Detaches)
				}
			},
		},
		{
			// The node races the other substrates at once (reattach),
			// never the dead one first. What is written while no link
			// is up cannot be had.
			name: "primary_killed", maxNoLinkMs: 500, maxRecover: 500 * time.Millisecond, maxLost: rate / 2,
			fault: func(t *testing.T, e *env) {
				e.snapshotKill(t, e.c.Node("ra"))
				if !e.attachedElsewhere(10 * time.Second) {
					t.Fatalf("not attached elsewhere 10s after ra was killed: %+v", e.node.Status())
				}
			},
		},
		{
			name: "old_primary_killed_mid_overlap", maxNoLinkMs: 0,
			fault: func(t *testing.T, e *env) {
				e.avoid("rb")
				if !e.overlapping("rb") {
					t.Fatalf("no overlap towards rb: %+v", e.node.Status())
				}
				e.snapshotKill(t, e.c.Node("ra"))
				if !e.attachedElsewhere(10 * time.Second) {
					t.Fatalf("not on rb 10s after ra was killed mid-overlap: %+v", e.node.Status())
				}
			},
			check: func(t *testing.T, e *env, _ ledger.Report) {
				if st := e.node.Status(); st.Primary.ID != "rb" || st.Stats.Accelerated != 1 {
					t.Errorf("primary %s, accelerated %d: want the new link promoted at once", st.Primary.ID, st.Stats.Accelerated)
				}
			},
		},
		{
			// The candidate hangs: its handshake times out (10 s default),
			// the old link is kept throughout.
			name: "stopped_candidate", maxNoLinkMs: 0,
			fault: func(t *testing.T, e *env) {
				rb := e.c.Node("rb")
				if err := rb.Stop(); err != nil {
					t.Fatal(err)
				}
				e.faultAt = time.Now()
				if !e.startMigration("rb") {
					t.Fatalf("no migration towards rb started: %+v", e.node.Status())
				}
				if !e.waitFor(15*time.Second, func(st transport.Status) bool { return st.Stats.Cancelled > 0 }) {
					t.Errorf("the migration to a stopped rb was not cancelled within 15s: %+v", e.node.Status())
				}
				if err := rb.Cont(); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, e *env, _ ledger.Report) {
				if st := e.node.Status(); st.Primary.ID != "ra" || st.Stats.Detaches != 0 {
					t.Errorf("primary %s, detaches %d: want ra kept throughout", st.Primary.ID, st.Stats.Detaches)
				}
			},
		},
		{
			// The race dials the next alternative 250 ms (RFC 8305's
			// attempt delay) after the stopped one, while the leaving
			// primary still delivers for ~500 ms: no time without a link.
			name: "goodbye_first_alternative_stopped", maxNoLinkMs: 0, maxRecover: 2 * time.Second,
			fault: func(t *testing.T, e *env) {
				ra := e.c.Node("ra")
				peers, err := e.c.Topology(ra)
				if err != nil || len(peers) == 0 {
					t.Fatalf("ra's topology %v, %v: want its peers, the alternatives its goodbye names", peers, err)
				}
				if err := e.c.Node(peers[0]).Stop(); err != nil {
					t.Fatal(err)
				}
				e.shutdown(t, ra)
				if !e.attachedElsewhere(10 * time.Second) {
					t.Errorf("not attached elsewhere 10s after ra's goodbye (first alternative %s stopped): %+v", peers[0], e.node.Status())
				}
				if err := e.c.Node(peers[0]).Cont(); err != nil { // so that its keys can be read
					t.Error(err)
				}
			},
		},
		{
			// Replication 2: the mesh is partial (rb, seeded by ra, never
			// learns rc). The writes are spread over every substrate but
			// the primary, as a naive user would; those made on rb never
			// reach the node on rc and are reported as not reached, not lost.
			name: "partial_mesh", replication: 2, start: "rc", spread: true, maxNoLinkMs: 0,
			fault: func(t *testing.T, e *env) {
				time.Sleep(3 * time.Second)
			},
			check: func(t *testing.T, e *env, rep ledger.Report) {
				if rep.Owed == 0 || rep.NotReached == 0 {
					t.Errorf("owed %d, not reached %d: want writes reaching rc through the mesh and writes the partial mesh kept from it",
						rep.Owed, rep.NotReached)
				}
				t.Logf("mesh: %s", rep.MeshString())
			},
		},
		{
			// rb takes one child; another node holds it, so rb refuses ours
			// with goodbye "at capacity": the migration is cancelled, ra kept.
			name: "refused_at_capacity", maxChildren: 1, maxNoLinkMs: 0,
			fault: func(t *testing.T, e *env) {
				other, err := transport.New(transport.Config{Identity: transport.Identity{NodeID: "other-child", Enclave: "default", Address: "127.0.0.1"},
					Secret: transport.Secret("handover-interop")})
				if err != nil {
					t.Fatal(err)
				}
				defer func() {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					_ = other.Close(ctx)
				}()
				if err := other.Attach(context.Background(), e.c.Node("rb").Transport()); err != nil {
					t.Fatal(err)
				}
				deadline := time.Now().Add(10 * time.Second)
				for other.Status().State != fsm.Attached && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
				if other.Status().State != fsm.Attached {
					t.Fatalf("the other child did not attach to rb: %+v", other.Status())
				}
				e.faultAt = time.Now()
				if !e.startMigration("rb") {
					t.Fatalf("no migration towards rb started: %+v", e.node.Status())
				}
				if !e.waitFor(10*time.Second, func(st transport.Status) bool { return st.Stats.Cancelled > 0 }) {
					t.Errorf("rb's refusal did not cancel the migration within 10s: %+v", e.node.Status())
				}
			},
			check: func(t *testing.T, e *env, _ ledger.Report) {
				if st := e.node.Status(); st.Primary.ID != "ra" || st.Stats.Migrations != 0 {
					t.Errorf("primary %s, migrations %d: want the refusal to keep ra", st.Primary.ID, st.Stats.Migrations)
				}
				if !strings.Contains(e.timeline(), "at capacity") {
					t.Errorf("no transition names rb's refusal \"at capacity\"")
				}
			},
		},
		{
			// SIGSTOP: the link stays open, nothing comes on it. The node
			// pings on silence, suspects the primary when that ping fails
			// and migrates make-before-break. What reaches the hung
			// substrate meanwhile cannot be had (the protocol has no
			// replay): counted as lost, bounded by the writes of the
			// bound on recovery.
			name: "primary_hung", maxNoLinkMs: 0, maxRecover: 6 * time.Second, maxLost: 6 * rate,
			fault: func(t *testing.T, e *env) {
				ra := e.c.Node("ra")
				e.faultAt = time.Now()
				if err := ra.Stop(); err != nil {
					t.Fatal(err)
				}
				if !e.attachedElsewhere(10 * time.Second) {
					t.Errorf("not attached elsewhere 10s after ra hung: %+v", e.node.Status())
				}
				if err := ra.Cont(); err != nil { // so that its keys can be read
					t.Error(err)
				}
			},
			check: func(t *testing.T, e *env, rep ledger.Report) {
				if st := e.node.Status().Stats; st.Suspected != 1 {
					t.Errorf("suspected %d: want one migration on suspicion", st.Suspected)
				}
				t.Logf("lost while ra hung (cannot be had: no replay): %d", rep.Lost)
			},
		},
	}
}

// TestInteropWrongSecret: a node with the wrong cluster secret gets no
// welcome (REPRAM drops badly signed frames silently): the attach fails
// with a handshake timeout, nothing is delivered, and Close does not hang.
func TestInteropWrongSecret(t *testing.T) {
	c := repramtest.Start(t, 1, repramtest.Options{Secret: "the-right-one"})
	r := newRun(t, c, "a-wrong-one", 0, false)
	if err := r.node.Attach(context.Background(), c.Node("ra").Transport()); err != nil {
		t.Fatal(err)
	}
	// Default HandshakeTimeout is 10 s.
	for deadline := time.Now().Add(13 * time.Second); time.Now().Before(deadline) &&
		!strings.Contains(r.timeline(), string(fsm.HandshakeTimeout)); {
		time.Sleep(50 * time.Millisecond)
	}
	st := r.node.Status()
	if st.Primary.ID != "" || st.Stats.Delivered != 0 || st.Stats.Joins != 0 {
		t.Errorf("%+v: want no primary, no join and nothing delivered", st)
	}
	if !strings.Contains(r.timeline(), string(fsm.HandshakeTimeout)) {
		t.Errorf("no handshake_timeout transition:\n%s", r.timeline())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := r.node.Close(ctx); err != nil {
		t.Errorf("close hung: %v", err)
	}
	t.Logf("wrong secret: handshake_timeout as expected; close took %v\n%s", time.Since(start), r.timeline())
}
