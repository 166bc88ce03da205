// Package table prints migsim's text tables: rows of cells in aligned
// columns.
package table

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Write prints rows in aligned columns; the first rightAligned columns are
// right-aligned, the last cell of a row is never padded, and a row of one
// cell is printed as is (a heading across the table).
func Write(w io.Writer, rows [][]string, rightAligned int) {
	var width []int
	for _, r := range rows {
		if len(r) == 1 {
			continue
		}
		for i, c := range r {
			if i == len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range rows {
		if len(r) == 1 {
			fmt.Fprintln(w, r[0])
			continue
		}
		var b strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			switch {
			case i == len(r)-1:
				b.WriteString(c)
			case i < rightAligned:
				b.WriteString(pad + c + "  ")
			default:
				b.WriteString(c + pad + "  ")
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// Dash is s, or "-" for nothing.
func Dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
