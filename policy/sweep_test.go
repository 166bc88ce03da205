package policy

import (
	"flag"
	"fmt"
	"testing"
)

// The numbers in docs/policy-filter.md come from this sweep over more seeds
// than the tests use:
//
//	go test ./policy -run TestNoiseSweep -noise-sweep -v
var noiseSweep = flag.Bool("noise-sweep", false, "replay 30 seeds of every noise class and print the summary")

func TestNoiseSweep(t *testing.T) {
	if !*noiseSweep {
		t.Skip("run with -noise-sweep")
	}
	const seeds = 30
	t.Logf("%-12s %-22s %-26s %-26s %-8s", "class", "equal means: migrations", "step to 50%: reaction",
		"step to 70%: reaction", "75%: runs")
	t.Logf("%-12s %-22s %-26s %-26s %-8s", "", "filtered/raw/naive", "min..max (never)", "min..max (never)", "migrating")
	for _, c := range noiseClasses {
		var eq [3]int
		var react [2][]int
		mig75 := 0
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
		}
		t.Logf("%-12s %-22s %-26s %-26s %d/%d", c.name, fmt.Sprintf("%d/%d/%d", eq[0], eq[1], eq[2]),
			span(react[0]), span(react[1]), mig75, seeds)
	}
}

// span summarises reaction cycles as "min..max (never n)".
func span(rs []int) string {
	lo, hi, never := 0, 0, 0
	for _, r := range rs {
		if r < 0 {
			never++
			continue
		}
		if lo == 0 || r < lo {
			lo = r
		}
		hi = max(hi, r)
	}
	if lo == 0 {
		return fmt.Sprintf("- (never %d)", never)
	}
	return fmt.Sprintf("%d..%d (never %d)", lo, hi, never)
}
