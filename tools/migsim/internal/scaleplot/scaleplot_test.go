package scaleplot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/repram/handover/tools/migsim/internal/vscale"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	r := vscale.Result{Rehome: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 3 * time.Second},
		LoadBefore: []int{50, 60, 40}, LoadAfter: []int{80, 70}, MaxChildren: 100}
	if err := Write(dir, r); err != nil {
		t.Fatal(err)
	}
	for _, f := range Files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "<svg") {
			t.Errorf("%s is not an SVG", f)
		}
	}
	if err := Write(filepath.Join(dir, "empty"), vscale.Result{}); err != nil {
		t.Errorf("a study without rehomes: %v", err)
	}
}
