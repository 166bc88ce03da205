package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/repram/handover/tools/migsim/internal/run"
	"github.com/repram/handover/tools/migsim/internal/scenario"
)

// TestReports prints and plots ours and the baselines on the short
// scenario in virtual time: every part names what it should.
func TestReports(t *testing.T) {
	sc, err := scenario.LoadScenario("short")
	if err != nil {
		t.Fatal(err)
	}
	res, err := run.CompareVirtual(sc)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	WriteHeader(&out, sc, res[0].Options)
	WriteTimeline(&out, res[0].Entries)
	WriteSummary(&out, res[0].Summary)
	WriteComparison(&out, res)
	t.Logf("\n%s", out.String())
	for _, want := range []string{`migsim: scenario "short"`, "overlapping → cooldown", "accelerate", "cancel, keep old",
		"* fault *", "summary (hysteresis make-before-break", "switch_ms_p50", "(ours), virtual time", "break-before-make (hysteresis), virtual time"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	svg := string(SVG(res[0]))
	for _, want := range []string{"<svg", "</svg>", "us1", "eu2", "primary", "accelerated"} {
		if !strings.Contains(svg, want) {
			t.Errorf("plot lacks %q", want)
		}
	}
}

func TestComparisonSVGNames(t *testing.T) {
	for i, want := range []string{"out/run.svg", "out/run-break-before-make.svg", "out/run-naive.svg"} {
		if got := ComparisonSVG("out/run.svg", i); got != want {
			t.Errorf("ComparisonSVG(run.svg, %d) = %q, want %q", i, got, want)
		}
	}
}
