package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/policy"
	"github.com/repram/handover/transport/dedup"
	"github.com/repram/handover/transport/wire"
)

// Gossip is one deduplicated gossip message handed to the embedder.
type Gossip struct {
	Type    wire.Type    // put, ack, ping, pong, topology_sync
	Message wire.Message // as received; forwarded messages keep their origin's from and message_id
	Via     string       // id of the substrate whose link delivered it
}

// Transition is one transition the machine took, as subscribers see it.
type Transition struct {
	At        time.Time
	Step      fsm.Step
	Primary   string // substrate id of the primary after the transition, "" for none
	Candidate string // substrate id of the candidate after the transition, "" for none
	Reason    string // what caused the event, for timelines and logs
}

// Stats counts what the driver did. All counters only grow.
type Stats struct {
	Joins              int // detached → attached
	Migrations         int // completed make-before-break switches (overlap_done)
	Cancelled          int // migrations cancelled, old link kept
	Accelerated        int // old link died or left mid-overlap, new link promoted
	Forced             int // migrations started by a goodbye
	ContinuedAlone     int // old link died before the candidate's welcome
	Detaches           int // left without any link
	Rejoins            int // attach attempts made by the rejoin loop
	Delivered          int // gossip handed to the handler
	DuplicatesDropped  int // gossip dropped because its id was already delivered
	StaleEventsDropped int // events from links no longer primary or candidate
	FramesRejected     int // frames that failed to decode, verify or fit the read limit
	TooOld             int // gossip dropped because its timestamp was older than MaxMessageAge
	TransitionsDropped int // transitions not delivered to a full subscriber channel
}

// Status is a snapshot of the driver.
type Status struct {
	State      fsm.State
	Primary    Substrate
	Candidate  Substrate
	PrimaryRTT time.Duration // last heartbeat round trip on the primary, 0 if none yet
	Stats      Stats
}

// Errors returned by the embedder API.
var (
	ErrDetached = errors.New("transport: no primary link: the node is detached or joining; retry after it attaches")
	ErrClosed   = errors.New("transport: node closed: create a new Node to attach again")
)

// Node is the migration driver of one transient node. One event loop
// goroutine owns the state machine, the policy, the links and the dedup
// window; link goroutines, timers and API calls post to it. Create it with
// [New], give it a substrate with [Node.Attach], feed [Node.Observe] once per
// evaluation cycle, and [Node.Close] it when done.
type Node struct {
	cfg  Config
	log  zerolog.Logger
	env  linkEnv
	root context.Context
	stop context.CancelFunc

	events    chan *linkEvent
	cmds      chan func()
	out       chan *Gossip // pointers: a full buffer's messages are allocated only when queued
	loopDone  chan struct{}
	delivDone chan struct{}
	wg        sync.WaitGroup // link goroutines
	closeOnce sync.Once

	mu     sync.Mutex
	status Status

	// Owned by the event loop.
	m            *fsm.Machine
	pol          Policy
	seen         *dedup.Set
	stats        Stats
	primary      *link
	candidate    *link
	target       Substrate   // where the next dial goes
	alternatives []Substrate // from the primary's goodbye, in order
	known        []Substrate // every substrate learned, for rejoining
	rejoinNext   int
	backoff      time.Duration
	rejoinTimer  *time.Timer
	ov           *overlap
	ovTimers     []*time.Timer
	nextLinkID   uint64
	queue        []queued
	firing       bool
	subs         []chan Transition
	exiting      bool
}

type queued struct {
	e      fsm.Event
	reason string
}

