package ledger

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Report is the honest account of a run.
type Report struct {
	AskedRate    float64 `json:"asked_rate"`    // writes a second asked for
	AchievedRate float64 `json:"achieved_rate"` // writes a second made
	Published    int     `json:"published"`     // PUTs made (answered or not)
	Refused      int     `json:"refused"`       // PUTs that failed or timed out; still accounted where they landed
	RateMisses   int     `json:"rate_misses"`   // writes not made: every writer busy, or no substrate alive

	// ReachedAttached counts writes that reached a substrate (not the one
	// they were made on) at a time the node was attached to it, at least
	// for part of the write's window.
	ReachedAttached int `json:"reached_attached_substrate"`
	// Owed counts writes that reached a substrate the node was attached to
	// for the whole window: the node must deliver them.
	Owed      int `json:"owed"`
	Delivered int `json:"delivered"` // owed and delivered
	Lost      int `json:"lost"`      // owed and never delivered
	// Edge counts writes that reached an attached substrate only around an
	// attachment change (the link opened or closed within the window):
	// neither owed nor lost.
	Edge int `json:"edge"`
	// NotReached counts writes that reached no substrate while the node
	// was attached to it: REPRAM's partial mesh, writes made while the node
	// had no link, writes held only by substrates that could not be read.
	NotReached     int `json:"not_reached"`
	WhileDetached  int `json:"published_while_detached"` // made while the node had no link
	DeliveredTotal int `json:"delivered_total"`          // distinct written keys delivered, owed or not
	Duplicates     int `json:"duplicates"`               // handler calls for an id already delivered

	NoLinkMs        float64 `json:"no_link_ms"`         // time without any link since the first attachment
	LongestNoLinkMs float64 `json:"longest_no_link_ms"` // the longest such stretch

	WritesBySubstrate map[string]int      `json:"writes_by_substrate"`
	Mesh              map[string][]string `json:"mesh"`              // every peer each substrate named (GET /v1/topology)
	Unread            []string            `json:"unread,omitempty"`  // substrates whose keys could never be read
	Assumed           []string            `json:"assumed,omitempty"` // substrates without /v1/keys: assumed to hold every write made elsewhere
	LostKeys          []string            `json:"lost_keys,omitempty"`
}

// Report reads every substrate's keys (those that cannot be read keep the
// snapshots taken earlier) and does the accounts. Call it after
// [Ledger.Stop] and once the node has had time to receive what was written.
func (l *Ledger) Report(ctx context.Context) Report {
	for _, s := range l.cfg.Substrates {
		// A dead one keeps its earlier snapshot; a busy one gets three
		// tries (REPRAM stalls while its fan-out waits on a stopped peer).
		for range 3 {
			if l.Snapshot(ctx, s.ID) == nil || ctx.Err() != nil {
				break
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	end := l.stopAt
	if end.IsZero() {
		end = time.Now()
	}
	r := Report{AskedRate: l.cfg.Rate, Published: len(l.writes), RateMisses: l.dropped + l.noWriter,
		WritesBySubstrate: map[string]int{}, Mesh: map[string][]string{}}
	if d := end.Sub(l.startAt).Seconds(); d > 0 && !l.startAt.IsZero() {
		r.AchievedRate = math.Round(float64(len(l.writes))/d*10) / 10
	}
	for id, p := range l.mesh {
		r.Mesh[id] = slices.Sorted(maps.Keys(p))
	}
	for _, s := range l.cfg.Substrates {
		switch {
		case l.noKeys[s.ID]:
			r.Assumed = append(r.Assumed, s.ID)
		case l.holdings[s.ID] == nil:
			r.Unread = append(r.Unread, s.ID)
		}
	}
	for _, w := range l.writes {
		r.WritesBySubstrate[w.origin]++
		if w.failed {
			r.Refused++
		}
		if !l.attachedAt(w.start) {
			r.WhileDetached++
		}
		owed, reached := false, false
		for _, s := range l.cfg.Substrates {
			if s.ID == w.origin || !(l.holdings[s.ID][w.key] || (l.noKeys[s.ID] && !w.failed)) {
				continue
			}
			a, b := w.start, w.end.Add(l.cfg.Slack)
			owed = owed || l.throughout(s.ID, a, b)
			reached = reached || l.during(s.ID, a, b)
		}
		switch {
		case owed:
			r.Owed++
			if l.delivered[w.key] > 0 {
				r.Delivered++
			} else {
				r.Lost++
				if len(r.LostKeys) < 10 {
					r.LostKeys = append(r.LostKeys, w.key)
				}
			}
		case reached:
			r.Edge++
		default:
			r.NotReached++
		}
		if reached {
			r.ReachedAttached++
		}
		if l.delivered[w.key] > 0 {
			r.DeliveredTotal++
		}
	}
	for _, n := range l.byID {
		r.Duplicates += max(n-1, 0)
	}
	total, longest := l.noLink(end)
	r.NoLinkMs, r.LongestNoLinkMs = ms(total), ms(longest)
	return r
}

func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())/100) / 10 }

