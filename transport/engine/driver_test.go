package engine

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/policy"
	"github.com/repram/handover/transport/wire"
)

// t0 is the virtual epoch of every scripted run.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// sub is a test substrate: id s<n>... with a URL made from n, the form a
// goodbye's alternatives and a welcome's topology are turned into.
func sub(id string, n int) Substrate {
	return Substrate{ID: id, URL: fmt.Sprintf("ws://10.0.0.%d:8080/v1/ws", n)}
}

// parent is sub as a goodbye names it.
func parent(id string, n int) wire.Parent {
	return wire.Parent{ID: id, Address: fmt.Sprintf("10.0.0.%d", n), HTTPPort: 8080}
}

var (
	subA = sub("a", 1)
	subB = sub("b", 2)
	subC = sub("c", 3)
	subD = sub("d", 4)
)

func welcome(parentID string) wire.Welcome {
	return wire.Welcome{YourPosition: wire.Position{Depth: 1, ParentID: parentID}}
}

func goodbye(reason string, alts ...wire.Parent) wire.Goodbye {
	return wire.Goodbye{Reason: reason, AlternativeParents: alts}
}

// script is a policy that returns scripted decisions and records what the
// engine told it.
type script struct {
	next     []policy.Decision
	obs      []policy.Snapshot
	attached []string
	failed   []string
	forced   int
}

func (p *script) Evaluate(o policy.Snapshot) policy.Decision {
	p.obs = append(p.obs, o)
	if len(p.next) == 0 {
		return policy.Decision{}
	}
	d := p.next[0]
	p.next = p.next[1:]
	return d
}
func (p *script) Attached(id string)        { p.attached = append(p.attached, id) }
func (p *script) MigrationFailed(id string) { p.failed = append(p.failed, id) }
func (p *script) Forced()                   { p.forced++ }

func better(id string) policy.Decision {
	return policy.Decision{Event: fsm.CandidateBetter, Candidate: policy.Measurement{ID: id}, Reason: "scripted"}
}

// driver steps one engine at explicit virtual times and renders effects as
// strings.
type driver struct {
	t   *testing.T
	e   *Engine
	pol *script
	now time.Time
}

// quiet is a configuration whose heartbeats stay out of the way of a
// scripted run: the first ping of a link is still sent at once.
func quiet(c Config) Config {
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = time.Hour
	}
	if c.SuspectMin == 0 {
		c.SuspectMin = time.Hour
	}
	if c.SuspectMax == 0 {
		c.SuspectMax = time.Hour
	}
	return c
}

func newDriver(t *testing.T, cfg Config) *driver {
	t.Helper()
	pol := &script{}
	if cfg.Policy == nil {
		cfg.Policy = pol
	}
	if cfg.NodeID == "" {
		cfg.NodeID = "me"
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &driver{t: t, e: e, pol: pol, now: t0}
}

// at moves the clock to t0+d (never backwards).
func (d *driver) at(dt time.Duration) *driver {
	d.t.Helper()
	if t := t0.Add(dt); t.Before(d.now) {
		d.t.Fatalf("at(%v): the clock is already at %v", dt, d.now.Sub(t0))
	} else {
		d.now = t
	}
	return d
}

// step feeds in at the current time and returns the effects as strings.
func (d *driver) step(in Input) []string {
	d.t.Helper()
	effs, err := d.e.Step(d.now, in)
	if err != nil {
		d.t.Fatalf("Step(%T) at %v: %v", in, d.now.Sub(t0), err)
	}
	return strs(effs)
}

// until steps Tick at every deadline up to t0+dt, then at t0+dt, and
// returns every effect meanwhile. It stops after 1000 steps.
func (d *driver) until(dt time.Duration) []string {
	d.t.Helper()
	end := t0.Add(dt)
	var out []string
	for range 1000 {
		at, ok := d.e.NextDeadline()
		if !ok || at.After(end) {
			break
		}
		if at.After(d.now) {
			d.now = at
		}
		out = append(out, d.step(Tick{})...)
	}
	if end.After(d.now) {
		d.now = end
	}
	return append(out, d.step(Tick{})...)
}

// next steps Tick at the next deadline and returns when it was and the effects.
func (d *driver) next() (time.Duration, []string) {
	d.t.Helper()
	at, ok := d.e.NextDeadline()
	if !ok {
		d.t.Fatalf("next: no deadline at %v", d.now.Sub(t0))
	}
	if at.After(d.now) {
		d.now = at
	}
	return d.now.Sub(t0), d.step(Tick{})
}

func strs(effs []Effect) []string {
	out := make([]string, len(effs))
	for i, f := range effs {
		out[i] = f.String()
	}
	return out
}

// want fails unless got equals want.
func want(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Errorf("%s:\n got  %s\n want %s", what, fmtList(got), fmtList(want))
	}
}

func fmtList(l []string) string {
	if len(l) == 0 {
		return "(nothing)"
	}
	return strings.Join(l, " | ")
}

// transitions keeps only the transitions of effs.
func transitions(effs []string) []string {
	var out []string
	for _, s := range effs {
		if strings.Contains(s, "--") {
			out = append(out, s)
		}
	}
	return out
}

