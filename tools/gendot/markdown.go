package main

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/repram/handover/fsm"
)

// Section titles of transitions.md; the tests find the tables by them.
const (
	mdLegend      = "## Legend"
	mdOverview    = "## Overview"
	mdCells       = "## Every state × event"
	mdTransitions = "## Transitions"
)

// markdownFile renders transitions.md: the legend, an overview matrix, the
// decision for every (state, event) pair with its actions or the reason it is
// ignored, and the list of transitions with their meaning.
func markdownFile(c fsm.Chart) ([]byte, error) {
	styles, err := usedStyles(c)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	p("<!-- %s -->\n\n", generatedNote)
	p("# Migration state chart: transitions\n\n")
	p("Generated from `fsm.Declaration()` (fsm/chart.go), the single source of the chart; ")
	p("edit the declaration and run `go run ./tools/gendot`, never this file. ")
	p("%d states × %d events = %d decisions: %d transitions and %d deliberately ignored pairs. ",
		len(c.States), len(c.Events), len(c.States)*len(c.Events), len(c.Transitions), len(c.Ignores))
	p("The initial state is `%s`.\n\n", c.Initial)
	p("![migration state chart](migration.svg)\n\n")
	p("Also as [Graphviz](migration.dot) and [Mermaid](migration.mmd).\n\n")

	p("%s\n\n", mdLegend)
	p("Edges read `event, event / action, action`; actions are carried out in the order listed. ")
	p("Transitions that share source, target, actions and path are drawn as one edge. ")
	for _, e := range edges(c) {
		if e.fromAny {
			p("`%s` from every state except `%s` is drawn once, from the dashed \"%s\" box. ",
				eventText(e), e.to, anySource(e.to))
		}
	}
	p("Ignored events are not drawn.\n\n")
	p("| path | drawn as | meaning |\n|---|---|---|\n")
	for _, st := range styles {
		p("| `%s` | %s | %s |\n", st.path, st.look, cell(st.about))
	}

	p("\n%s\n\n", mdOverview)
	p("Rows are events, columns states; a cell names the next state, or is `·` when the event is ignored there.\n\n")
	p("| event |")
	for _, s := range c.States {
		p(" %s |", s)
	}
	p("\n|---|%s\n", strings.Repeat("---|", len(c.States)))
	for _, e := range c.Events {
		p("| `%s` |", e)
		for _, s := range c.States {
			d, ok := c.Cell(s, e)
			switch {
			case !ok:
				return nil, fmt.Errorf("(%s, %s) is undecided: declare a transition or an ignore in fsm/chart.go", s, e)
			case d.Transition != nil:
				p(" → %s |", d.Transition.To)
			default:
				p(" · |")
			}
		}
		p("\n")
	}

	p("\n%s\n\n", mdCells)
	for _, s := range c.States {
		p("### %s\n\n", s)
		p("| event | decision | actions | path | meaning or reason |\n|---|---|---|---|---|\n")
		for _, e := range c.Events {
			d, ok := c.Cell(s, e)
			switch {
			case !ok:
				return nil, fmt.Errorf("(%s, %s) is undecided: declare a transition or an ignore in fsm/chart.go", s, e)
			case d.Transition != nil:
				t := d.Transition
				p("| `%s` | **→ %s** | %s | %s | %s |\n", e, t.To, actions(t.Actions), t.Path, cell(t.Meaning))
			default:
				p("| `%s` | ignored | | | %s |\n", e, cell(d.Ignore.Reason))
			}
		}
		p("\n")
	}

	p("%s\n\n", mdTransitions)
	p("In declaration order.\n\n")
	p("| # | from | event | to | actions | path | meaning |\n|---|---|---|---|---|---|---|\n")
	for i, t := range c.Transitions {
		p("| %d | %s | `%s` | %s | %s | %s | %s |\n", i+1, t.From, t.Event, t.To, actions(t.Actions), t.Path, cell(t.Meaning))
	}
	return b.Bytes(), nil
}

// actions formats an action list for a table cell.
func actions(as []fsm.Action) string {
	if len(as) == 0 {
		return "—"
	}
	return actionText(as)
}

// cell escapes text for a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
