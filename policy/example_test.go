package policy_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/repram/handover/policy"
)

func Example() {
	ev, err := policy.New(policy.Config{}) // the defaults: the seed's thresholds on filtered latencies
	if err != nil {
		panic(err)
	}
	ev.Attached("s1") // joined s1: cooldown starts
	cur := policy.Measurement{ID: "s1", Enclave: "eu", Latency: 40 * time.Millisecond}
	for cycle, s2 := range []time.Duration{40, 39, 41, 20, 20, 20} {
		d := ev.Evaluate(policy.Snapshot{
			Enclave: "eu",
			Current: cur,
			Candidates: []policy.Measurement{
				{ID: "s2", Address: "10.0.0.2:8080", Enclave: "eu", Latency: s2 * time.Millisecond},
			},
		})
		line := fmt.Sprintf("cycle %d: s2 %dms", cycle+1, s2)
		if d.Event != "" {
			line += " -> " + string(d.Event) + " " + d.Candidate.ID
		}
		fmt.Println(strings.TrimSpace(line))
	}
	// Cycle 1 ends the partial cycle of the join and cycle 2 is the
	// cooldown, while the filter learns both substrates. s2's drop to 20ms
	// is far beyond its noise and taken at once, but after three samples
	// the filter still assumes a lot of noise: one sample at 20ms is not
	// enough, the second is. s2 qualifies in cycles 5 and 6.

	// Output:
	// cycle 1: s2 40ms
	// cycle 2: s2 39ms -> cooldown_elapsed
	// cycle 3: s2 41ms
	// cycle 4: s2 20ms
	// cycle 5: s2 20ms
	// cycle 6: s2 20ms -> candidate_better s2
}

func ExampleReplay() {
	trace := `# s2 becomes twice as fast at cycle 4
@enclave eu
@start s1
@step 4
cycle,substrate,enclave,latency
1,s1,eu,40ms
1,s2,eu,45ms
2,s1,eu,40ms
2,s2,eu,45ms
3,s1,eu,40ms
3,s2,eu,45ms
4,s1,eu,40ms
4,s2,eu,20ms
5,s1,eu,40ms
5,s2,eu,20ms
6,s1,eu,40ms
6,s2,eu,20ms
7,s1,eu,40ms
7,s2,eu,-
`
	tr, err := policy.ParseTrace(strings.NewReader(trace))
	if err != nil {
		panic(err)
	}
	for _, run := range []struct {
		s   policy.Strategy
		cfg policy.Config
	}{
		{policy.Hysteresis, policy.Config{}},                          // the default: filtered
		{policy.Hysteresis, policy.Config{Filter: policy.FilterNone}}, // the seed's rule on raw samples
		{policy.Naive, policy.Config{}},
	} {
		r, err := policy.Replay(tr, run.cfg, run.s)
		if err != nil {
			panic(err)
		}
		fmt.Println(r)
	}
	// Three samples of s1 are too few to know its noise well, so the filter
	// waits for the second sample at 20ms before counting s2 as better.
	// Output:
	// hysteresis/robust: 1 migrations, 0 ping-pongs, 0 forced, 3/7 cycles on a non-best substrate, reaction [3] cycles, ends on s2
	// hysteresis/none: 1 migrations, 0 ping-pongs, 0 forced, 2/7 cycles on a non-best substrate, reaction [2] cycles, ends on s2
	// naive: 1 migrations, 0 ping-pongs, 0 forced, 1/7 cycles on a non-best substrate, reaction [1] cycles, ends on s2
}
