package policy

import (
	"fmt"
	"testing"
)

// BenchmarkEvaluate measures one evaluation cycle with 1, 10 and 100
// candidates, half of which qualify every cycle, with the robust filter (the
// default) and on raw samples, in the same run: compare the two as a ratio,
//
//	go test ./policy -run '^$' -bench Evaluate -count 5
//
// since absolute times depend on the machine and its load.
func BenchmarkEvaluate(b *testing.B) {
	for _, filter := range []Filter{FilterNone, FilterRobust} {
		for _, n := range []int{1, 10, 100} {
			b.Run(fmt.Sprintf("filter=%s/candidates=%d", filter, n), func(b *testing.B) {
				e, err := New(Config{Filter: filter})
				if err != nil {
					b.Fatal(err)
				}
				o := Snapshot{Enclave: node, Current: in("cur", ms(100))}
				for i := range n {
					lat := ms(50 + float64(i%2)*50) // 50ms qualifies, 100ms does not
					o.Candidates = append(o.Candidates, in(fmt.Sprintf("c%03d", i), lat))
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					// ±1% jitter so the filter does its real work.
					o.Current.Latency = ms(100 + float64(i%3-1))
					i++
					e.Evaluate(o)
				}
			})
		}
	}
}