// throughout reports whether the node was attached to id for all of [a, b].
func (l *Ledger) throughout(id string, a, b time.Time) bool {
	for _, s := range l.spans {
		if s.id == id && !s.from.After(a) && (s.to.IsZero() || !s.to.Before(b)) {
			return true
		}
	}
	return false
}

// during reports whether the node was attached to id at some time in [a, b].
func (l *Ledger) during(id string, a, b time.Time) bool {
	for _, s := range l.spans {
		if s.id == id && !s.from.After(b) && (s.to.IsZero() || !s.to.Before(a)) {
			return true
		}
	}
	return false
}

// attachedAt reports whether the node had any link at t.
func (l *Ledger) attachedAt(t time.Time) bool {
	for _, s := range l.spans {
		if !s.from.After(t) && (s.to.IsZero() || s.to.After(t)) {
			return true
		}
	}
	return false
}

// noLink sums the stretches without any link between the first attachment
// and end, and returns the longest.
func (l *Ledger) noLink(end time.Time) (total, longest time.Duration) {
	if l.firstAt.IsZero() {
		return 0, 0
	}
	spans := slices.Clone(l.spans)
	slices.SortFunc(spans, func(x, y span) int { return x.from.Compare(y.from) })
	covered := l.firstAt
	for _, s := range spans {
		if s.from.After(end) {
			break // opened after the books were closed
		}
		if s.from.After(covered) {
			gap := s.from.Sub(covered)
			total += gap
			longest = max(longest, gap)
		}
		to := s.to
		if to.IsZero() || to.After(end) {
			to = end
		}
		if to.After(covered) {
			covered = to
		}
	}
	if end.After(covered) {
		gap := end.Sub(covered)
		total += gap
		longest = max(longest, gap)
	}
	return total, longest
}

// MeshString describes the mesh as "a→[b c] b→[a]".
func (r Report) MeshString() string {
	var parts []string
	for _, id := range slices.Sorted(maps.Keys(r.Mesh)) {
		parts = append(parts, fmt.Sprintf("%s→[%s]", id, strings.Join(r.Mesh[id], " ")))
	}
	if len(parts) == 0 {
		return "unknown (no substrate serves /v1/topology)"
	}
	return strings.Join(parts, " ")
}

// String is the report on a few lines, for logs and the command line.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "writes: asked %.0f/s, achieved %.1f/s, published %d, refused %d, rate misses %d, while detached %d\n",
		r.AskedRate, r.AchievedRate, r.Published, r.Refused, r.RateMisses, r.WhileDetached)
	fmt.Fprintf(&b, "account: reached_attached_substrate %d, owed %d, delivered %d, lost %d, edge %d, not_reached %d, duplicates %d (delivered in all %d)\n",
		r.ReachedAttached, r.Owed, r.Delivered, r.Lost, r.Edge, r.NotReached, r.Duplicates, r.DeliveredTotal)
	fmt.Fprintf(&b, "no link: %.1f ms in all, longest %.1f ms\n", r.NoLinkMs, r.LongestNoLinkMs)
	var by []string
	for _, id := range slices.Sorted(maps.Keys(r.WritesBySubstrate)) {
		by = append(by, fmt.Sprintf("%s %d", id, r.WritesBySubstrate[id]))
	}
	fmt.Fprintf(&b, "writes by substrate: %s; mesh: %s", strings.Join(by, ", "), r.MeshString())
	if len(r.Unread) > 0 {
		fmt.Fprintf(&b, "; unread at the end: %s", strings.Join(r.Unread, " "))
	}
	if len(r.Assumed) > 0 {
		fmt.Fprintf(&b, "; no /v1/keys (assumed full mesh): %s", strings.Join(r.Assumed, " "))
	}
	if len(r.LostKeys) > 0 {
		fmt.Fprintf(&b, "\nlost keys (first %d): %s", len(r.LostKeys), strings.Join(r.LostKeys, " "))
	}
	return b.String()
}
