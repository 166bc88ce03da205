// Package ledger writes keys to REPRAM substrates over their HTTP API while
// a transient node runs, and accounts honestly for what the node was owed
// and what it received.
//
// A write is owed to the node only if it reached a substrate while the
// node was attached to that substrate for the whole time the write could
// have arrived there (from the PUT to its answer plus a slack). Where a
// write reached is read from the substrates themselves at the end
// (GET /v1/keys?prefix=, plus snapshots taken before a substrate is killed);
// when the node was attached comes from its transitions. The substrate a
// write was made on never counts: REPRAM does not forward its own HTTP
// writes to its own children. Writes that reached no substrate the node was
// attached to (REPRAM's partial mesh, or the node had no link) are
// reported as not reached, not as lost.
//
// Writes keep flowing while the node is detached. Writers are chosen among
// substrates that answered recently and whose topology includes the node's
// primary; a substrate that fails a request is skipped for a while, and
// every request is bounded, so a dead or stopped substrate never blocks the
// load. Several writers run at once so the asked rate is met.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport"
)

// Substrate is one REPRAM substrate the ledger writes to and reads from.
type Substrate struct {
	ID   string // its node id (what welcomes and transitions name)
	HTTP string // HOST:PORT of its HTTP API
}

// Config configures a [Ledger].
type Config struct {
	Substrates []Substrate
	// Prefix starts every key written; it must be unique to the run so
	// that keys left by earlier runs are not counted.
	Prefix string
	// Rate is the writes a second to make; 0 makes none (the ledger then
	// only accounts).
	Rate float64
	// Writers is how many writes may be in flight at once; default
	// max(16, Rate/2), enough when a PUT's quorum takes up to 500 ms.
	Writers int
	// TTL is each write's X-TTL in seconds; default 300 (REPRAM's minimum).
	TTL int
	// Timeout bounds every HTTP request but a PUT; default 1s.
	Timeout time.Duration
	// PutTimeout bounds a PUT, which REPRAM answers after a quorum of
	// acks (its own bound is 5 s); default 2s.
	PutTimeout time.Duration
	// Poll is how often each substrate's topology is read (liveness and
	// mesh); default 500ms.
	Poll time.Duration
	// Skip is how long a substrate that failed a request is not written to;
	// default 1s.
	Skip time.Duration
	// Slack is how long after a PUT's answer the write may still reach a
	// substrate; default 300ms.
	Slack time.Duration
	// Spread writes on every alive substrate but the primary in turn,
	// whatever their topology, as a client unaware of the mesh would: in a
	// partial mesh some writes then never reach the node.
	Spread bool
	// Node returns the substrates the node is attached to (primary) and
	// migrating to (candidate), "" for none: writers avoid both and prefer
	// substrates whose topology includes the primary. Nil: no preference.
	Node func() (primary, candidate string)
}

// write is one PUT.
type write struct {
	key        string
	origin     string // substrate id it was made on
	start, end time.Time
	failed     bool
}

// span is one interval during which the node was attached to a substrate.
type span struct {
	id       string
	from, to time.Time // to is zero while open
}

// Ledger runs the writes and keeps the books. Create it with [New], feed it
// the node's gossip ([Ledger.Delivered]) and transitions
// ([Ledger.Transition]), [Ledger.Start] and [Ledger.Stop] the writes, and
// read the [Report].
type Ledger struct {
	cfg    Config
	client *Client

	mu        sync.Mutex
	writes    []write
	delivered map[string]int // key → handler calls
	byID      map[string]int // message id → handler calls
	spans     []span
	attached  map[string]int // open spans by substrate id → index in spans
	firstAt   time.Time      // first attachment
	holdings  map[string]map[string]bool
	noKeys    map[string]bool            // substrates that do not serve /v1/keys
	peers     map[string]map[string]bool // each substrate's peers at the last poll
	mesh      map[string]map[string]bool // every peer each substrate ever named
	skipUntil map[string]time.Time
	avoid     map[string]bool // not written on unless nothing else is alive
	dropped   int             // ticks with every writer busy
	noWriter  int             // ticks with no substrate to write on
	startAt   time.Time
	stopAt    time.Time

	seq    atomic.Int64
	next   atomic.Int64
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New validates cfg and returns a ledger that has written nothing yet.
func New(cfg Config) (*Ledger, error) {
	if len(cfg.Substrates) == 0 {
		return nil, errors.New("ledger: no substrate given: name every substrate of the cluster")
	}
	if cfg.Prefix == "" {
		return nil, errors.New("ledger: empty Prefix: give each run a unique key prefix")
	}
	if cfg.Rate < 0 || math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0) {
		return nil, fmt.Errorf("ledger: Rate %v: want writes a second, 0 or more", cfg.Rate)
	}
	for _, s := range cfg.Substrates {
		if s.ID == "" || s.HTTP == "" {
			return nil, fmt.Errorf("ledger: substrate %+v: want both its id and its HTTP HOST:PORT", s)
		}
	}
	if cfg.Writers <= 0 {
		cfg.Writers = max(16, int(cfg.Rate/2))
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 300
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Timeout, time.Second)
	def(&cfg.PutTimeout, 2*time.Second)
	def(&cfg.Poll, 500*time.Millisecond)
	def(&cfg.Skip, time.Second)
	def(&cfg.Slack, 300*time.Millisecond)
	return &Ledger{cfg: cfg, client: NewClient(cfg.Timeout), delivered: map[string]int{}, byID: map[string]int{},
		attached: map[string]int{}, holdings: map[string]map[string]bool{}, noKeys: map[string]bool{},
		peers: map[string]map[string]bool{}, mesh: map[string]map[string]bool{}, skipUntil: map[string]time.Time{}, avoid: map[string]bool{}}, nil
}