// without drops the pings of effs.
func without(effs []string, prefix string) []string {
	var out []string
	for _, s := range effs {
		if !strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}

// attached brings the engine to attached on s over link 1.
func (d *driver) attached(s Substrate) {
	d.t.Helper()
	want(d.t, "attach", d.step(Attach{Substrate: s}), "dial 1 "+s.ID, "hello 1", "detached --attach--> joining")
	want(d.t, "welcome", d.step(Welcomed{Link: 1, Welcome: welcome(s.ID)}),
		"joining --handshake_ok--> attached", "ping 1")
	d.step(PingDone{Link: 1, RTT: 10 * time.Millisecond})
}

// gossip is a gossip frame with id, stamped at the driver's time.
func (d *driver) gossip(link LinkID, id string) GossipReceived {
	return GossipReceived{Link: link, Type: wire.TypePut,
		Message: wire.Message{Type: "PUT", From: "pub", Timestamp: d.now.Unix(), MessageID: id}}
}

// ack is the ACK of this node's write id from substrate from, as REPRAM
// relays it: routed to the writer, with the write's id.
func (d *driver) ack(link LinkID, id, from string) GossipReceived {
	return GossipReceived{Link: link, Type: wire.TypeAck,
		Message: wire.Message{Type: "ACK", From: from, To: "me", Timestamp: d.now.Unix(), MessageID: id}}
}

// raw feeds in at the current time and returns the effects themselves.
func (d *driver) raw(in Input) []Effect {
	d.t.Helper()
	effs, err := d.e.Step(d.now, in)
	if err != nil {
		d.t.Fatalf("Step(%T) at %v: %v", in, d.now.Sub(t0), err)
	}
	return slices.Clone(effs)
}

// observe ends a cycle whose policy decides dec, with cs measured.
func (d *driver) observe(dec policy.Decision, cs ...Candidate) []string {
	d.t.Helper()
	d.pol.next = append(d.pol.next, dec)
	return d.step(Observe{Candidates: cs})
}

// migrating brings the engine to handshaking from a to b (links 1 and 2)
// at the current time, on the policy's decision.
func (d *driver) migrating(a, b Substrate) {
	d.t.Helper()
	d.attached(a)
	want(d.t, "candidate_better", d.observe(better(b.ID), Candidate{Substrate: b, Latency: 5 * time.Millisecond}),
		"dial 2 "+b.ID, "hello 2", "attached --candidate_better--> handshaking", `decided "candidate_better"`)
}

// overlapping brings the engine to overlapping from a to b, the welcome at
// the current time and the new link's first pong answered at once.
func (d *driver) overlapping(a, b Substrate) {
	d.t.Helper()
	d.migrating(a, b)
	want(d.t, "welcome", d.step(Welcomed{Link: 2, Welcome: welcome(b.ID)}),
		"handshaking --handshake_ok--> overlapping", "ping 2")
	want(d.t, "pong", d.step(PingDone{Link: 2, RTT: time.Millisecond}))
}

// cooldown brings the engine to cooldown on b (link 2) after a migration
// from a; the clock moves by three margins (OverlapGrace before any skew),
// the longest a switch takes with a stream on the old link.
func (d *driver) cooldown(a, b Substrate) {
	d.t.Helper()
	d.overlapping(a, b)
	got := d.until(d.now.Sub(t0) + 3*d.e.cfg.OverlapGrace)
	want(d.t, "overlap_done", transitions(got), "overlapping --overlap_done--> cooldown")
}

// firstTransition steps deadline after deadline until a transition is
// emitted or limit passes; it returns when and the effects of that step.
func (d *driver) firstTransition(limit time.Duration) (time.Duration, []string) {
	d.t.Helper()
	for range 10_000 {
		at, ok := d.e.NextDeadline()
		if !ok || at.After(t0.Add(limit)) {
			return -1, nil
		}
		if at.After(d.now) {
			d.now = at
		}
		if effs := d.step(Tick{}); len(transitions(effs)) > 0 {
			return d.now.Sub(t0), effs
		}
	}
	d.t.Fatal("firstTransition: more than 10000 deadlines")
	return -1, nil
}

// known returns the engine's record of s.
func (d *driver) known(s Substrate) *known {
	d.t.Helper()
	k := d.e.reg.find(s)
	if k == nil {
		d.t.Fatalf("%s is not known", s.ID)
	}
	return k
}

// backedOff fails unless s failed n times in a row and is backed off for
// base·2^(n-1) (capped by ceiling) to 1.5 times that from now.
func (d *driver) backedOff(s Substrate, n int) {
	d.t.Helper()
	k := d.known(s)
	if k.failures != n {
		d.t.Errorf("%s: %d failures, want %d", s.ID, k.failures, n)
	}
	if n == 0 {
		if !k.until.IsZero() {
			d.t.Errorf("%s: backed off until %v, want not backed off", s.ID, k.until.Sub(t0))
		}
		return
	}
	base := d.e.cfg.FailureBackoff << (n - 1)
	base = min(base, d.e.cfg.FailureBackoffMax)
	if got := k.until.Sub(d.now); got < base || got > base+base/2 {
		d.t.Errorf("%s: backed off for %v, want within [%v, %v]", s.ID, got, base, base+base/2)
	}
}

// migratingTo starts a policy migration from the attached primary to b.
func (d *driver) migratingTo(b Substrate) {
	d.t.Helper()
	want(d.t, "candidate_better", transitions(d.observe(better(b.ID), Candidate{Substrate: b, Latency: 5 * time.Millisecond})),
		"attached --candidate_better--> handshaking")
}
