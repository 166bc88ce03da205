package run

import (
	"context"
	"fmt"
	"sync"

	"github.com/repram/handover/policy"
	"github.com/repram/handover/tools/migsim/internal/scenario"
)

// Comparisons are the runs of migsim compare: ours first, then the
// baselines.
var Comparisons = []Options{
	{Strategy: MakeBeforeBreak, Policy: policy.Hysteresis},
	{Strategy: BreakBeforeMake, Policy: policy.Hysteresis},
	{Strategy: MakeBeforeBreak, Policy: policy.Naive},
}

// Compare runs the scenario over sockets with ours and with each baseline,
// at the same time (each on its own mesh), and returns their results in
// Comparisons' order.
func Compare(ctx context.Context, sc *scenario.Scenario) ([]*Result, error) {
	res := make([]*Result, len(Comparisons))
	errs := make([]error, len(Comparisons))
	var wg sync.WaitGroup
	for i, opt := range Comparisons {
		wg.Go(func() { res[i], errs[i] = Sockets(ctx, sc, opt) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("%s: %w", Comparisons[i].Label(), err)
		}
	}
	return res, nil
}

// CompareVirtual is Compare in virtual time, one run after the other.
func CompareVirtual(sc *scenario.Scenario) ([]*Result, error) {
	res := make([]*Result, len(Comparisons))
	for i, opt := range Comparisons {
		var err error
		if res[i], err = Virtual(sc, opt); err != nil {
			return nil, fmt.Errorf("%s in virtual time: %w", opt.Label(), err)
		}
	}
	return res, nil
}