// Client returns the bounded HTTP client the ledger uses.
func (l *Ledger) Client() *Client { return l.client }

// Delivered records one handler call of the node; gossip whose key does
// not start with the prefix is ignored.
func (l *Ledger) Delivered(g transport.Gossip) {
	if !strings.HasPrefix(g.Message.Key, l.cfg.Prefix) {
		return
	}
	l.mu.Lock()
	l.delivered[g.Message.Key]++
	if g.Message.MessageID != "" {
		l.byID[g.Message.MessageID]++
	}
	l.mu.Unlock()
}

// Transition records where the node is attached after tr: its primary,
// and its candidate once welcomed (overlapping), both deliver.
func (l *Ledger) Transition(tr transport.Transition) {
	now := map[string]bool{}
	if tr.Primary != "" {
		now[tr.Primary] = true
	}
	if tr.Candidate != "" && tr.Step.To == fsm.Overlapping {
		now[tr.Candidate] = true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, i := range l.attached {
		if !now[id] {
			l.spans[i].to = tr.At
			delete(l.attached, id)
		}
	}
	for id := range now {
		if _, ok := l.attached[id]; !ok {
			l.attached[id] = len(l.spans)
			l.spans = append(l.spans, span{id: id, from: tr.At})
			if l.firstAt.IsZero() {
				l.firstAt = tr.At
			}
		}
	}
}

// Start starts polling the substrates and, with a Rate, writing. It
// returns at once; [Ledger.Stop] ends both.
func (l *Ledger) Start(ctx context.Context) {
	ctx, l.cancel = context.WithCancel(ctx)
	l.mu.Lock()
	l.startAt = time.Now()
	l.mu.Unlock()
	l.pollAll(ctx)
	l.wg.Go(func() { l.poller(ctx) })
	if l.cfg.Rate <= 0 {
		return
	}
	tokens := make(chan struct{}, l.cfg.Writers)
	for range l.cfg.Writers {
		l.wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-tokens:
					l.writeOne(ctx)
				}
			}
		})
	}
	l.wg.Go(func() {
		period := time.Duration(float64(time.Second) / l.cfg.Rate)
		start := time.Now()
		for i := int64(1); ; i++ {
			// Scheduled from the start, not from the last tick, so a slow
			// moment is made up for.
			if d := time.Until(start.Add(time.Duration(i) * period)); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			} else if ctx.Err() != nil {
				return
			}
			select {
			case tokens <- struct{}{}:
			default:
				l.mu.Lock()
				l.dropped++
				l.mu.Unlock()
			}
		}
	})
}

// Stop ends the writes and the polling and waits for writes in flight
// (each bounded by Timeout).
func (l *Ledger) Stop() {
	if l.cancel == nil {
		return
	}
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	if l.stopAt.IsZero() {
		l.stopAt = time.Now()
	}
	l.mu.Unlock()
}

func (l *Ledger) poller(ctx context.Context) {
	t := time.NewTicker(l.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.pollAll(ctx)
		}
	}
}