// New validates cfg and starts the node's event loop, detached. It refuses
// an identity that accepts inbound connections with [ErrSubstrateIdentity].
func New(cfg Config) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	pol := cfg.Decider
	if pol == nil {
		ev, err := policy.New(cfg.Policy)
		if err != nil {
			return nil, fmt.Errorf("transport: policy: %w", err)
		}
		pol = ev
	}
	hello, err := wire.Encode(wire.TypeHello, cfg.helloPayload(), cfg.Secret)
	if err != nil {
		return nil, fmt.Errorf("transport: encode hello: %w", err)
	}
	root, stop := context.WithCancel(context.Background())
	n := &Node{
		cfg: cfg, log: cfg.Logger.With().Str("node", cfg.Identity.NodeID).Logger(),
		root: root, stop: stop,
		events: make(chan *linkEvent, 256), cmds: make(chan func()),
		out: make(chan *Gossip, cfg.DeliveryBuffer), loopDone: make(chan struct{}), delivDone: make(chan struct{}),
		m: fsm.New(), pol: pol, seen: dedup.New(cfg.Dedup), backoff: cfg.RejoinBackoff,
	}
	n.env = linkEnv{cfg: &n.cfg, hello: hello, dialOpt: dialOptions(&n.cfg), post: n.post,
		credits: make(chan struct{}, cfg.DeliveryBuffer), wg: &n.wg}
	n.publish()
	go n.loop()
	go n.deliver()
	return n, nil
}

// post hands a link event to the loop; false once the loop has exited. The
// queue holds pointers: a linkEvent is a few hundred bytes, and an idle node
// should not carry a queue's worth of them.
func (n *Node) post(ev linkEvent) bool {
	select {
	case n.events <- &ev:
		return true
	case <-n.loopDone:
		return false
	}
}

// enqueue runs f on the loop; false once the loop has exited.
func (n *Node) enqueue(f func()) bool {
	select {
	case n.cmds <- f:
		return true
	case <-n.loopDone:
		return false
	}
}

// call runs f on the loop and waits for its result.
func (n *Node) call(ctx context.Context, f func() error) error {
	res := make(chan error, 1)
	select {
	case n.cmds <- func() { res <- f() }:
	case <-n.loopDone:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued, f runs: wait for it even past ctx, so a caller that sees
	// an error knows f did not run (an Observe retried after a timeout must
	// not count two cycles). The loop never blocks for long.
	return <-res
}

func (n *Node) loop() {
	defer close(n.loopDone)
	for !n.exiting {
		select {
		case ev := <-n.events:
			n.onLink(*ev)
		case f := <-n.cmds:
			f()
		}
		n.publish()
	}
}

// deliver hands gossip to the handler and returns each message's credit.
func (n *Node) deliver() {
	defer close(n.delivDone)
	for g := range n.out {
		if n.cfg.Handler != nil {
			n.cfg.Handler(*g)
		}
		<-n.env.credits
	}
}

// Attach starts attaching to s. It returns once the attempt has started;
// watch [Node.Subscribe] or [Node.Status] for the outcome. While detached,
// the node also keeps s for rejoining.
func (n *Node) Attach(ctx context.Context, s Substrate) error {
	if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return fmt.Errorf("transport: substrate URL %q: want ws://HOST:PORT/v1/ws or wss://HOST:PORT/v1/ws", s.URL)
	}
	return n.call(ctx, func() error {
		n.learn(s)
		if n.m.State() != fsm.Detached {
			return fmt.Errorf("transport: attach: node is %s, not detached: it already has a substrate "+
				"and migrates by itself (Observe); Attach is for the first attachment", n.m.State())
		}
		n.target = s
		n.fire(fsm.Attach, "embedder attach to "+s.URL)
		return nil
	})
}

// Candidate is a substrate the embedder measured this cycle.
type Candidate struct {
	Substrate
	Latency time.Duration // 0 = not measured this cycle
}

// Observation is one evaluation cycle's measurements.
type Observation struct {
	// CurrentLatency is the primary's latency; 0 uses the round trip the
	// driver's heartbeats measured.
	CurrentLatency time.Duration
	Candidates     []Candidate
	// Measure makes Observe measure every candidate whose Latency is 0
	// with [Probe] (Config's TLSConfig and HTTPHeader, bounded by ctx and
	// HandshakeTimeout) before the policy sees the cycle. The probes run
	// concurrently on the caller's goroutine, never on the event loop; a
	// candidate that cannot be probed stays unmeasured.
	Measure bool
}

