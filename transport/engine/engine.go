package engine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/policy"
	"github.com/repram/handover/transport/dedup"
	"github.com/repram/handover/transport/wire"
)

// ErrClosed is returned by [Engine.Step] for a command after [Close].
var ErrClosed = errors.New("engine: closed")

// link is the engine's record of one link it holds: the primary or a
// candidate. A link it dropped is forgotten, so its later reports are stale.
type link struct {
	id      LinkID
	target  Substrate
	welcome bool // a valid welcome arrived
	goodbye bool // it said goodbye (a leaving primary)

	handshakeBy time.Time // a candidate's welcome deadline

	// Heartbeat and round trip (RFC 6298 SRTT/RTTVAR of the pings).
	srtt, rttvar time.Duration
	rttSamples   int
	pingOK       bool      // a ping was answered
	lastHeard    time.Time // last frame or pong
	lastPing     time.Time // when the last ping was sent
	pinging      bool      // a ping is outstanding
	missed       int       // consecutive failed pings
}

// event is a machine event waiting to be fired, with the link it is about.
type event struct {
	e       fsm.Event
	subject *link
	reason  string
}

// Engine is the sans-I/O migration engine of one transient node: it owns the
// state machine of package fsm, the policy, the candidates' race, the
// overlap tracker, the dedup window and the known substrates. It does no
// I/O, reads no clock and starts no goroutine: the shell feeds it inputs with
// the time they happened and carries out the effects it returns.
//
// It is not safe for concurrent use: one goroutine owns it.
type Engine struct {
	cfg  Config
	log  zerolog.Logger
	m    *fsm.Machine
	pol  Decider
	seen *dedup.Set
	rng  *rand.Rand
	reg  registry

	now     time.Time
	nextID  LinkID
	primary *link
	closing *link   // the old primary close_old gave up, until its LinkClosed: its late gossip is still delivered
	cands   []*link // racing candidates, in dial order
	queue   []Substrate
	moving  bool      // the race serves a forced move (goodbye, suspicion, death, rejoin, first attach)
	target  Substrate // the policy's candidate, for dial_candidate
	dialed  *link     // the link dial_* just opened, for send_hello
	raceAt  time.Time // the attempt delay's deadline; zero when no race widens
	ov      *overlap
	ovCheck time.Time // when to evaluate the overlap next
	skew    skewEstimate

	rejoinAt time.Time // zero unless detached and waiting to rejoin
	backoff  time.Duration

	pending []event
	firing  bool
	closed  bool
	stats   Stats
	out     []Effect
}

// New returns an engine, detached. It fails when cfg is invalid.
func New(cfg Config) (*Engine, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	m := fsm.New()
	if cfg.BreakBeforeMake {
		if m, err = fsm.NewFor(fsm.BreakBeforeMake(fsm.Declaration()), fsm.Detached); err != nil {
			return nil, fmt.Errorf("engine: break-before-make chart: %w", err)
		}
	}
	e := &Engine{
		cfg: cfg, log: cfg.Logger, m: m, pol: cfg.Policy, seen: dedup.New(cfg.Dedup),
		rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), reg: registry{self: cfg.NodeID},
		backoff: cfg.RejoinBackoff,
	}
	e.reg.inUse, e.reg.vouched = e.linked, e.welcomedBy
	return e, nil
}

// welcomedBy reports whether the primary or a welcomed candidate is a link
// to the substrate with id.
func (e *Engine) welcomedBy(id string) bool {
	if p := e.primary; p != nil && p.target.ID == id {
		return true
	}
	return slices.ContainsFunc(e.cands, func(c *link) bool { return c.welcome && c.target.ID == id })
}

// linked reports whether the primary or a racing candidate is a link to s.
func (e *Engine) linked(s Substrate) bool {
	if p := e.primary; p != nil && same(p.target, s) {
		return true
	}
	return slices.ContainsFunc(e.cands, func(c *link) bool { return same(c.target, s) })
}

