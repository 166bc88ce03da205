package engine

import (
	"fmt"
	"testing"
	"time"
)

// The catch-up rule of overlap.check, arrival by arrival, with a fixed
// margin of 100ms and the welcome at t0.
func TestOverlapCheck(t *testing.T) {
	const m = 100 * time.Millisecond
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	type arrival struct {
		at  int // ms after the welcome
		old bool
		id  string
	}
	type probe struct {
		at      int
		done    bool
		readyAt int // -1: zero
		behind  int
	}
	steady := func(n, every, lag int, onNew bool) []arrival {
		var out []arrival
		for k := range n {
			out = append(out, arrival{k * every, true, fmt.Sprint("m", k)})
			if onNew {
				out = append(out, arrival{k*every + lag, false, fmt.Sprint("m", k)})
			}
		}
		return out
	}
	tests := []struct {
		name     string
		dead     bool // the new link never answered a ping
		arrivals []arrival
		probes   []probe
	}{
		{name: "quiet: the boundary (welcome + margin), nothing to check",
			probes: []probe{{99, false, 100, 0}, {100, true, -1, 0}}},
		{name: "no pong from the new link: never", dead: true,
			probes: []probe{{100, false, -1, 0}, {10_000, false, -1, 0}}},
		{name: "an exempt message missing from the new link does not hold the switch",
			arrivals: []arrival{{50, true, "m0"}, {99, true, "m1"}},
			probes:   []probe{{299, false, 300, 0}, {300, true, -1, 0}}},
		{name: "the boundary itself is not exempt: missing a margin is behind",
			arrivals: []arrival{{100, true, "m1"}},
			probes:   []probe{{199, false, 300, 0}, {200, false, -1, 1}, {5000, false, -1, 1}}},
		{name: "in flight less than a margin, then arrived: the common id moves the boundary",
			arrivals: []arrival{{100, true, "m1"}, {150, false, "m1"}},
			probes:   []probe{{150, false, 400, 0}, {399, false, 400, 0}, {400, true, -1, 0}}},
		{name: "the first common id moves the boundary",
			arrivals: []arrival{{10, true, "m0"}, {300, true, "m1"}, {320, false, "m1"}, {350, true, "m2"}, {400, true, "m3"}},
			probes: []probe{
				{320, false, 600, 0}, // boundary 300+100; m0 exempt (old before the new substrate knew us)
				{351, false, 600, 0}, // m2 before the boundary: exempt
				{499, false, 600, 0}, // m3 at the boundary, missing for less than a margin: in flight
				{500, false, -1, 1},  // m3 missing for a margin
			}},
		{name: "the earliest common id counts",
			arrivals: []arrival{{20, true, "m1"}, {40, true, "m2"}, {60, false, "m2"}, {70, false, "m1"}, {119, true, "m3"}, {120, true, "m4"}},
			probes: []probe{
				{120, false, 320, 0}, // boundary 20+100: m3 exempt, m4 past it
				{219, false, 320, 0},
				{220, false, -1, 1},
			}},
		{name: "new link first: never pending",
			arrivals: []arrival{{10, false, "m1"}, {30, true, "m1"}, {200, false, "m2"}, {205, true, "m2"}},
			probes:   []probe{{129, false, 330, 0}, {330, true, -1, 0}}},
		{name: "steady stream, new link 30ms behind: some message is always in flight, and that holds nothing",
			arrivals: steady(100, 10, 30, true),
			probes:   []probe{{299, false, 300, 0}, {300, true, -1, 0}, {990, true, -1, 0}}},
		{name: "steady stream, new link forwards nothing: never",
			arrivals: steady(100, 10, 0, false),
			probes:   []probe{{199, false, 300, 0}, {200, false, -1, 1}, {990, false, -1, 80}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := newOverlap(7, t0, !tc.dead)
			i := 0
			for _, p := range tc.probes {
				for ; i < len(tc.arrivals) && tc.arrivals[i].at <= p.at; i++ {
					a := tc.arrivals[i]
					if a.old {
						o.fromOld(a.id, "", ms(a.at))
					} else {
						o.fromNew(a.id, "", ms(a.at))
					}
				}
				done, readyAt, behind := o.check(ms(p.at), m)
				want := time.Time{}
				if p.readyAt >= 0 {
					want = ms(p.readyAt)
				}
				if done != p.done || !readyAt.Equal(want) || behind != p.behind {
					t.Errorf("at %dms: done %v readyAt %v behind %d; want %v %v %d", p.at, done,
						readyAt.Sub(t0), behind, p.done, want.Sub(t0), p.behind)
				}
			}
		})
	}
}