// Observe feeds one evaluation cycle to the policy and acts on its decision.
// Call it once per cycle. It returns the policy's decision.
func (n *Node) Observe(ctx context.Context, obs Observation) (policy.Decision, error) {
	select {
	case <-n.loopDone:
		return policy.Decision{}, ErrClosed
	default:
	}
	if obs.Measure {
		obs = n.measure(ctx, obs)
	}
	var d policy.Decision
	err := n.call(ctx, func() error {
		d = n.observe(obs)
		return nil
	})
	return d, err
}

func (n *Node) observe(obs Observation) policy.Decision {
	po := policy.Observation{Enclave: n.cfg.Identity.Enclave}
	if p := n.primary; p != nil {
		po.Current = policy.Substrate{ID: p.target.ID, Address: p.target.URL, Enclave: p.target.Enclave, Latency: obs.CurrentLatency}
		if po.Current.Latency == 0 {
			po.Current.Latency = p.rtt
		}
	}
	byID := map[string]Substrate{}
	for _, c := range obs.Candidates {
		if c.ID == "" || c.ID == n.cfg.Identity.NodeID {
			continue
		}
		n.learn(c.Substrate)
		byID[c.ID] = c.Substrate
		po.Candidates = append(po.Candidates, policy.Substrate{ID: c.ID, Address: c.URL, Enclave: c.Enclave, Latency: c.Latency})
	}
	d := n.pol.Evaluate(po)
	switch d.Event {
	case fsm.CandidateBetter:
		if p := n.primary; p != nil && p.target.ID == d.Candidate.ID {
			break // never a second link to the primary's substrate
		}
		n.target = byID[d.Candidate.ID]
		n.fire(fsm.CandidateBetter, "policy: "+d.Reason)
	case fsm.CooldownElapsed:
		n.fire(fsm.CooldownElapsed, "policy: "+d.Reason)
	}
	return d
}

// Send writes one frame through the current primary: a clear [ErrDetached]
// while there is none. The write runs on the caller's goroutine, bounded by
// ctx, never on the event loop. A ctx that expires mid-write (a primary that
// stopped reading) leaves a partial WebSocket frame, so the link is closed:
// the node then treats the primary as dead and reattaches.
func (n *Node) Send(ctx context.Context, t wire.Type, payload any) error {
	frame, err := wire.Encode(t, payload, n.cfg.Secret)
	if err != nil {
		return err
	}
	var conn *websocket.Conn
	if err := n.call(ctx, func() error {
		if n.primary == nil || n.primary.conn.Load() == nil {
			return ErrDetached
		}
		conn = n.primary.conn.Load()
		return nil
	}); err != nil {
		return err
	}
	if err := conn.Write(ctx, websocket.MessageText, frame); err != nil {
		return fmt.Errorf("transport: send %s through primary: %w", t, err)
	}
	return nil
}

// Status returns a snapshot of the state, links and counters.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.status
}

// Subscribe returns a channel of every transition from now on. Sends never
// block the loop: a full channel loses the transition (counted in
// Stats.TransitionsDropped). The channel is closed by Close.
func (n *Node) Subscribe(buffer int) <-chan Transition {
	ch := make(chan Transition, buffer)
	if !n.enqueue(func() { n.subs = append(n.subs, ch) }) {
		close(ch)
	}
	return ch
}

// Close closes every link and stops the node. It waits, bounded by ctx, for
// every goroutine the node started and for the handler to finish what was
// already delivered.
func (n *Node) Close(ctx context.Context) error {
	n.closeOnce.Do(func() {
		n.enqueue(func() {
			n.fire(fsm.Close, "embedder close")
			n.exiting = true
		})
	})
	done := make(chan struct{})
	go func() {
		<-n.loopDone
		// The loop stopped every link cleanly; let their close handshakes
		// finish before cancelling what is left.
		n.wg.Wait()
		n.stop()
		<-n.delivDone
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		n.stop() // cut the close handshakes short
		return fmt.Errorf("transport: close: %w (links or the handler are still finishing)", ctx.Err())
	}
}

