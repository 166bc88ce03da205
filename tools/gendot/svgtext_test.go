package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
)

// textBox is the box a <text> element of an SVG is drawn in.
type textBox struct {
	text                   string
	x0, y0, x1, y1         float64
	anchor, weight, family string
}

func (b textBox) String() string {
	return fmt.Sprintf("%q at (%.1f,%.1f)-(%.1f,%.1f)", b.text, b.x0, b.y0, b.x1, b.y1)
}

// Vertical extent of a line of text around its baseline, in ems: the ink
// of DejaVu Sans and Arial, capitals and ascenders (l, d: 0.76) above,
// descenders and the underscore (0.24) below. The line box is taller, but
// Graphviz stacks lines 1.2 em apart and ink is what collides.
const (
	ascent  = 0.76
	descent = 0.24
)

// textBoxes returns the box of every <text> element of an SVG, from its x,
// y (the baseline), text-anchor, font-size and font-weight, with the width
// estimated by textWidth: the widest of the fonts a browser may draw "Arial"
// with, so a box that does not overlap here does not overlap on screen.
func textBoxes(svg []byte) ([]textBox, error) {
	dec := xml.NewDecoder(bytes.NewReader(svg))
	dec.Strict = true
	var out []textBox
	var cur *textBox
	var size float64
	var content strings.Builder
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("parse the SVG: %w", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if tok.Name.Local != "text" {
				continue
			}
			if cur != nil {
				return nil, errors.New("nested <text>")
			}
			cur = &textBox{anchor: "start", weight: "normal"}
			var x, y float64
			size = -1
			for _, a := range tok.Attr {
				var err error
				switch a.Name.Local {
				case "x":
					x, err = strconv.ParseFloat(a.Value, 64)
				case "y":
					y, err = strconv.ParseFloat(a.Value, 64)
				case "font-size":
					size, err = strconv.ParseFloat(a.Value, 64)
				case "text-anchor":
					cur.anchor = a.Value
				case "font-weight":
					cur.weight = a.Value
				case "font-family":
					cur.family = a.Value
				}
				if err != nil {
					return nil, fmt.Errorf("<text> attribute %s: %w", a.Name.Local, err)
				}
			}
			if size <= 0 {
				return nil, fmt.Errorf("<text> at (%v,%v) has no font-size", x, y)
			}
			cur.x0, cur.y0, cur.y1 = x, y-ascent*size, y+descent*size
			content.Reset()
		case xml.CharData:
			if cur != nil {
				content.Write(tok)
			}
		case xml.EndElement:
			if tok.Name.Local != "text" || cur == nil {
				continue
			}
			cur.text = content.String()
			w := textWidth(cur.text, size, cur.weight == "bold")
			switch cur.anchor {
			case "middle":
				cur.x0 -= w / 2
			case "end":
				cur.x0 -= w
			}
			cur.x1 = cur.x0 + w
			out = append(out, *cur)
			cur = nil
		}
	}
}

// overlaps returns every pair of boxes whose interiors intersect.
func overlaps(bs []textBox) [][2]textBox {
	var out [][2]textBox
	for i, a := range bs {
		for _, b := range bs[i+1:] {
			if a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1 {
				out = append(out, [2]textBox{a, b})
			}
		}
	}
	return out
}

// TestSVGTextDoesNotOverlap checks the generated chart: no two texts may
// overlap, with every width estimated for the widest font a browser may
// draw "Arial" with. GENDOT_SVG=file.svg checks another SVG instead (on the
// chart of issue 17, before the fix, it reports its collisions).
func TestSVGTextDoesNotOverlap(t *testing.T) {
	svg := []byte(fileData(t, "migration.svg"))
	if p := os.Getenv("GENDOT_SVG"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		svg = b
	}
	bs, err := textBoxes(svg)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) < 20 {
		t.Fatalf("only %d <text> elements in the SVG: is it the chart?", len(bs))
	}
	for _, o := range overlaps(bs) {
		t.Errorf("labels overlap: %v and %v", o[0], o[1])
	}
}

// TestOverlapsFindsTheOldCollisions feeds the checker <text> elements
// copied from the migration.svg that issue 17 reported, before the layout
// kept room for substitute fonts: each collision a reader saw must be found,
// and the lines of one label, stacked 1.2 em apart, must not be.
func TestOverlapsFindsTheOldCollisions(t *testing.T) {
	const head = `<svg xmlns="http://www.w3.org/2000/svg"><g>`
	cases := []struct {
		name    string
		texts   string
		overlap bool
	}{
		{"chart: overlap_done and old_died labels", `
<text text-anchor="middle" x="449.38" y="-390" font-family="Arial" font-size="10.00" fill="#0969da">/ drop_old, promote_candidate</text>
<text text-anchor="middle" x="300.67" y="-390" font-family="Arial" font-size="10.00" fill="#1a7f37">/ close_old, promote_candidate</text>`, true},
		{"legend: legend and edges read", `
<text text-anchor="start" x="103.16" y="-260.3" font-family="Arial" font-weight="bold" font-size="13.00">legend</text>
<text text-anchor="start" x="145.05" y="-260.3" font-family="Arial" font-size="13.00">: edges read </text>`, true},
		{"legend: accelerate_to_new and its meaning", `
<text text-anchor="start" x="185.09" y="-184.3" font-family="Arial" font-size="13.00" fill="#0969da">accelerate_to_new</text>
<text text-anchor="start" x="304.16" y="-184.3" font-family="Arial" font-size="13.00">the old link died mid&#45;overlap: the new one becomes primary</text>`, true},
		{"end anchor reaches left", `
<text text-anchor="end" x="100" y="0" font-size="10">abcdef</text>
<text text-anchor="start" x="80" y="0" font-size="10">x</text>`, true},
		{"lines of one label", `
<text text-anchor="middle" x="449.38" y="-402" font-family="Arial" font-size="10.00" fill="#0969da">old_died</text>
<text text-anchor="middle" x="449.38" y="-390" font-family="Arial" font-size="10.00" fill="#0969da">/ drop_old, promote_candidate</text>`, false},
		{"legend rows", `
<text text-anchor="start" x="185.16" y="-209.3" font-family="Arial" font-size="13.00" fill="#8250df">forced</text>
<text text-anchor="start" x="185.09" y="-184.3" font-family="Arial" font-size="13.00" fill="#0969da">accelerate_to_new</text>`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bs, err := textBoxes([]byte(head + tc.texts + "</g></svg>"))
			if err != nil {
				t.Fatal(err)
			}
			if len(bs) != 2 {
				t.Fatalf("%d boxes, want 2", len(bs))
			}
			if got := len(overlaps(bs)) > 0; got != tc.overlap {
				t.Errorf("overlap = %v, want %v: %v and %v", got, tc.overlap, bs[0], bs[1])
			}
		})
	}
}

func TestTextBoxesRejectsBadSVG(t *testing.T) {
	for name, svg := range map[string]string{
		"no font-size": `<svg><text x="1" y="2">a</text></svg>`,
		"bad x":        `<svg><text x="one" y="2" font-size="3">a</text></svg>`,
		"not XML":      `<svg><text x="1" y="2" font-size="3">a</svg>`,
	} {
		if _, err := textBoxes([]byte(svg)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
