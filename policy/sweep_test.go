package policy

import (
	"flag"
	"fmt"
	"slices"
	"testing"
)

// The numbers in docs/policy-filter.md come from this sweep over more seeds
// than the tests use:
//
//	go test ./policy -run TestNoiseSweep -noise-sweep -v
//	go test ./policy -run TestNoiseSweep -noise-sweep -noise-seeds 100 -v
var (
	noiseSweep      = flag.Bool("noise-sweep", false, "replay many seeds of every noise class and print the summary")
	noiseSweepSeeds = flag.Int("noise-seeds", 30, "seeds per noise class for -noise-sweep")
)

func TestNoiseSweep(t *testing.T) {
	if !*noiseSweep {
		t.Skip("run with -noise-sweep")
	}
	seeds := uint64(*noiseSweepSeeds)
	t.Logf("%d seeds of %d cycles per class; reactions in cycles: min/p50/max (runs that never migrated)", seeds, noiseCycles)
	t.Logf("%-12s %-20s %-20s %-20s %-6s %-5s %-10s", "class", "equal: filt/raw/naive",
		"step to 50%", "step to 70%", "75%", "home", "lure 1st/2nd")
	for _, c := range noiseClasses {
		var eq [3]int
		var react [2][]int
		mig75, home, lure1, lure2 := 0, 0, 0, 0
		for seed := uint64(1); seed <= seeds; seed++ {
			tr := noiseTrace{class: c, cycles: noiseCycles, seed: seed}.trace()
			for i, r := range []Report{replay(t, tr, Config{}, Hysteresis),
				replay(t, tr, Config{Filter: FilterNone}, Hysteresis), replay(t, tr, Config{}, Naive)} {
				eq[i] += r.Migrations
			}
			for i, f := range []float64{0.5, 0.7, 0.75} {
				r := replay(t, noiseTrace{class: c, cycles: noiseCycles, seed: seed, stepAt: 500, frac: f}.trace(), Config{}, Hysteresis)
				if i < 2 {
					react[i] = append(react[i], r.ReactionCycles[0])
				} else if r.Migrations > 0 {
					mig75++
				}
			}
			r := replay(t, noiseTrace{class: c, cycles: noiseCycles, seed: seed, stepAt: 500, home: true}.trace(), Config{}, Hysteresis)
			home = max(home, r.ReactionCycles[0])
			if c.name != "loopback" {
				first, second := halves(replay(t, noiseTrace{class: c, cycles: noiseCycles, seed: seed, frac: 0.5, lure: 4}.trace(), Config{}, Hysteresis))
				lure1, lure2 = lure1+first, lure2+second
			}
		}
		t.Logf("%-12s %-20s %-20s %-20s %-6s %-5d %d/%d", c.name, fmt.Sprintf("%d/%d/%d", eq[0], eq[1], eq[2]),
			span(react[0]), span(react[1]), fmt.Sprintf("%d/%d", mig75, seeds), home, lure1, lure2)
	}
}

// span summarises reaction cycles as "min/p50/max (never n)"; the median is
// over the runs that migrated.
func span(rs []int) string {
	var took []int
	for _, r := range rs {
		if r >= 0 {
			took = append(took, r)
		}
	}
	never := len(rs) - len(took)
	if len(took) == 0 {
		return fmt.Sprintf("- (%d)", never)
	}
	slices.Sort(took)
	return fmt.Sprintf("%d/%d/%d (%d)", took[0], took[len(took)/2], took[len(took)-1], never)
}