// Step feeds one input that happened at now and returns the effects to
// carry out, in order. The slice is the engine's: it is valid until the
// next Step. Time never goes backwards for the engine: an earlier now is
// taken as the latest seen. Every Step also acts on the deadlines that have
// passed, so stepping with [Tick] at [Engine.NextDeadline] is all the shell
// must do about time. The error is non-nil only for a refused command
// ([ErrNotDetached], [ErrNotDialable], [ErrClosed]); the effects are then
// empty, but an Attach refused because the node is not detached still
// learns its substrate for later moves.
func (e *Engine) Step(now time.Time, in Input) ([]Effect, error) {
	e.out = e.out[:0]
	if now.After(e.now) {
		e.now = now
	}
	if e.closed {
		switch in.(type) {
		case Attach, Observe:
			return nil, ErrClosed
		}
		return nil, nil
	}
	switch in := in.(type) {
	case Attach:
		if err := e.attach(in.Substrate); err != nil {
			return nil, err
		}
	case Observe:
		e.observe(in)
	case Close:
		e.fire(fsm.Close, nil, "embedder close")
	case Welcomed:
		e.welcomed(in)
	case GoodbyeReceived:
		e.goodbye(in)
	case GossipReceived:
		e.gossip(&in)
	case *GossipReceived:
		e.gossip(in)
	case FrameRejected:
		e.rejected(in)
	case PingDone:
		e.pingDone(in)
	case LinkClosed:
		e.linkClosed(in)
	case Tick:
	default:
		// Input is sealed: this is a nil input, or a new input type
		// without its case. The input is not printed, so that Step does
		// not leak it and a caller's input can live on its stack.
		panic("engine: Step got a nil input, or an input type it has no case for")
	}
	if !e.closed {
		e.deadlines()
	}
	return e.out, nil
}

// State returns the machine's state.
func (e *Engine) State() fsm.State { return e.m.State() }

// Stats returns the counters.
func (e *Engine) Stats() Stats { return e.stats }

// DedupStats returns the dedup window's counters and size.
func (e *Engine) DedupStats() (dedup.Stats, int) { return e.seen.Stats(), e.seen.Len() }

// Primary returns the primary link and its substrate, or false when there is
// none (detached or joining).
func (e *Engine) Primary() (LinkID, Substrate, bool) {
	if e.primary == nil {
		return 0, Substrate{}, false
	}
	return e.primary.id, e.primary.target, true
}

// Candidates returns the substrates of the racing candidates, in dial order.
func (e *Engine) Candidates() []Substrate {
	if len(e.cands) == 0 {
		return nil
	}
	out := make([]Substrate, len(e.cands))
	for i, c := range e.cands {
		out[i] = c.target
	}
	return out
}

// PrimaryRTT returns the smoothed round trip of the primary's pings, 0 when
// unknown.
func (e *Engine) PrimaryRTT() time.Duration {
	if e.primary == nil {
		return 0
	}
	return e.primary.srtt
}

// Known returns the substrates the engine remembers: at most 256, those
// learned least recently forgotten first (never one a link is to).
func (e *Engine) Known() []Substrate {
	out := make([]Substrate, len(e.reg.list))
	for i, k := range e.reg.list {
		out[i] = k.Substrate
	}
	return out
}

// NextDeadline returns the earliest time at which the engine has something
// to do without further input; false when it has none.
func (e *Engine) NextDeadline() (time.Time, bool) {
	var at time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	if e.closed {
		return at, false
	}
	for _, c := range e.cands {
		if !c.welcome {
			consider(c.handshakeBy)
		}
	}
	if len(e.cands) > 0 {
		consider(e.raceAt)
	}
	if e.ov != nil {
		consider(e.ov.welcomeAt.Add(e.cfg.OverlapMax))
		consider(e.ovCheck)
	}
	e.eachPinged(func(l *link) { consider(e.pingDue(l)) })
	consider(e.rejoinAt)
	return at, !at.IsZero()
}

func (e *Engine) emit(f Effect) { e.out = append(e.out, f) }

// attach starts the first attachment.
func (e *Engine) attach(s Substrate) error {
	if s.URL == "" || (s.ID != "" && s.ID == e.cfg.NodeID) {
		return fmt.Errorf("%w (id %q, URL %q)", ErrNotDialable, s.ID, s.URL)
	}
	e.reg.learn(s)
	if e.m.State() != fsm.Detached {
		return fmt.Errorf("%w (it is %s)", ErrNotDetached, e.m.State())
	}
	// moving: the node needs a link, so a refusal's alternatives are raced
	// at once instead of after a detach and the rejoin backoff.
	e.queue, e.moving, e.rejoinAt = []Substrate{s}, true, time.Time{}
	e.fire(fsm.Attach, nil, "embedder attach to "+s.URL)
	return nil
}