// publish copies the loop's view into the snapshot Status reads.
func (n *Node) publish() {
	s := Status{State: n.m.State(), Stats: n.stats}
	if n.primary != nil {
		s.Primary, s.PrimaryRTT = n.primary.target, n.primary.rtt
	}
	if n.candidate != nil {
		s.Candidate = n.candidate.target
	}
	n.mu.Lock()
	n.status = s
	n.mu.Unlock()
}

// fire queues e and, unless already firing, runs the queue: follow-up events
// raised while carrying out actions run after the current step, never from
// inside it.
func (n *Node) fire(e fsm.Event, reason string) {
	n.queue = append(n.queue, queued{e, reason})
	if n.firing {
		return
	}
	n.firing = true
	defer func() { n.firing = false }()
	for len(n.queue) > 0 {
		q := n.queue[0]
		n.queue = n.queue[1:]
		n.step(q.e, q.reason)
	}
}

func (n *Node) step(e fsm.Event, reason string) {
	st, err := n.m.Fire(e)
	if err != nil {
		n.log.Error().Err(err).Str("event", string(e)).Msg("state machine rejected an event")
		return
	}
	if st.Ignored {
		n.log.Debug().Str("state", string(st.From)).Str("event", string(e)).Str("reason", st.Reason).Msg("event ignored")
		return
	}
	leaving := n.candidate
	for _, a := range st.Actions {
		n.act(a)
	}
	n.count(st, leaving)
	tr := Transition{At: time.Now(), Step: st, Reason: reason}
	if n.primary != nil {
		tr.Primary = n.primary.target.ID
	}
	if n.candidate != nil {
		tr.Candidate = n.candidate.target.ID
	}
	n.log.Info().Str("from", string(st.From)).Str("to", string(st.To)).Str("event", string(e)).
		Str("path", string(st.Path)).Str("primary", tr.Primary).Str("candidate", tr.Candidate).
		Str("reason", reason).Msg("transition")
	for _, ch := range n.subs {
		select {
		case ch <- tr:
		default:
			n.stats.TransitionsDropped++
		}
		if st.To == fsm.Closed {
			close(ch) // after the close transition itself
		}
	}
	if st.To == fsm.Closed {
		n.subs = nil
	}
	n.follow(st)
}

// count updates the counters and tells the policy what happened.
func (n *Node) count(st fsm.Step, cand *link) {
	switch st.Path {
	case fsm.PathCancel:
		n.stats.Cancelled++
		if cand != nil {
			n.pol.MigrationFailed(cand.target.ID)
		}
	case fsm.PathAccelerate:
		n.stats.Accelerated++
	case fsm.PathForced:
		n.stats.Forced++
	case fsm.PathContinue:
		n.stats.ContinuedAlone++
	case fsm.PathDetach:
		n.stats.Detaches++
	}
	switch {
	case st.Event == fsm.OverlapDone:
		n.stats.Migrations++
	case st.From == fsm.Joining && st.To == fsm.Attached:
		n.stats.Joins++
	}
}

// follow raises what a transition implies beyond its own actions.
func (n *Node) follow(st fsm.Step) {
	switch {
	case st.To == fsm.Detached:
		n.scheduleRejoin()
	case st.To == fsm.Attached && st.Path == fsm.PathCancel && n.primary != nil &&
		n.primary.goodbyeSeen && len(n.alternatives) > 0:
		// A forced migration's candidate failed while the old substrate is
		// still leaving: try the next alternative.
		n.fire(fsm.Goodbye, "next alternative after a failed one")
	}
}

