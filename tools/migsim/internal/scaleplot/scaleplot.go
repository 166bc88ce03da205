// Package scaleplot draws a virtual-time scale study (package vscale) with
// gonum/plot: the CDF of rehome times, the load per substrate before and
// after the shutdown, and the migrations over time.
package scaleplot

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/repram/handover/tools/migsim/internal/vscale"
)

// Files are the names Write gives its plots in the directory.
var Files = []string{"rehome-cdf.svg", "load.svg", "migrations.svg"}

// Write writes Files into dir (created if missing).
func Write(dir string, r vscale.Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("scaleplot: %w", err)
	}
	cdf, err := RehomeCDF(r.Rehome)
	if err != nil {
		return err
	}
	load, err := Load(r.LoadBefore, r.LoadAfter, r.MaxChildren)
	if err != nil {
		return err
	}
	over, err := OverTime(r)
	if err != nil {
		return err
	}
	for i, p := range []*plot.Plot{cdf, load, over} {
		if err := p.Save(16*vg.Centimeter, 10*vg.Centimeter, filepath.Join(dir, Files[i])); err != nil {
			return fmt.Errorf("scaleplot: %w", err)
		}
	}
	return nil
}

// RehomeCDF plots the fraction of rehomes done within each time (ms);
// rehome must be sorted.
func RehomeCDF(rehome []time.Duration) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("rehome time after a graceful shutdown (%d rehomes)", len(rehome))
	p.X.Label.Text = "first goodbye → next welcome (ms)"
	p.Y.Label.Text = "fraction of rehomes"
	pts := make(plotter.XYs, len(rehome))
	for i, d := range rehome {
		pts[i] = plotter.XY{X: float64(d.Microseconds()) / 1000, Y: float64(i+1) / float64(len(rehome))}
	}
	if len(pts) == 0 {
		return p, nil
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return nil, fmt.Errorf("scaleplot: %w", err)
	}
	p.Add(l, plotter.NewGrid())
	p.Y.Min, p.Y.Max = 0, 1
	return p, nil
}

// Load plots the children of each live substrate, sorted from the most
// loaded, before and after, with the capacity as a dashed line.
func Load(before, after []int, capacity int) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "children per live substrate, most loaded first"
	p.X.Label.Text = "substrates, by rank"
	p.Y.Label.Text = "children"
	line := func(xs []int) (*plotter.Line, error) {
		s := slices.Clone(xs)
		slices.Sort(s)
		slices.Reverse(s)
		pts := make(plotter.XYs, len(s))
		for i, v := range s {
			pts[i] = plotter.XY{X: float64(i + 1), Y: float64(v)}
		}
		return plotter.NewLine(pts)
	}
	for i, xs := range [][]int{before, after} {
		if len(xs) == 0 {
			continue
		}
		l, err := line(xs)
		if err != nil {
			return nil, fmt.Errorf("scaleplot: %w", err)
		}
		if i == 0 {
			l.Color = color.Gray{Y: 150}
		} else {
			l.Width = vg.Points(2)
		}
		p.Add(l)
		p.Legend.Add([]string{"before the shutdown", "at the end"}[i], l)
	}
	if capacity > 0 && len(before) > 0 {
		c, err := plotter.NewLine(plotter.XYs{{X: 1, Y: float64(capacity)}, {X: float64(max(len(before), len(after))), Y: float64(capacity)}})
		if err != nil {
			return nil, fmt.Errorf("scaleplot: %w", err)
		}
		c.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
		p.Add(c)
		p.Legend.Add("capacity", c)
	}
	p.Add(plotter.NewGrid())
	p.Y.Min, p.Legend.Top = 0, true
	p.Y.Max = max(p.Y.Max, float64(capacity)*1.1)
	return p, nil
}

// OverTime plots, per time bucket of the run (vscale.Bucket), the policy's
// migrations completed and the forced changes of primary (goodbyes,
// suspicions, deaths), as steps.
func OverTime(r vscale.Result) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("migrations over time (%d by the policy, %d forced moves)", sum(r.MigrationsOver), sum(r.MovesOver))
	p.X.Label.Text = "virtual time (s)"
	p.Y.Label.Text = fmt.Sprintf("per %v", r.Bucket)
	for i, counts := range [][]int{r.MigrationsOver, r.MovesOver} {
		if len(counts) == 0 {
			continue
		}
		l, err := plotter.NewLine(Buckets(counts, r.Bucket))
		if err != nil {
			return nil, fmt.Errorf("scaleplot: %w", err)
		}
		l.StepStyle = plotter.PostStep
		if i == 1 {
			l.Color = color.RGBA{R: 200, G: 60, B: 40, A: 255}
		}
		p.Add(l)
		p.Legend.Add([]string{"policy migrations", "forced moves (goodbye, suspicion, death)"}[i], l)
	}
	p.Add(plotter.NewGrid())
	p.Y.Min, p.Legend.Top = 0, true
	return p, nil
}

// Buckets are counts as points: x the start of each bucket of width w in
// seconds, y its count, and a last point closing the last bucket.
func Buckets(counts []int, w time.Duration) plotter.XYs {
	pts := make(plotter.XYs, 0, len(counts)+1)
	for k, n := range counts {
		pts = append(pts, plotter.XY{X: (time.Duration(k) * w).Seconds(), Y: float64(n)})
	}
	if len(counts) > 0 {
		pts = append(pts, plotter.XY{X: (time.Duration(len(counts)) * w).Seconds(), Y: float64(counts[len(counts)-1])})
	}
	return pts
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}