// observe ends an evaluation cycle: the policy decides, the machine acts.
func (e *Engine) observe(obs Observe) {
	po := policy.Snapshot{Enclave: e.cfg.Enclave}
	if p := e.primary; p != nil {
		po.Current = policy.Measurement{ID: p.target.ID, Address: p.target.URL, Enclave: p.target.Enclave, Latency: obs.CurrentLatency}
		if po.Current.Latency == 0 {
			po.Current.Latency = p.srtt
		}
	}
	dialable := func(c Candidate) bool { return c.ID != "" && c.ID != e.cfg.NodeID && c.URL != "" }
	if len(obs.Candidates) > 0 {
		po.Candidates = make([]policy.Measurement, 0, len(obs.Candidates))
	}
	for _, c := range obs.Candidates {
		if !dialable(c) {
			continue // cannot be dialled: not offered to the policy
		}
		if k := e.reg.learn(c.Substrate); k != nil && c.Latency > 0 {
			k.rtt = c.Latency
		}
		po.Candidates = append(po.Candidates, policy.Measurement{ID: c.ID, Address: c.URL, Enclave: c.Enclave, Latency: c.Latency})
	}
	d := e.pol.Evaluate(po)
	switch d.Event {
	case fsm.CandidateBetter:
		if p := e.primary; p != nil && p.target.ID == d.Candidate.ID {
			e.log.Debug().Str("candidate", d.Candidate.ID).Msg("policy named the primary's own substrate: not a migration")
			break
		}
		// The last observation of that id, as a map by id would keep (a
		// cycle is a handful of substrates: no map to allocate).
		i := len(obs.Candidates) - 1
		for i >= 0 && !(dialable(obs.Candidates[i]) && obs.Candidates[i].ID == d.Candidate.ID) {
			i--
		}
		if i < 0 {
			e.log.Warn().Str("candidate", d.Candidate.ID).Msg("policy named a substrate this cycle did not observe: not a migration")
			break
		}
		e.target = obs.Candidates[i].Substrate
		e.fire(fsm.CandidateBetter, nil, "policy: "+d.Reason)
	case fsm.CooldownElapsed:
		e.fire(fsm.CooldownElapsed, nil, "policy: "+d.Reason)
	}
	e.emit(Decided{Decision: d})
}

// role finds the link a report is from, or counts the report as stale.
func (e *Engine) role(id LinkID, what string) (l *link, isPrimary bool) {
	if p := e.primary; p != nil && p.id == id {
		return p, true
	}
	for _, c := range e.cands {
		if c.id == id {
			return c, false
		}
	}
	e.stats.StaleEventsDropped++
	e.log.Debug().Uint64("link", uint64(id)).Str("report", what).Msg("stale report from a dropped link")
	return nil, false
}

func (e *Engine) welcomed(in Welcomed) {
	l, isPrimary := e.role(in.Link, "welcome")
	if l == nil {
		return
	}
	if isPrimary || l.welcome {
		e.log.Warn().Uint64("link", uint64(l.id)).Msg("duplicate welcome ignored")
		return
	}
	if parent := in.Welcome.YourPosition.ParentID; l.target.ID != "" && parent != l.target.ID {
		e.reject(l, false, fmt.Errorf("welcome names parent %q, dialed %q", parent, l.target.ID))
		return
	}
	l.welcome = true
	if l.target.ID == "" {
		l.target.ID = in.Welcome.YourPosition.ParentID
		e.reg.learn(l.target)
	}
	l.lastHeard = e.now
	// The registry keeps maxKnown entries: a longer topology would only
	// evict its own head.
	for _, m := range in.Welcome.Topology[:min(len(in.Welcome.Topology), maxKnown)] {
		if ni := m.NodeInfo; ni != nil && ni.ID != "" {
			e.reg.learn(Substrate{ID: ni.ID, URL: substrateURL(l.target.URL, ni.Address, ni.HTTPPort), Enclave: ni.Enclave})
		}
	}
	e.fire(fsm.HandshakeOK, l, "welcome from "+l.target.ID)
}