// pollAll reads every substrate's topology: a substrate that answers is
// alive; one that does not is skipped for a while.
func (l *Ledger) pollAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, s := range l.cfg.Substrates {
		wg.Go(func() {
			topo, err := l.client.Topology(ctx, s.HTTP)
			l.mu.Lock()
			defer l.mu.Unlock()
			switch {
			case errors.Is(err, ErrNotServed):
				// An emulator without /v1/topology: alive, peers unknown.
			case err != nil:
				l.skipUntil[s.ID] = time.Now().Add(l.cfg.Skip)
				return
			default:
				now, seen := map[string]bool{}, l.mesh[s.ID]
				if seen == nil {
					seen = map[string]bool{}
					l.mesh[s.ID] = seen
				}
				for _, peer := range topo.Peers {
					now[peer.ID], seen[peer.ID] = true, true
				}
				l.peers[s.ID] = now
			}
			if time.Now().After(l.skipUntil[s.ID]) {
				delete(l.skipUntil, s.ID)
			}
		})
	}
	wg.Wait()
}

// pick chooses where the next write goes, round robin among alive
// substrates that are neither the node's primary nor its candidate nor
// avoided: first those whose topology includes the primary and the
// candidate (so the write reaches both links of a migration), then those
// that include the primary, then any. Never the candidate: see Avoid.
func (l *Ledger) pick() (Substrate, bool) {
	prim, cand := "", ""
	if l.cfg.Node != nil {
		prim, cand = l.cfg.Node()
	}
	n := len(l.cfg.Substrates)
	off := int(l.next.Add(1))
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	first := 0
	if l.cfg.Spread {
		first = 2
	}
	for pass := first; pass < 3; pass++ {
		for i := range n {
			s := l.cfg.Substrates[(off+i)%n]
			if now.Before(l.skipUntil[s.ID]) || s.ID == prim {
				continue
			}
			if s.ID == cand || l.avoid[s.ID] {
				continue
			}
			if peers := l.peers[s.ID]; peers != nil && ((pass < 2 && prim != "" && !peers[prim]) || (pass == 0 && cand != "" && !peers[cand])) {
				continue
			}
			return s, true
		}
	}
	return Substrate{}, false
}

// Avoid stops writing on the substrates ids (unless nothing else is
// alive), replacing the previous set. Give it the target of a planned
// migration a moment before it starts: REPRAM never forwards a write made
// on a substrate to that substrate's children, so a write made on the new
// substrate that reaches the old one late (REPRAM's fan-out is sequential
// and slow under load) can never arrive on the new link, and transport's
// catch-up check then waits for it until OverlapMax.
func (l *Ledger) Avoid(ids ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.avoid)
	for _, id := range ids {
		l.avoid[id] = true
	}
}

func (l *Ledger) writeOne(ctx context.Context) {
	s, ok := l.pick()
	if !ok {
		l.mu.Lock()
		l.noWriter++
		l.mu.Unlock()
		return
	}
	key := fmt.Sprintf("%s%08d", l.cfg.Prefix, l.seq.Add(1))
	w := write{key: key, origin: s.ID, start: time.Now()}
	pctx, cancel := context.WithTimeout(ctx, l.cfg.PutTimeout)
	err := l.client.put(pctx, s.HTTP, key, []byte("handover"), l.cfg.TTL)
	cancel()
	w.end, w.failed = time.Now(), err != nil
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.skipUntil[s.ID] = time.Now().Add(l.cfg.Skip)
		if ctx.Err() != nil {
			return // cut short by Stop: not a write
		}
	}
	l.writes = append(l.writes, w)
}

// Snapshot records which of the run's keys the substrate id holds now.
// Call it before killing a substrate: afterwards it cannot be asked.
func (l *Ledger) Snapshot(ctx context.Context, id string) error {
	i := slices.IndexFunc(l.cfg.Substrates, func(s Substrate) bool { return s.ID == id })
	if i < 0 {
		return fmt.Errorf("ledger: snapshot: unknown substrate %q", id)
	}
	// Listing keys is slower than the other requests on a busy substrate.
	ctx, cancel := context.WithTimeout(ctx, 5*l.cfg.Timeout)
	defer cancel()
	keys, err := l.client.Keys(ctx, l.cfg.Substrates[i].HTTP, l.cfg.Prefix)
	l.mu.Lock()
	defer l.mu.Unlock()
	if errors.Is(err, ErrNotServed) {
		l.noKeys[id] = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("ledger: snapshot of %s: %w", id, err)
	}
	h := l.holdings[id]
	if h == nil {
		h = map[string]bool{}
		l.holdings[id] = h
	}
	for _, k := range keys {
		h[k] = true
	}
	return nil
}
