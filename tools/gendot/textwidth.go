package main

import "unicode/utf8"

// Graphviz sizes labels with its built-in Arial metrics, but a reader's
// browser draws the SVG with whatever font it has for "Arial": Arial itself,
// Liberation Sans (metric-compatible) or, without either, DejaVu Sans, which
// is up to a fifth wider. gendot therefore reserves room for the widest of
// these, and the tests check the rendered SVG with the same estimate.

// Advance widths of printable ASCII (' ' to '~'), in thousandths of an em:
// for each character the larger of DejaVu Sans and Liberation Sans (Arial's
// metrics), regular and bold, read from the fonts' hmtx tables.
var (
	asciiRegular = [95]uint16{318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636, 636, 636, 636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 556, 1015, 684, 686, 722, 770, 667, 611, 778, 752, 295, 500, 667, 557, 863, 748, 787, 667, 787, 722, 667, 611, 732, 684, 989, 685, 667, 685, 390, 337, 390, 838, 556, 500, 613, 635, 550, 635, 615, 352, 635, 634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 411, 521, 392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838}
	asciiBold    = [95]uint16{348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365, 696, 696, 696, 696, 696, 696, 696, 696, 696, 696, 400, 400, 838, 838, 838, 611, 1000, 774, 762, 734, 830, 683, 683, 821, 837, 372, 556, 775, 637, 995, 837, 850, 733, 850, 770, 720, 682, 812, 774, 1103, 771, 724, 725, 457, 365, 457, 838, 556, 500, 675, 716, 593, 716, 678, 435, 716, 712, 343, 343, 665, 343, 1042, 712, 687, 716, 716, 493, 595, 478, 712, 652, 924, 645, 652, 582, 712, 365, 712, 838}
)

// wideGlyph is the width assumed for any character outside printable ASCII
// (arrows, dashes, box drawing, «»): a full em, which no such glyph in these
// fonts exceeds.
const wideGlyph = 1000

// textWidth returns a conservative estimate of the width of s drawn at size
// (in the SVG's user units) in Arial or a font substituted for it.
func textWidth(s string, size float64, bold bool) float64 {
	table := &asciiRegular
	if bold {
		table = &asciiBold
	}
	var em uint
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		s = s[n:]
		if r >= ' ' && r <= '~' {
			em += uint(table[r-' '])
		} else {
			em += wideGlyph
		}
	}
	return float64(em) / 1000 * size
}