func (e *Engine) goodbye(in GoodbyeReceived) {
	l, isPrimary := e.role(in.Link, "goodbye")
	if l == nil {
		return
	}
	l.lastHeard = e.now
	if isPrimary && l.goodbye {
		// Before learning anything: a repetition changes nothing, and
		// must cost nothing however many alternatives it names.
		e.log.Debug().Str("substrate", l.target.ID).Msg("repeated goodbye ignored")
		return
	}
	parents := in.Goodbye.AlternativeParents
	if len(parents) > maxAlternatives {
		e.log.Warn().Str("substrate", l.target.ID).Int("named", len(parents)).Int("learned", maxAlternatives).
			Msg("goodbye names too many alternatives: only the first are learned")
		parents = parents[:maxAlternatives]
	}
	var alts []*known
	for _, p := range parents {
		if k := e.reg.learn(Substrate{ID: p.ID, URL: substrateURL(l.target.URL, p.Address, p.HTTPPort), Enclave: p.Enclave}); k != nil {
			alts = append(alts, k)
		}
	}
	e.reg.failed(l.target, e.now, e.cfg.FailureBackoff, e.cfg.FailureBackoffMax, e.rng)
	if !isPrimary {
		// A candidate's goodbye is a refusal ("at capacity"). In a forced
		// move its alternatives join the race; a policy migration is
		// cancelled instead, so the policy's choice is not second-guessed.
		if e.moving {
			e.enqueue(rank(alts, e.cfg.Enclave, e.now, e.rng))
		}
		e.fire(fsm.NewFailed, l, fmt.Sprintf("%s refused: goodbye %q", l.target.ID, in.Goodbye.Reason))
		return
	}
	l.goodbye = true
	e.prepareMove(alts)
	e.fire(fsm.Goodbye, nil, fmt.Sprintf("%s said goodbye %q: %d substrates to try", l.target.ID, in.Goodbye.Reason, len(e.queue)))
}

func (e *Engine) gossip(in *GossipReceived) {
	// Late gossip from the old primary closed at the switch was sent
	// before it knew: it is delivered through dedup, and changes nothing
	// else (no heartbeat, no overlap sample).
	late := e.closing != nil && e.closing.id == in.Link
	l, isPrimary := e.closing, false
	if !late {
		if l, isPrimary = e.role(in.Link, "gossip"); l == nil {
			return
		}
		if !isPrimary && !l.welcome {
			e.reject(l, false, fmt.Errorf("%w: %s before welcome", wire.ErrMalformed, in.Type))
			return
		}
		l.lastHeard = e.now
	}
	msg := &in.Message
	if e.cfg.MaxMessageAge > 0 {
		if age := e.now.Sub(time.Unix(msg.Timestamp, 0)); age > e.cfg.MaxMessageAge {
			// Not a link fault: a substrate may forward an old message in
			// good faith, so the message alone is dropped.
			e.stats.TooOld++
			e.log.Warn().Str("message_id", msg.MessageID).Int64("timestamp", msg.Timestamp).Dur("age", age).
				Msg("gossip dropped: older than MaxMessageAge (a replay past the dedup window, or a publisher clock far behind)")
			return
		}
	}
	// A message routed to this node (an ACK of its write, or anything with
	// a "to") comes only on the link its route goes through, never on both:
	// it takes no part in the overlap's catch-up.
	if o := e.ov; o != nil && !routed(in.Type, msg) {
		var skew time.Duration
		var ok bool
		if isPrimary {
			skew, ok = o.fromOld(msg.MessageID, msg.From, e.now)
		} else if l.id == o.link {
			skew, ok = o.fromNew(msg.MessageID, msg.From, e.now)
		}
		if ok {
			// A new sample may shrink the margin: the overlap may end
			// earlier than the check scheduled with the previous margin.
			e.skew.add(skew)
			e.ovCheck = e.now
		}
	}
	if e.seen.Seen(dedupKey(in.Type, msg), e.now) {
		e.stats.DuplicatesDropped++
		return
	}
	e.stats.Delivered++
	e.emit(Deliver{Gossip: &Gossip{Type: in.Type, Message: *msg, Via: l.target.ID}})
}

// routed reports whether m is addressed to one node rather than gossiped to
// all: REPRAM leaves "to" empty on a broadcast, and an ACK is always routed
// back to the writer (relayed by the substrate the write went through).
func routed(t wire.Type, m *wire.Message) bool {
	return t == wire.TypeAck || m.To != ""
}

