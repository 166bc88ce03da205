package transport

import (
	"testing"
	"time"
)

func TestOverlapCatchUp(t *testing.T) {
	t0 := time.Unix(1000, 0)
	grace := 100 * time.Millisecond
	type arrival struct {
		old bool
		id  string
		at  time.Duration // since welcome
	}
	tests := []struct {
		name     string
		alive    bool
		arrivals []arrival // before the mark
		after    []string  // new-link arrivals after the mark
		want     bool
	}{
		{name: "idle overlay, ping answered", alive: true, want: true},
		{name: "idle overlay, no ping yet", alive: false, want: false},
		{name: "old message inside grace is exempt", alive: true,
			arrivals: []arrival{{old: true, id: "a", at: 50 * time.Millisecond}}, want: true},
		{name: "old message after grace must reach new", alive: true,
			arrivals: []arrival{{old: true, id: "a", at: 150 * time.Millisecond}}, want: false},
		{name: "new delivered it first", alive: true,
			arrivals: []arrival{{id: "a", at: 120 * time.Millisecond}, {old: true, id: "a", at: 150 * time.Millisecond}}, want: true},
		{name: "new catches up after the mark", alive: true,
			arrivals: []arrival{{old: true, id: "a", at: 150 * time.Millisecond}, {old: true, id: "b", at: 160 * time.Millisecond}},
			after:    []string{"b", "a"}, want: true},
		{name: "new still one behind", alive: true,
			arrivals: []arrival{{old: true, id: "a", at: 150 * time.Millisecond}, {old: true, id: "b", at: 160 * time.Millisecond}},
			after:    []string{"b"}, want: false},
		{name: "empty ids never block", alive: true,
			arrivals: []arrival{{old: true, id: "", at: 150 * time.Millisecond}}, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := newOverlap(t0, grace, tc.alive)
			for _, a := range tc.arrivals {
				if a.old {
					o.fromOld(a.id, t0.Add(a.at))
				} else {
					o.fromNew(a.id)
				}
			}
			if o.caughtUp() {
				t.Fatal("caught up before the mark")
			}
			o.mark()
			// Old-link arrivals after the mark need no check.
			o.fromOld("late", t0.Add(time.Second))
			for _, id := range tc.after {
				o.fromNew(id)
			}
			if got := o.caughtUp(); got != tc.want {
				t.Fatalf("caughtUp = %v, want %v (behind %d)", got, tc.want, o.behind())
			}
		})
	}
}