func (n *Node) act(a fsm.Action) {
	switch a {
	case fsm.DialCandidate:
		n.candidate = n.newLink(n.target)
	case fsm.DialAlternative:
		// Goodbye is only fired with an alternative left.
		n.candidate = n.newLink(n.nextAlternative())
	case fsm.SendHello:
		if l := n.candidate; l != nil {
			n.wg.Add(1)
			go l.run(n.env)
			l.hsTimer = time.AfterFunc(n.cfg.HandshakeTimeout, func() {
				n.enqueue(func() {
					if n.candidate == l && !l.welcomed {
						n.fire(fsm.HandshakeTimeout, fmt.Sprintf("no welcome from %s within %v", l.target.URL, n.cfg.HandshakeTimeout))
					}
				})
			})
		}
	case fsm.StartOverlap:
		l := n.candidate
		n.ov = newOverlap(time.Now(), n.cfg.OverlapGrace, l.pingOK)
		n.ovTimers = append(n.ovTimers,
			time.AfterFunc(n.cfg.OverlapMin, func() {
				n.enqueue(func() {
					if n.candidate == l && n.ov != nil {
						n.ov.mark()
						n.checkCaughtUp()
					}
				})
			}),
			time.AfterFunc(n.cfg.OverlapMax, func() {
				n.enqueue(func() {
					if n.candidate == l && n.ov != nil {
						n.fire(fsm.OverlapExpired, fmt.Sprintf("new link %s still %d messages behind after %v",
							l.target.ID, n.ov.behind(), n.cfg.OverlapMax))
					}
				})
			}))
	case fsm.PromoteCandidate:
		n.endOverlap()
		n.primary, n.candidate = n.candidate, nil
		if n.primary != nil {
			stopTimer(n.primary.hsTimer)
			n.alternatives = nil
			n.backoff = n.cfg.RejoinBackoff
			n.pol.Attached(n.primary.target.ID)
		}
	case fsm.DropCandidate:
		n.endOverlap()
		if l := n.candidate; l != nil {
			stopTimer(l.hsTimer)
			l.stop(websocket.StatusNormalClosure)
			n.candidate = nil
		}
	case fsm.DropOld:
		if n.primary != nil {
			n.primary.stop(0)
			n.primary = nil
		}
	case fsm.CloseOld:
		if n.primary != nil {
			n.primary.stop(websocket.StatusNormalClosure)
			n.primary = nil
		}
	case fsm.CloseAll:
		n.endOverlap()
		stopTimer(n.rejoinTimer)
		for _, l := range []*link{n.primary, n.candidate} {
			if l != nil {
				stopTimer(l.hsTimer)
				l.stop(websocket.StatusNormalClosure)
			}
		}
		n.primary, n.candidate = nil, nil
		close(n.out)
	}
}