func TestOverlapSkewSamples(t *testing.T) {
	o := newOverlap(1, t0, true)
	at := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	steps := []struct {
		old   bool
		id    string
		at    int
		skew  time.Duration
		isNew bool // a sample is returned
	}{
		{true, "m1", 10, 0, false},
		{false, "m1", 25, 15 * time.Millisecond, true}, // new after old: positive
		{false, "m2", 30, 0, false},
		{true, "m2", 38, -8 * time.Millisecond, true}, // new before old: negative
		{true, "m2", 40, 0, false},                    // a repeat on the old link: pending again, no sample
		{true, "", 50, 0, false},                      // no id: not tracked
		{false, "", 50, 0, false},
	}
	for _, s := range steps {
		var skew time.Duration
		var ok bool
		if s.old {
			skew, ok = o.fromOld(s.id, "", at(s.at))
		} else {
			skew, ok = o.fromNew(s.id, "", at(s.at))
		}
		if ok != s.isNew || skew != s.skew {
			t.Errorf("%q at %dms (old %v): skew %v %v, want %v %v", s.id, s.at, s.old, skew, ok, s.skew, s.isNew)
		}
	}
	if !o.common.Equal(at(10)) {
		t.Errorf("common %v, want the earliest old arrival of a shared id, 10ms", o.common.Sub(t0))
	}
}

func TestSkewMargin(t *testing.T) {
	ms := time.Millisecond
	const floor, grace = 50 * time.Millisecond, time.Second
	tests := []struct {
		name    string
		samples []time.Duration
		want    time.Duration
	}{
		{"no sample: grace", nil, grace},
		{"one sample: 2·(s + 4·s/2) + floor", []time.Duration{10 * ms}, 110 * ms},
		{"absolute value", []time.Duration{-10 * ms}, 110 * ms},
		{"zero skew: the floor", []time.Duration{0}, floor},
		{"bounded by grace", []time.Duration{500 * ms}, grace},
		// mean 10 + (18-10)/8 = 11, deviation 5 + (8-5)/4 = 5.75: 2·(11 + 23) + 50.
		{"smoothed as RFC 6298", []time.Duration{10 * ms, 18 * ms}, 118 * ms},
		{"a steady skew narrows the deviation", []time.Duration{10 * ms, 10 * ms, 10 * ms, 10 * ms}, 2*(10*ms+4*(5*ms*27/64)) + floor},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s skewEstimate
			for _, x := range tc.samples {
				s.add(x)
			}
			got := s.margin(floor, grace)
			if got != tc.want {
				t.Errorf("margin %v, want %v", got, tc.want)
			}
			if got < floor || got > grace {
				t.Errorf("margin %v outside [%v, %v]", got, floor, grace)
			}
		})
	}
}

// TestOverlapOrigins: once the new link proved it forwards (a message seen
// on both links), a message from an origin it never delivered (its own
// substrate's writes, which REPRAM does not forward to its own children,
// or a publisher its partial mesh never hears) holds nothing; before such
// proof, every message past the boundary counts.
func TestOverlapOrigins(t *testing.T) {
	const margin = 100 * time.Millisecond
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	tests := []struct {
		name       string
		common     bool // the new link also delivers the publisher's messages
		wantBehind int
	}{
		{"the new substrate's own writes, after a common message: nothing behind", true, 0},
		{"no message in common yet: the new link's silence counts", false, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := newOverlap(2, t0, true)
			if tc.common {
				o.fromOld("p1", "publisher", at(10))
				o.fromNew("p1", "publisher", at(15))
			}
			o.fromOld("own1", "sub-new", at(300))
			o.fromOld("own2", "sub-new", at(400))
			done, _, behind := o.check(at(1000), margin)
			if behind != tc.wantBehind || done != (tc.wantBehind == 0) {
				t.Fatalf("done %t behind %d, want behind %d", done, behind, tc.wantBehind)
			}
		})
	}
	t.Run("a heard origin's message missing for a margin is behind", func(t *testing.T) {
		o := newOverlap(2, t0, true)
		o.fromOld("p1", "publisher", at(10))
		o.fromNew("p1", "publisher", at(15))
		o.fromOld("p2", "publisher", at(300))
		if done, _, behind := o.check(at(1000), margin); done || behind != 1 {
			t.Fatalf("done %t behind %d, want not done, 1 behind", done, behind)
		}
	})
}
