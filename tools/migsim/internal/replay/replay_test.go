package replay

import (
	"bytes"
	"strings"
	"testing"

	"github.com/repram/handover/policy"
)

// TestReplayJitter replays the jitter trace: the filtered policy and the
// same rule on raw samples never migrate, the naive baseline flaps.
func TestReplayJitter(t *testing.T) {
	tr, reps, err := Reports("../../../../testdata/traces/jitter.csv", policy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 3 || reps[0].Migrations != 0 || reps[1].Label() != "hysteresis/none" || reps[2].PingPongs == 0 {
		t.Fatalf("replays %v: want filtered and raw hysteresis with no migration and a flapping naive", reps)
	}
	var out bytes.Buffer
	Write(&out, "jitter.csv", tr, reps)
	for _, want := range []string{"replay jitter.csv:", "hysteresis/robust", "hysteresis/none", "naive"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := WriteJSON(&out, "jitter.csv", reps); err != nil || !strings.Contains(out.String(), `"trace":"jitter.csv"`) ||
		strings.Count(out.String(), `"strategy"`) != 3 {
		t.Errorf("JSON %v: %s", err, out.String())
	}
	if _, _, err := Reports("no-such.csv", policy.Config{}); err == nil {
		t.Error("a missing trace: no error")
	}
}
