package scaleplot

import (
	"fmt"
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

// TestOverTimeIsTheRunsMigrations draws a small study's migrations over
// time: the plotted buckets hold every migration the study counted, each
// at its time.
func TestOverTimeIsTheRunsMigrations(t *testing.T) {
	r, err := vscale.Run(vscale.Config{Nodes: 200, Substrates: 4, Duration: 8 * time.Second, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	pts := Buckets(r.MigrationsOver, r.Bucket)
	total := 0.0
	for _, p := range pts[:len(pts)-1] {
		total += p.Y
	}
	if int(total) != r.Migrations || r.Migrations == 0 {
		t.Errorf("the plot holds %v migrations, the study counted %d", total, r.Migrations)
	}
	if last := pts[len(pts)-1].X; last != r.Config.Duration.Seconds() {
		t.Errorf("the buckets end at %vs, the run at %v", last, r.Config.Duration)
	}
	p, err := OverTime(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("(%d by the policy", r.Migrations); !strings.Contains(p.Title.Text, want) {
		t.Errorf("title %q lacks %q", p.Title.Text, want)
	}
}
