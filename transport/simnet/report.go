package simnet

import (
	"fmt"
	"math/bits"
	"slices"
	"time"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport/engine"
)

// NodeReport is the accounting of one node.
type NodeReport struct {
	ID string
	// Owed counts the messages a substrate forwarded on a link of the
	// node's that was open (registered, not closed by the node) at that
	// moment. Messages still in flight at the end count as owed: run a few
	// round trips past the last publish.
	Owed int
	// Delivered counts distinct messages the engine handed to the embedder.
	Delivered int
	// Lost counts owed messages never delivered.
	Lost int
	// LostHealthy counts the lost messages whose frame the node dropped
	// because it had closed the link while its substrate, and those of the
	// welcomed links it kept, were healthy (alive, running, not leaving,
	// forwarding): losses the engine chose, as opposed to those a failing
	// substrate caused, sometimes by failing right after the engine had
	// checked it.
	LostHealthy int
	// Missed counts messages no substrate forwarded to the node that
	// reached a substrate within MissWindow after the node had left it in
	// a healthy close (LostHealthy's) for another, while the link it kept
	// stayed open and healthy: what a switch made too early cannot have,
	// which Owed does not see. Meaningful in a full mesh.
	Missed int
	// Duplicates counts messages delivered more than once (the engine's
	// dedup must keep it 0).
	Duplicates int
	// WithoutLink is the time, after the first welcome, during which no
	// welcomed link was open on the node's side.
	WithoutLink time.Duration
	// Transitions counts the fsm transitions the engine took.
	Transitions int
	// Rehome is the time from the first goodbye of a substrate's graceful
	// shutdown to the node's next welcome from another substrate, 0 when it
	// already held a welcomed link to another (the last one if several);
	// Rehomes counts them.
	Rehome  time.Duration
	Rehomes int
	// State and Primary are where the node ended.
	State   fsm.State
	Primary string
	Stats   engine.Stats
}

// SubstrateReport is the end state of one substrate.
type SubstrateReport struct {
	ID       string
	Children int // registered children at the end
	Refusals int // hellos answered "at capacity"
	Dead     bool
	Hidden   bool
}

// Report sums up a run.
type Report struct {
	Now       time.Duration
	Published int
	Nodes     []NodeReport
	// Total sums the counters of Nodes (WithoutLink too; Rehome is the
	// maximum).
	Total      NodeReport
	Substrates []SubstrateReport
	// Refusals counts every "at capacity" goodbye.
	Refusals int
	// Rehome holds every rehome time (see NodeReport.Rehome), sorted.
	Rehome []time.Duration
	// Switch holds, sorted, each live switch's time from candidate_better
	// to overlap_done, when the old link is closed.
	Switch []time.Duration
	// UnowedDelivered counts deliveries of messages never forwarded to the
	// node: a simulator defect if ever non-zero.
	UnowedDelivered int
}

// Report returns the accounting so far.
func (s *Sim) Report() Report {
	r := Report{Now: s.Now(), Published: len(s.msgs), Refusals: s.refusals, UnowedDelivered: s.unowedDeliv,
		Nodes: make([]NodeReport, len(s.nodes))}
	for i, n := range s.nodes {
		nr := NodeReport{ID: n.id, Owed: n.nOwed, Delivered: n.nGot, Duplicates: n.dup, Transitions: n.transitions,
			Rehomes: n.rehomes, State: n.eng.State(), Stats: n.eng.Stats()}
		for w, o := range n.owed {
			var g uint64
			if w < len(n.got) {
				g = n.got[w]
			}
			nr.Lost += bits.OnesCount64(o &^ g)
			if w < len(n.droppedHealthy) {
				nr.LostHealthy += bits.OnesCount64(o &^ g & n.droppedHealthy[w])
			}
		}
		for w, m := range n.missedCand {
			if w < len(n.owed) {
				m &^= n.owed[w]
			}
			nr.Missed += bits.OnesCount64(m)
		}
		nr.WithoutLink = time.Duration(n.noLink)
		if n.everLinked && n.noLinkSince >= 0 {
			nr.WithoutLink += time.Duration(s.now - n.noLinkSince)
		}
		if n.rehome >= 0 {
			nr.Rehome = time.Duration(n.rehome)
		}
		if _, p, ok := n.eng.Primary(); ok {
			nr.Primary = p.ID
		}
		r.Nodes[i] = nr
		t := &r.Total
		t.Owed += nr.Owed
		t.Delivered += nr.Delivered
		t.Lost += nr.Lost
		t.LostHealthy += nr.LostHealthy
		t.Missed += nr.Missed
		t.Duplicates += nr.Duplicates
		t.WithoutLink += nr.WithoutLink
		t.Transitions += nr.Transitions
		t.Rehomes += nr.Rehomes
		t.Rehome = max(t.Rehome, nr.Rehome)
	}
	for _, sub := range s.subs {
		r.Substrates = append(r.Substrates, SubstrateReport{ID: sub.cfg.ID, Children: sub.children, Refusals: sub.refusals,
			Dead: sub.dead, Hidden: sub.cfg.Hidden})
	}
	r.Rehome = slices.Sorted(slices.Values(s.rehome))
	r.Switch = slices.Sorted(slices.Values(s.switches))
	return r
}

// Percentile returns the p-th percentile (0–100, nearest rank) of sorted
// durations, 0 for none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p/100*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Load returns the largest and the mean number of children over the live
// substrates nodes can see (not hidden).
func (r Report) Load() (maxChildren int, mean float64) {
	live := 0
	for _, sr := range r.Substrates {
		if !sr.Dead && !sr.Hidden {
			live++
			maxChildren = max(maxChildren, sr.Children)
			mean += float64(sr.Children)
		}
	}
	if live > 0 {
		mean /= float64(live)
	}
	return maxChildren, mean
}

// String is a one-line summary.
func (r Report) String() string {
	return fmt.Sprintf("t=%v published=%d owed=%d delivered=%d lost=%d (healthy %d) dup=%d without_link=%v rehomed=%d rehome_max=%v switches=%d refusals=%d",
		r.Now, r.Published, r.Total.Owed, r.Total.Delivered, r.Total.Lost, r.Total.LostHealthy, r.Total.Duplicates, r.Total.WithoutLink,
		r.Total.Rehomes, r.Total.Rehome, len(r.Switch), r.Refusals)
}
