package policy

import (
	"fmt"
	"testing"
)

// BenchmarkEvaluate measures one evaluation cycle with 1, 10 and 100
// candidates, half of which qualify every cycle.
func BenchmarkEvaluate(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("candidates=%d", n), func(b *testing.B) {
			e, err := New(Config{})
			if err != nil {
				b.Fatal(err)
			}
			o := Observation{Enclave: node, Current: in("cur", ms(100))}
			for i := range n {
				lat := ms(50 + float64(i%2)*50) // 50ms qualifies, 100ms does not
				o.Candidates = append(o.Candidates, in(fmt.Sprintf("c%03d", i), lat))
			}
			b.ReportAllocs()
			for b.Loop() {
				e.Evaluate(o)
			}
		})
	}
}