// dedupKey is the key m is deduplicated on. A broadcast is known by its
// message id, which forwarding keeps. An ACK carries the id of the write it
// acknowledges, and every substrate that stored the write sends one with its
// own "from": ACKs are known by (id, from), so each counts once toward the
// writer's quorum. The two namespaces never meet: an ACK key starts with
// "\x00a" and a broadcast key never does (an id starting with NUL, which
// REPRAM never makes, gets a second NUL). The empty id stays "", never a
// duplicate.
func dedupKey(t wire.Type, m *wire.Message) string {
	id := m.MessageID
	switch {
	case id == "":
		return ""
	case t == wire.TypeAck:
		return "\x00a" + strconv.Itoa(len(id)) + ":" + id + m.From
	case id[0] == 0:
		return "\x00" + id
	}
	return id
}

func (e *Engine) rejected(in FrameRejected) {
	l, isPrimary := e.role(in.Link, "bad frame")
	if l == nil {
		return
	}
	e.reject(l, isPrimary, in.Err)
}

// reject counts a frame the protocol does not allow. A candidate that sends
// one has failed; the primary keeps its link and the frame alone is dropped.
func (e *Engine) reject(l *link, isPrimary bool, err error) {
	e.stats.FramesRejected++
	e.log.Warn().Err(err).Uint64("link", uint64(l.id)).Str("substrate", l.target.ID).Bool("primary", isPrimary).Msg("frame rejected")
	if !isPrimary {
		e.reg.failed(l.target, e.now, e.cfg.FailureBackoff, e.cfg.FailureBackoffMax, e.rng)
		e.fire(fsm.NewFailed, l, fmt.Sprintf("candidate %s sent a bad frame: %v", l.target.ID, err))
	}
}

func (e *Engine) pingDone(in PingDone) {
	l, isPrimary := e.findLink(in.Link)
	if l == nil {
		return // a ping outliving its link proves nothing
	}
	l.pinging = false
	switch {
	case in.Err == nil:
		l.missed, l.pingOK, l.lastHeard = 0, true, e.now
		l.addRTT(in.RTT)
		if k := e.reg.find(l.target); k != nil {
			k.rtt = l.srtt
		}
		if o := e.ov; o != nil && o.link == l.id {
			o.newAlive = true
			e.ovCheck = e.now
		}
	case in.Starved:
		// The reader was parked on back-pressure: silence is ours.
	default:
		l.missed++
		e.stats.PingsFailed++
		switch {
		case l.missed >= e.cfg.MissedHeartbeats && isPrimary:
			e.primaryLost(fmt.Sprintf("primary %s dead: %d pings unanswered", l.target.ID, l.missed))
		case l.missed >= e.cfg.MissedHeartbeats:
			e.reg.failed(l.target, e.now, e.cfg.FailureBackoff, e.cfg.FailureBackoffMax, e.rng)
			e.fire(fsm.NewFailed, l, fmt.Sprintf("candidate %s dead: %d pings unanswered", l.target.ID, l.missed))
		case isPrimary && l.missed == 1:
			e.prepareMove(nil)
			e.fire(fsm.OldSuspected, nil, fmt.Sprintf("primary %s silent for %v and its ping failed: %v",
				l.target.ID, e.now.Sub(l.lastHeard).Round(time.Millisecond), in.Err))
		}
	}
}

func (e *Engine) linkClosed(in LinkClosed) {
	l, isPrimary := e.findLink(in.Link)
	if l == nil {
		if c := e.closing; c != nil && c.id == in.Link {
			e.closing = nil // its late gossip ends here
		}
		return // the report of a link already dropped
	}
	if isPrimary {
		e.primaryLost(fmt.Sprintf("primary %s died: %v", l.target.ID, in.Err))
		return
	}
	e.reg.failed(l.target, e.now, e.cfg.FailureBackoff, e.cfg.FailureBackoffMax, e.rng)
	e.fire(fsm.NewFailed, l, fmt.Sprintf("candidate %s failed: %v", l.target.ID, in.Err))
}

// primaryLost backs the primary's substrate off, queues the alternatives
// and fires old_died.
func (e *Engine) primaryLost(reason string) {
	if !e.primary.goodbye {
		e.reg.failed(e.primary.target, e.now, e.cfg.FailureBackoff, e.cfg.FailureBackoffMax, e.rng)
	}
	e.prepareMove(nil)
	e.fire(fsm.OldDied, nil, reason)
}

