package sockscale

import "testing"

// TestTally pins how Run counts deliveries, duplicates and losses from
// what each node's handler saw: the live runs see no duplicate (the node
// deduplicates), so without it "nothing duplicated" could not fail.
func TestTally(t *testing.T) {
	t.Parallel()
	ids := []string{"a", "b", "c"}
	tests := []struct {
		name                        string
		seen                        []map[string]int // per node
		delivered, duplicates, lost int
		failed                      bool // with every node rehomed
	}{
		{"every node got every id once", []map[string]int{{"a": 1, "b": 1, "c": 1}, {"a": 1, "b": 1, "c": 1}}, 6, 0, 0, false},
		{"a node got an id twice", []map[string]int{{"a": 1, "b": 2, "c": 1}, {"a": 1, "b": 1, "c": 1}}, 6, 1, 0, true},
		{"a node got an id three times", []map[string]int{{"a": 3, "b": 1, "c": 1}, {"a": 1, "b": 1, "c": 1}}, 6, 2, 0, true},
		{"twice on one node, three times on another", []map[string]int{{"a": 2, "b": 1, "c": 1}, {"a": 1, "b": 1, "c": 3}}, 6, 3, 0, true},
		{"an id no node got", []map[string]int{{"a": 1, "b": 1}, {"a": 1, "b": 1}}, 4, 0, 2, true},
		{"an id one node missed and another got twice", []map[string]int{{"a": 1, "c": 1}, {"a": 1, "b": 2, "c": 1}}, 5, 1, 1, true},
		{"a node that got nothing", []map[string]int{{"a": 1, "b": 1, "c": 1}, {}}, 3, 0, 3, true},
		{"ids not published are not counted", []map[string]int{{"a": 1, "b": 1, "c": 1, "late": 2}, {"a": 1, "b": 1, "c": 1, "late": 1}}, 6, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			counts := make([]*counted, len(tt.seen))
			for i, s := range tt.seen {
				counts[i] = &counted{seen: s}
			}
			res := &Result{Nodes: len(counts), Rehomed: len(counts), DuplicatesDelivered: 99, Delivered: 99}
			res.tally(ids, counts)
			if res.Published != len(ids) || res.Owed != len(ids)*len(counts) {
				t.Errorf("published %d, owed %d: want %d and %d", res.Published, res.Owed, len(ids), len(ids)*len(counts))
			}
			if res.Delivered != tt.delivered || res.DuplicatesDelivered != tt.duplicates || res.Lost != tt.lost {
				t.Errorf("delivered %d, duplicates %d, lost %d: want %d, %d, %d",
					res.Delivered, res.DuplicatesDelivered, res.Lost, tt.delivered, tt.duplicates, tt.lost)
			}
			if res.Failed() != tt.failed {
				t.Errorf("Failed() = %v, want %v", res.Failed(), tt.failed)
			}
		})
	}
}
