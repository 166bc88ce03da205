package main

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport/engine"
)

// Section titles of transitions.md; the tests find the tables by them.
const (
	mdLegend      = "## Legend"
	mdGuards      = "## Guards"
	mdRules       = "## Engine rules"
	mdOverview    = "## Overview"
	mdCells       = "## Every state × event"
	mdTransitions = "## Transitions"
)

// markdownFile renders transitions.md: the legend, an overview matrix, the
// decision for every (state, event) pair with its actions or the reason it is
// ignored, and the list of transitions with their meaning.
func markdownFile(c fsm.Chart, rules []engine.Rule) ([]byte, error) {
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
	guarded := 0
	for _, t := range c.Transitions {
		if t.Guard != "" {
			guarded++
		}
	}
	p("%d states × %d events = %d pairs, each decided in the end by one fallback: %d unguarded transitions and %d deliberately ignored pairs; ",
		len(c.States), len(c.Events), len(c.States)*len(c.Events), len(c.Transitions)-guarded, len(c.Ignores))
	p("%d guarded transitions are tried before the fallback of their pair. ", guarded)
	p("The initial state is `%s`.\n\n", c.Initial)
	p("![migration state chart](migration.svg)\n\n")
	p("Also as [Graphviz](migration.dot) and [Mermaid](migration.mmd), and with scenarios highlighted on the chart in [review.html](review.html) ")
	p("(open it from a checkout: it is one self-contained page).\n\n")

	p("%s\n\n", mdLegend)
	p("Edges read `%s`; actions are carried out in the order listed. ", labelForm)
	p("Transitions that share source, target, guard, actions and path are drawn as one edge; ")
	p("transitions that stay in their state are listed inside its box, under a rule. ")
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

	p("\n%s\n\n", mdGuards)
	p("A state × event pair may have guarded transitions, tried in the order listed; ")
	p("the first whose guard holds is taken, and when none holds the pair's unguarded fallback (a transition or an ignore) decides. ")
	p("The engine says whether a guard holds when it fires the event.\n\n")
	p("| guard | holds when |\n|---|---|\n")
	for _, g := range c.Guards {
		p("| `%s` | %s |\n", guardText(g.Guard), cell(g.Meaning))
	}

	p("\n%s\n\n", mdRules)
	p("What `transport/engine` decides around the chart (`engine.Rules()`): how inputs become events, how guards are answered, ")
	p("what the chart leaves open. Each rule is pinned by the test named.\n\n")
	p("| rule | when | then | test |\n|---|---|---|---|\n")
	for _, r := range rules {
		p("| `%s` | %s | %s | `%s` |\n", r.Name, cell(r.When), cell(r.Then), r.Test)
	}

	p("\n%s\n\n", mdOverview)
	p("Rows are events, columns states; a cell names the next state, or is `·` when the event is ignored there; ")
	p("guarded branches come first, then `else` and the fallback.\n\n")
	p("| event |")
	for _, s := range c.States {
		p(" %s |", s)
	}
	p("\n|---|%s\n", strings.Repeat("---|", len(c.States)))
	for _, e := range c.Events {
		p("| `%s` |", e)
		for _, s := range c.States {
			d, ok := c.Cell(s, e)
			if !ok {
				return nil, fmt.Errorf("(%s, %s) is undecided: declare a transition or an ignore in fsm/chart.go", s, e)
			}
			p(" %s |", overview(d))
		}
		p("\n")
	}

	p("\n%s\n\n", mdCells)
	for _, s := range c.States {
		p("### %s\n\n", s)
		p("| event | guard | decision | actions | path | meaning or reason |\n|---|---|---|---|---|---|\n")
		for _, e := range c.Events {
			d, ok := c.Cell(s, e)
			if !ok {
				return nil, fmt.Errorf("(%s, %s) is undecided: declare a transition or an ignore in fsm/chart.go", s, e)
			}
			for _, t := range d.Guarded {
				p("| `%s` | `%s` | **→ %s** | %s | %s | %s |\n", e, guardText(t.Guard), t.To, actions(t.Actions), t.Path, cell(t.Meaning))
			}
			g := ""
			if len(d.Guarded) > 0 {
				g = "else"
			}
			if t := d.Transition; t != nil {
				p("| `%s` | %s | **→ %s** | %s | %s | %s |\n", e, g, t.To, actions(t.Actions), t.Path, cell(t.Meaning))
			} else {
				p("| `%s` | %s | ignored | | | %s |\n", e, g, cell(d.Ignore.Reason))
			}
		}
		p("\n")
	}

	p("%s\n\n", mdTransitions)
	p("In declaration order.\n\n")
	p("| # | from | event | guard | to | actions | path | meaning |\n|---|---|---|---|---|---|---|---|\n")
	for i, t := range c.Transitions {
		g := ""
		if t.Guard != "" {
			g = "`" + guardText(t.Guard) + "`"
		}
		p("| %d | %s | `%s` | %s | %s | %s | %s | %s |\n", i+1, t.From, t.Event, g, t.To, actions(t.Actions), t.Path, cell(t.Meaning))
	}
	return b.Bytes(), nil
}

// overview is a cell of the overview matrix: "→ to", "·" for an ignore,
// guarded branches first: "[g] → to, else ·".
func overview(d fsm.Cell) string {
	var parts []string
	for _, t := range d.Guarded {
		parts = append(parts, guardText(t.Guard)+" → "+string(t.To))
	}
	last := "·"
	if d.Transition != nil {
		last = "→ " + string(d.Transition.To)
	}
	if len(parts) == 0 {
		return last
	}
	return strings.Join(parts, ", ") + ", else " + last
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