func (n *Node) endOverlap() {
	for _, t := range n.ovTimers {
		t.Stop()
	}
	n.ovTimers, n.ov = nil, nil
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

func (n *Node) newLink(t Substrate) *link {
	n.nextLinkID++
	return newLink(n.root, n.nextLinkID, t)
}

func (n *Node) checkCaughtUp() {
	if n.ov != nil && n.m.State() == fsm.Overlapping && n.ov.caughtUp() {
		n.fire(fsm.OverlapDone, "new link "+n.candidate.target.ID+" caught up")
	}
}

// onLink handles one event reported by a link.
func (n *Node) onLink(ev linkEvent) {
	l := ev.link
	isPrimary, isCandidate := l == n.primary, l == n.candidate
	log := n.log.With().Uint64("link", l.id).Str("substrate", l.target.ID).Str("state", string(n.m.State())).Logger()
	if !isPrimary && !isCandidate {
		if ev.kind == evGossip {
			<-n.env.credits
		}
		if ev.kind != evClosed && ev.kind != evRTT {
			n.stats.StaleEventsDropped++
			log.Debug().Str("kind", ev.kind.String()).Msg("stale event from a dropped link")
		}
		return
	}
	switch ev.kind {
	case evRTT:
		l.rtt = ev.rtt
		if !l.pingOK {
			l.pingOK = true
			if isCandidate && n.ov != nil {
				n.ov.newAlive = true
				n.checkCaughtUp()
			}
		}
	case evWelcome:
		if l.welcomed {
			log.Warn().Msg("duplicate welcome ignored")
			return
		}
		if want := l.target.ID; want != "" && ev.welcome.YourPosition.ParentID != want {
			n.rejectFrame(l, isCandidate, log, fmt.Errorf("welcome names parent %q, dialed %q",
				ev.welcome.YourPosition.ParentID, want))
			return
		}
		l.welcomed = true
		if l.target.ID == "" {
			l.target.ID = ev.welcome.YourPosition.ParentID
		}
		stopTimer(l.hsTimer)
		for _, m := range ev.welcome.Topology {
			if ni := m.NodeInfo; ni != nil {
				n.learn(Substrate{ID: ni.ID, URL: substrateURL(l.target.URL, ni.Address, ni.HTTPPort), Enclave: ni.Enclave})
			}
		}
		n.fire(fsm.HandshakeOK, "welcome from "+l.target.ID)
	case evGoodbye:
		alts := make([]Substrate, 0, len(ev.goodbye.AlternativeParents))
		for _, p := range ev.goodbye.AlternativeParents {
			alts = append(alts, Substrate{ID: p.ID, URL: substrateURL(l.target.URL, p.Address, p.HTTPPort), Enclave: p.Enclave})
		}
		for _, s := range alts {
			n.learn(s)
		}
		if isCandidate {
			n.fire(fsm.NewFailed, fmt.Sprintf("%s refused: goodbye %q", l.target.ID, ev.goodbye.Reason))
			return
		}
		if l.goodbyeSeen {
			log.Debug().Msg("repeated goodbye ignored")
			return
		}
		l.goodbyeSeen = true
		n.alternatives = n.usable(alts, l.target)
		from := "its alternatives"
		if len(n.alternatives) == 0 {
			// REPRAM may name only dead peers or none: fall back on every
			// substrate learned so far.
			n.alternatives, from = n.usable(n.known, l.target), "known substrates"
		}
		n.pol.Forced()
		if len(n.alternatives) == 0 {
			log.Warn().Str("reason", ev.goodbye.Reason).Msg("primary said goodbye and no other substrate is known: keeping it until it closes, then rejoining")
			return
		}
		n.fire(fsm.Goodbye, fmt.Sprintf("%s said goodbye %q: trying %d of %s", l.target.ID, ev.goodbye.Reason, len(n.alternatives), from))
	case evGossip:
		if isCandidate && !l.welcomed {
			<-n.env.credits
			n.rejectFrame(l, true, log, fmt.Errorf("%s before welcome", ev.typ))
			return
		}
		if age := time.Since(time.Unix(ev.msg.Timestamp, 0)); n.cfg.MaxMessageAge > 0 && age > n.cfg.MaxMessageAge {
			// Not a link fault: a substrate may forward an old message in
			// good faith, so the link is kept and the message alone dropped.
			<-n.env.credits
			n.stats.TooOld++
			log.Warn().Str("message_id", ev.msg.MessageID).Int64("timestamp", ev.msg.Timestamp).
				Dur("age", age).Dur("max_age", n.cfg.MaxMessageAge).
				Msg("gossip dropped: older than MaxMessageAge (a replay past the dedup window, or a publisher clock far behind)")
			return
		}
		n.onGossip(l, isCandidate, ev)
	case evBadFrame:
		n.rejectFrame(l, isCandidate, log, ev.err)
	case evClosed:
		if isCandidate {
			n.fire(fsm.NewFailed, fmt.Sprintf("candidate %s failed: %v", l.target.URL, ev.err))
		} else {
			n.fire(fsm.OldDied, fmt.Sprintf("primary %s died: %v", l.target.ID, ev.err))
		}
	}
}

// rejectFrame counts and logs a frame the protocol does not allow. A
// candidate that sends one is dropped; the primary is kept and the frame
// alone is discarded.
func (n *Node) rejectFrame(l *link, isCandidate bool, log zerolog.Logger, err error) {
	n.stats.FramesRejected++
	log.Warn().Err(err).Bool("candidate", isCandidate).Msg("frame rejected")
	if isCandidate {
		n.fire(fsm.NewFailed, fmt.Sprintf("candidate %s sent a bad frame: %v", l.target.URL, err))
	}
}

func (n *Node) onGossip(l *link, fromCandidate bool, ev linkEvent) {
	now := ev.at // when the link read it, not when the loop got to it
	id := ev.msg.MessageID
	if n.ov != nil {
		if fromCandidate {
			n.ov.fromNew(id)
		} else {
			n.ov.fromOld(id, now)
		}
	}
	if id != "" && n.seen.Seen(id, now) {
		n.stats.DuplicatesDropped++
		<-n.env.credits
	} else {
		n.stats.Delivered++
		n.out <- &Gossip{Type: ev.typ, Message: ev.msg, Via: l.target.ID} // never blocks: credits bound it
	}
	if fromCandidate {
		n.checkCaughtUp()
	}
}

// learn remembers a substrate for rejoining.
func (n *Node) learn(s Substrate) {
	if s.URL == "" || s.ID == n.cfg.Identity.NodeID {
		return
	}
	for i, k := range n.known {
		if (s.ID != "" && k.ID == s.ID) || k.URL == s.URL {
			if k.ID == "" {
				n.known[i].ID = s.ID
			}
			return
		}
	}
	n.known = append(n.known, s)
}

// usable filters a goodbye's alternatives: not this node, not the substrate
// being left, not the same substrate twice.
func (n *Node) usable(alts []Substrate, leaving Substrate) []Substrate {
	var out []Substrate
	for _, a := range alts {
		if a.ID == n.cfg.Identity.NodeID || a.ID == leaving.ID || a.URL == leaving.URL ||
			slices.ContainsFunc(out, func(o Substrate) bool { return o.ID == a.ID }) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// nextAlternative pops the first alternative; the zero Substrate when none
// is left, whose dial then fails and cancels the migration.
func (n *Node) nextAlternative() Substrate {
	if len(n.alternatives) == 0 {
		return Substrate{}
	}
	a := n.alternatives[0]
	n.alternatives = n.alternatives[1:]
	return a
}

// scheduleRejoin attaches again after the backoff, trying known substrates
// in turn; the backoff doubles up to RejoinBackoffMax and resets on a join.
func (n *Node) scheduleRejoin() {
	if len(n.known) == 0 {
		n.log.Warn().Msg("detached and no substrate known: waiting for Attach")
		return
	}
	d := n.backoff
	n.backoff = min(2*n.backoff, n.cfg.RejoinBackoffMax)
	stopTimer(n.rejoinTimer)
	n.rejoinTimer = time.AfterFunc(d, func() {
		n.enqueue(func() {
			if n.m.State() != fsm.Detached || len(n.known) == 0 {
				return
			}
			n.target = n.known[n.rejoinNext%len(n.known)]
			n.rejoinNext++
			n.stats.Rejoins++
			n.fire(fsm.Attach, fmt.Sprintf("rejoin %s after %v", n.target.URL, d))
		})
	})
}

// substrateURL builds the attachment URL of a substrate announced by address
// and HTTP port, with the scheme of the link that announced it.
func substrateURL(via, address string, httpPort int) string {
	scheme := "ws"
	if u, err := url.Parse(via); err == nil && u.Scheme == "wss" {
		scheme = "wss"
	}
	return scheme + "://" + net.JoinHostPort(address, strconv.Itoa(httpPort)) + "/v1/ws"
}
