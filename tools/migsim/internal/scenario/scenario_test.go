package scenario

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestScenariosParse(t *testing.T) {
	files, err := filepath.Glob("../../../../testdata/scenarios/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario files: %v", err)
	}
	for _, f := range files {
		if _, err := LoadScenario(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestParseScenarioRejects(t *testing.T) {
	base := `"node":{"enclave":"eu"},"cycle":"100ms","cycles":5,"start":"a","substrates":[{"id":"a","enclave":"eu","latency":[{"from":1,"latency":"10ms"}]}]`
	tests := map[string]string{
		"unknown field":   `{` + base + `,"bogus":1}`,
		"no enclave":      `{"cycle":"1s","cycles":1}`,
		"bad duration":    `{"node":{"enclave":"eu"},"cycle":"soon","cycles":1}`,
		"unknown start":   strings.Replace(`{`+base+`}`, `"start":"a"`, `"start":"z"`, 1),
		"unknown action":  `{` + base + `,"faults":[{"cycle":1,"substrate":"a","action":"explode"}]}`,
		"unknown fault":   `{` + base + `,"faults":[{"cycle":1,"substrate":"z","action":"kill"}]}`,
		"bad latency":     strings.Replace(`{`+base+`}`, `"10ms"`, `"fast"`, 1),
		"bad improvement": `{` + base + `,"policy":{"improvement":1.5}}`,
		"steps unordered": strings.Replace(`{`+base+`}`, `[{"from":1,"latency":"10ms"}]`, `[{"from":3,"latency":"10ms"},{"from":2,"latency":"5ms"}]`, 1),
	}
	for name, in := range tests {
		if _, err := ParseScenario([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseScenario([]byte(`{` + base + `}`)); err != nil {
		t.Fatalf("the valid base was rejected: %v", err)
	}
}

func TestLatencyScheduleIsDeterministic(t *testing.T) {
	a, err := LoadScenario("short")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := LoadScenario("short")
	for i := range a.Substrates {
		for c := 1; c <= a.Cycles; c++ {
			if a.Latency(i, c) != b.Latency(i, c) {
				t.Fatalf("substrate %d cycle %d: %v then %v", i, c, a.Latency(i, c), b.Latency(i, c))
			}
		}
	}
	if l := a.Latency(a.Index("eu2"), 10); l < 23*time.Millisecond || l > 27*time.Millisecond {
		t.Errorf("eu2 at cycle 10 is %v, want 25ms ±5%%", l)
	}
}

func TestFormatIsDocumented(t *testing.T) {
	if _, err := os.Stat("../../../../testdata/scenarios/README.md"); err != nil {
		t.Errorf("the scenario format is undocumented: %v", err)
	}
}
