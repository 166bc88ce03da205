package report

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"os"
	"strings"
	"time"

	"github.com/repram/handover/fsm"

	"github.com/repram/handover/tools/migsim/internal/run"
	"github.com/repram/handover/tools/migsim/internal/timeline"
)

// palette colours substrates in scenario order.
var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"}

// mark kinds drawn as vertical lines.
var markStyles = map[string]struct{ color, dash, label string }{
	"migrate":    {"#2a9d3a", "", "migration done (old link closed)"},
	"accelerate": {"#e07b00", "", "accelerated (old died mid-overlap)"},
	"cancel":     {"#c0392b", "4 3", "cancelled, old kept"},
	"forced":     {"#7b3fb5", "2 2", "forced by goodbye"},
	"break":      {"#222222", "6 3", "break-before-make: old closed"},
}

// WriteSVGFile writes the plot of res (SVG) to path.
func WriteSVGFile(path string, res *run.Result) error {
	if err := os.WriteFile(path, SVG(res), 0o644); err != nil {
		return fmt.Errorf("write plot: %w", err)
	}
	return nil
}

// SVG plots a run: the latency fed to the policy for each substrate over
// time, the primary as a band behind its curve and as a strip below, the
// phases, and a mark for each migration, cancellation and acceleration.
func SVG(res *run.Result) []byte {
	sc := res.Scenario
	const (
		W, left, right, top = 1200.0, 70.0, 230.0, 80.0
		plotH, stripH       = 360.0, 26.0
	)
	plotW := W - left - right
	H := top + plotH + 30 + stripH + 70
	total := (time.Duration(sc.Cycles) * sc.Cycle.D()).Seconds()
	var maxLat time.Duration
	for i := range sc.Substrates {
		for c := 1; c <= sc.Cycles; c++ {
			maxLat = max(maxLat, sc.Latency(i, c))
		}
	}
	yMax := niceCeil(float64(maxLat.Milliseconds()) * 1.1)
	x := func(sec float64) float64 { return left + plotW*math.Min(sec, total)/total }
	y := func(ms float64) float64 { return top + plotH - plotH*ms/yMax }
	cycleEnd := func(c int) float64 { return (time.Duration(c) * sc.Cycle.D()).Seconds() }

	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n", W, H, W, H)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	s := res.Summary
	p(`<text x="%.0f" y="24" font-size="17" font-weight="bold">migsim: %s — %s</text>`+"\n", left, esc(sc.Name), esc(res.Options.Label()))
	p(`<text x="%.0f" y="44" fill="#333">published %d, owed %d, lost %d, duplicates delivered %d · migrations %d, cancelled %d, accelerated %d, ping-pongs %d · switch p50 %.0f ms</text>`+"\n",
		left, s.Published, s.Owed, s.Lost, s.DuplicatesDelivered, s.Migrations, s.Cancelled, s.Accelerated, s.PingPongs, s.SwitchMsP50)
	p(`<text x="%.0f" y="62" fill="#555">Lines: latency the node measured to each substrate every evaluation cycle of %v. The wide pale band follows the substrate the node is attached to (its primary).</text>`+"\n",
		left, sc.Cycle.D())

	// Phases.
	for i, ph := range sc.Phases {
		end := sc.Cycles
		if i+1 < len(sc.Phases) {
			end = sc.Phases[i+1].From - 1
		}
		x0, x1 := x(cycleEnd(ph.From-1)), x(cycleEnd(end))
		if i%2 == 1 {
			p(`<rect x="%.1f" y="%.0f" width="%.1f" height="%.0f" fill="#f3f3f3"/>`+"\n", x0, top, x1-x0, plotH)
		}
		label, _, _ := strings.Cut(ph.Name, ":")
		p(`<text x="%.1f" y="%.0f" font-size="11" fill="#444" font-style="italic">%s</text>`+"\n", x0+4, top+14, esc(label))
	}
	// Axes and grid.
	step := niceCeil(yMax / 6)
	for v := 0.0; v <= yMax+0.001; v += step {
		p(`<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, left+plotW, y(v), y(v))
		p(`<text x="%.0f" y="%.1f" text-anchor="end" fill="#555">%.0f</text>`+"\n", left-6, y(v)+4, v)
	}
	p(`<text x="18" y="%.0f" transform="rotate(-90 18 %.0f)" text-anchor="middle" fill="#333">latency (ms)</text>`+"\n", top+plotH/2, top+plotH/2)
	tstep := niceCeil(total / 12)
	stripY := top + plotH + 30
	for t := 0.0; t <= total+0.001; t += tstep {
		p(`<line x1="%.1f" x2="%.1f" y1="%.0f" y2="%.0f" stroke="#999"/>`+"\n", x(t), x(t), top+plotH, top+plotH+5)
		p(`<text x="%.1f" y="%.0f" text-anchor="middle" fill="#555">%gs</text>`+"\n", x(t), top+plotH+18, t)
	}
	p(`<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#888"/>`+"\n", left, top, plotW, plotH)

	// The primary over time, from the timeline.
	type seg struct {
		from, to float64
		id       string
	}
	var segs []seg
	cur, since := "", 0.0
	for _, e := range res.Entries {
		if e.Kind != timeline.KindTransition {
			continue
		}
		if prim := e.Primary; prim != cur {
			segs = append(segs, seg{since, e.At.Seconds(), cur})
			cur, since = prim, e.At.Seconds()
		}
	}
	segs = append(segs, seg{since, total, cur})
	color := func(id string) string {
		if i := sc.Index(id); i >= 0 {
			return palette[i%len(palette)]
		}
		return "#999"
	}
	// Band behind the primary's curve.
	for _, sg := range segs {
		i := sc.Index(sg.id)
		if i < 0 {
			continue
		}
		var pts []string
		for c := 1; c <= sc.Cycles; c++ {
			t := cycleEnd(c)
			if t < sg.from || t > sg.to+sc.Cycle.D().Seconds() {
				continue
			}
			if l := sc.Latency(i, c); l > 0 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(math.Max(math.Min(t, sg.to), sg.from)), y(ms(l))))
			}
		}
		if len(pts) > 0 {
			p(`<polyline points="%s" fill="none" stroke="%s" stroke-opacity="0.22" stroke-width="14" stroke-linecap="round" stroke-linejoin="round"/>`+"\n",
				strings.Join(pts, " "), color(sg.id))
		}
	}
	// Latency curves, broken where not measured or down.
	for i, sub := range sc.Substrates {
		var runs [][]string
		var pts []string
		for c := 1; c <= sc.Cycles; c++ {
			l := sc.Latency(i, c)
			if l == 0 || !res.Alive[i][c] {
				if len(pts) > 0 {
					runs = append(runs, pts)
					pts = nil
				}
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(cycleEnd(c)), y(ms(l))))
		}
		runs = append(runs, pts)
		for _, r := range runs {
			if len(r) > 0 {
				p(`<polyline points="%s" fill="none" stroke="%s" stroke-width="1.6"/>`+"\n", strings.Join(r, " "), color(sub.ID))
			}
		}
		for c := 1; c < sc.Cycles; c++ {
			if res.Alive[i][c] && !res.Alive[i][c+1] {
				p(`<text x="%.1f" y="%.1f" font-size="16" fill="%s" text-anchor="middle">✝</text>`+"\n", x(cycleEnd(c)), y(ms(sc.Latency(i, c)))-6, color(sub.ID))
			}
		}
	}
	// Marks.
	for _, e := range res.Entries {
		kind := markKind(e)
		if kind == "" {
			continue
		}
		st := markStyles[kind]
		xx := x(e.At.Seconds())
		dash := ""
		if st.dash != "" {
			dash = fmt.Sprintf(` stroke-dasharray="%s"`, st.dash)
		}
		p(`<line x1="%.1f" x2="%.1f" y1="%.0f" y2="%.0f" stroke="%s" stroke-width="1.5"%s><title>%s</title></line>`+"\n",
			xx, xx, top, stripY+stripH, st.color, dash, esc(fmt.Sprintf("%.2fs %s: %s", e.At.Seconds(), e.Step.Event, e.Reason)))
		sym := map[string]string{"migrate": "▲", "accelerate": "▲", "cancel": "✗", "forced": "◆", "break": "▼"}[kind]
		p(`<text x="%.1f" y="%.0f" text-anchor="middle" fill="%s" font-size="12">%s</text>`+"\n", xx, top-4, st.color, sym)
	}
	// Primary strip.
	p(`<text x="%.0f" y="%.0f" text-anchor="end" fill="#333">primary</text>`+"\n", left-6, stripY+stripH/2+4)
	for _, sg := range segs {
		if sg.to <= sg.from {
			continue
		}
		x0, x1 := x(sg.from), x(sg.to)
		if sg.id == "" {
			p(`<rect x="%.1f" y="%.0f" width="%.1f" height="%.0f" fill="white" stroke="#c0392b" stroke-dasharray="2 2"><title>no link</title></rect>`+"\n", x0, stripY, math.Max(x1-x0, 1), stripH)
			continue
		}
		p(`<rect x="%.1f" y="%.0f" width="%.1f" height="%.0f" fill="%s" fill-opacity="0.75"><title>%s</title></rect>`+"\n", x0, stripY, math.Max(x1-x0, 1), stripH, color(sg.id), esc(sg.id))
		if x1-x0 > 30 {
			p(`<text x="%.1f" y="%.0f" text-anchor="middle" fill="white" font-weight="bold">%s</text>`+"\n", (x0+x1)/2, stripY+stripH/2+4, esc(sg.id))
		}
	}
	p(`<text x="%.0f" y="%.0f" text-anchor="middle" fill="#333">time since start (s)</text>`+"\n", left+plotW/2, stripY+stripH+22)

	// Legend.
	lx, ly := left+plotW+20, top+6
	p(`<text x="%.0f" y="%.0f" font-weight="bold">substrates</text>`+"\n", lx, ly)
	for i, sub := range sc.Substrates {
		yy := ly + 18 + float64(i)*18
		p(`<line x1="%.0f" x2="%.0f" y1="%.0f" y2="%.0f" stroke="%s" stroke-width="3"/>`+"\n", lx, lx+22, yy-4, yy-4, color(sub.ID))
		enc := "enclave " + sub.Enclave
		if sub.Enclave == sc.Node.Enclave {
			enc += " (node's)"
		}
		p(`<text x="%.0f" y="%.0f">%s · %s</text>`+"\n", lx+28, yy, esc(sub.ID), esc(enc))
	}
	ly += 30 + float64(len(sc.Substrates))*18
	p(`<text x="%.0f" y="%.0f" font-weight="bold">marks</text>`+"\n", lx, ly)
	for i, k := range []string{"migrate", "accelerate", "cancel", "forced", "break"} {
		st := markStyles[k]
		yy := ly + 18 + float64(i)*18
		dash := ""
		if st.dash != "" {
			dash = fmt.Sprintf(` stroke-dasharray="%s"`, st.dash)
		}
		p(`<line x1="%.0f" x2="%.0f" y1="%.0f" y2="%.0f" stroke="%s" stroke-width="2"%s/>`+"\n", lx+11, lx+11, yy-12, yy+3, st.color, dash)
		p(`<text x="%.0f" y="%.0f" font-size="11">%s</text>`+"\n", lx+28, yy, esc(st.label))
	}
	yy := ly + 18 + 5*18
	p(`<text x="%.0f" y="%.0f" font-size="15" fill="#555">✝</text><text x="%.0f" y="%.0f" font-size="11">substrate died</text>`+"\n", lx+6, yy, lx+28, yy)
	p(`<rect x="%.0f" y="%.0f" width="22" height="10" fill="white" stroke="#c0392b" stroke-dasharray="2 2"/><text x="%.0f" y="%.0f" font-size="11">no link (gossip gap)</text>`+"\n", lx, yy+10, lx+28, yy+19)
	p("</svg>\n")
	return b.Bytes()
}

// markKind classifies a timeline entry for the plot.
func markKind(e timeline.Entry) string {
	if e.Kind != timeline.KindTransition {
		return ""
	}
	switch p := e.Step.Path; {
	case e.Breaks():
		return "break"
	case e.Step.Event == fsm.OverlapDone:
		return "migrate"
	case p == fsm.PathAccelerate:
		return "accelerate"
	case p == fsm.PathCancel:
		return "cancel"
	case p == fsm.PathForced || p == fsm.PathSuspect:
		return "forced"
	}
	return ""
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func esc(s string) string { return html.EscapeString(s) }

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*e >= v {
			return m * e
		}
	}
	return 10 * e
}