// findLink is role without counting a stale report.
func (e *Engine) findLink(id LinkID) (*link, bool) {
	if p := e.primary; p != nil && p.id == id {
		return p, true
	}
	for _, c := range e.cands {
		if c.id == id {
			return c, false
		}
	}
	return nil, false
}

// prepareMove fills the queue for a move the node must make (goodbye,
// suspicion, death): first the given alternatives and every other known
// substrate, ranked together, but never the primary's own substrate nor a
// racing one. A candidate already racing then races the queue after the
// attempt delay.
func (e *Engine) prepareMove(alts []*known) {
	var all []*known
	seen := map[*known]bool{}
	for _, k := range append(alts, e.reg.list...) {
		if !seen[k] && e.dialable(k.Substrate) {
			seen[k] = true
			all = append(all, k)
		}
	}
	e.queue, e.moving = rank(all, e.cfg.Enclave, e.now, e.rng), true
	// Candidates still racing without a welcome when the queue is refilled
	// (the primary died or said goodbye mid-race): the attempt delay that
	// found the old queue empty has passed, so widen the race with the new
	// queue one attempt delay after the newest dial, not after the
	// candidates' handshake timeout.
	if e.raceAt.IsZero() && len(e.cands) > 0 && !slices.ContainsFunc(e.cands, func(c *link) bool { return c.welcome }) {
		newest := e.cands[len(e.cands)-1].handshakeBy.Add(-e.cfg.HandshakeTimeout)
		e.raceAt = maxTime(e.now, newest.Add(e.cfg.AttemptDelay))
	}
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// enqueue appends what is not queued yet.
func (e *Engine) enqueue(ss []Substrate) {
	for _, s := range ss {
		if !slices.ContainsFunc(e.queue, func(q Substrate) bool { return same(q, s) }) {
			e.queue = append(e.queue, s)
		}
	}
}

// dialable reports whether s may be dialled now: not this node, not the
// primary's substrate (a second hello from this node would replace the
// first registration), not already racing.
func (e *Engine) dialable(s Substrate) bool {
	if s.URL == "" || (s.ID != "" && s.ID == e.cfg.NodeID) {
		return false
	}
	if p := e.primary; p != nil && same(p.target, s) {
		return false
	}
	return !slices.ContainsFunc(e.cands, func(c *link) bool { return same(c.target, s) })
}

func same(a, b Substrate) bool {
	return (a.ID != "" && a.ID == b.ID) || (a.URL != "" && a.URL == b.URL)
}

// deadlines acts on every deadline that has passed.
func (e *Engine) deadlines() {
	// A handshake timeout drops its candidate: iterate over a copy, made
	// only when one is due (this runs on every Step).
	if slices.ContainsFunc(e.cands, e.handshakeDue) {
		for _, c := range slices.Clone(e.cands) {
			if e.handshakeDue(c) && e.isCandidate(c) {
				e.reg.failed(c.target, e.now, e.cfg.FailureBackoff, e.cfg.FailureBackoffMax, e.rng)
				e.fire(fsm.HandshakeTimeout, c, fmt.Sprintf("no welcome from %s within %v", c.target.URL, e.cfg.HandshakeTimeout))
			}
		}
	}
	if !e.raceAt.IsZero() && !e.now.Before(e.raceAt) {
		e.raceAt = time.Time{}
		e.fire(fsm.AttemptDelay, nil, fmt.Sprintf("no welcome within the attempt delay %v", e.cfg.AttemptDelay))
	}
	if o := e.ov; o != nil {
		margin := e.margin()
		if o.common.IsZero() {
			// Nothing came on both links: this pair's skew is unmeasured,
			// and the margin measured on earlier overlaps may be far
			// shorter than how long the old link lags the new one (its
			// substrate fell behind the mesh, or this pair is further
			// apart). What the old link still carries from before the new
			// substrate registered this node is exempt, not behind, and may
			// still be in flight, even when the old link has been idle so
			// far: the margin is its upper bound until a message is seen
			// on both.
			margin = e.cfg.OverlapGrace
		}
		switch {
		case !e.now.Before(o.welcomeAt.Add(e.cfg.OverlapMax)):
			_, _, behind := o.check(e.now, margin)
			e.fire(fsm.OverlapExpired, e.candidate(o.link), fmt.Sprintf("new link still %d messages behind after %v", behind, e.cfg.OverlapMax))
		case !e.now.Before(e.ovCheck):
			done, readyAt, _ := o.check(e.now, margin)
			switch {
			case done:
				e.fire(fsm.OverlapDone, e.candidate(o.link), fmt.Sprintf("new link caught up (margin %v)", margin.Round(time.Millisecond)))
			case !readyAt.IsZero():
				e.ovCheck = readyAt
			default:
				// Only an arrival or a pong can change the answer, and
				// both ask for a new check.
				e.ovCheck = o.welcomeAt.Add(e.cfg.OverlapMax)
			}
		}
	}
	e.eachPinged(func(l *link) {
		if due := e.pingDue(l); !due.IsZero() && !e.now.Before(due) {
			l.pinging, l.lastPing = true, e.now
			e.emit(Ping{Link: l.id, Timeout: e.suspicion(l)})
		}
	})
	if !e.rejoinAt.IsZero() && !e.now.Before(e.rejoinAt) && e.m.State() == fsm.Detached {
		e.rejoinAt = time.Time{}
		e.prepareMove(nil)
		if len(e.queue) > 0 {
			e.stats.Rejoins++
			e.fire(fsm.Attach, nil, fmt.Sprintf("rejoin: %d substrates to try, %s first", len(e.queue), e.queue[0].ID))
		}
	}
}

// handshakeDue reports whether candidate c's welcome is overdue.
func (e *Engine) handshakeDue(c *link) bool { return !c.welcome && !e.now.Before(c.handshakeBy) }

// margin is the current overlap margin, from the measured skew.
func (e *Engine) margin() time.Duration { return e.skew.margin(e.cfg.OverlapFloor, e.cfg.OverlapGrace) }

// eachPinged calls f for every link the engine heartbeats: the primary and
// welcomed candidates.
func (e *Engine) eachPinged(f func(*link)) {
	if e.primary != nil {
		f(e.primary)
	}
	for _, c := range e.cands {
		if c.welcome {
			f(c)
		}
	}
}

// pingDue is when l should be pinged next: a heartbeat interval after the
// last ping, or as soon as it has been silent for the suspicion timeout;
// zero while a ping is outstanding.
func (e *Engine) pingDue(l *link) time.Time {
	if l.pinging {
		return time.Time{}
	}
	if l.lastPing.IsZero() {
		return e.now
	}
	return minTime(l.lastPing.Add(e.cfg.HeartbeatInterval), l.lastHeard.Add(e.suspicion(l)))
}

// suspicion is the link's suspicion timeout: SRTT + 4·RTTVAR within
// [SuspectMin, SuspectMax]; SuspectMax before the first sample.
func (e *Engine) suspicion(l *link) time.Duration {
	if l.rttSamples == 0 {
		return e.cfg.SuspectMax
	}
	return min(max(l.srtt+4*l.rttvar, e.cfg.SuspectMin), e.cfg.SuspectMax)
}

// addRTT folds one round trip into SRTT and RTTVAR (RFC 6298, 2.2–2.3).
func (l *link) addRTT(r time.Duration) {
	if l.rttSamples == 0 {
		l.srtt, l.rttvar = r, r/2
	} else {
		d := l.srtt - r
		if d < 0 {
			d = -d
		}
		l.rttvar += (d - l.rttvar) / 4
		l.srtt += (r - l.srtt) / 8
	}
	l.rttSamples++
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func (e *Engine) isCandidate(l *link) bool { return slices.Contains(e.cands, l) }

func (e *Engine) candidate(id LinkID) *link {
	for _, c := range e.cands {
		if c.id == id {
			return c
		}
	}
	return nil
}

// substrateURL builds the attachment URL of a substrate announced by
// address and HTTP port, with the scheme of the link that announced it.
func substrateURL(via, address string, httpPort int) string {
	if address == "" || httpPort <= 0 {
		return ""
	}
	scheme := "ws://"
	if strings.HasPrefix(via, "wss://") {
		scheme = "wss://"
	}
	if strings.Contains(address, ":") && !strings.HasPrefix(address, "[") { // IPv6, not yet in brackets
		address = "[" + address + "]"
	}
	return scheme + address + ":" + strconv.Itoa(httpPort) + "/v1/ws"
}

var timeZero time.Time
