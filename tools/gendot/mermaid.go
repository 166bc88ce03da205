package main

import (
	"bytes"
	"fmt"

	"github.com/repram/handover/fsm"
)

// mermaidFile renders the chart as a Mermaid stateDiagram-v2, which GitHub
// renders in Markdown and .mmd previews. Mermaid cannot colour the
// transitions of a state diagram, so each label ends with its path as a
// «stereotype», and a note carries the legend.
func mermaidFile(c fsm.Chart) ([]byte, error) {
	styles, err := usedStyles(c)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	p("stateDiagram-v2\n")
	p("    %%%% %s\n", generatedNote)
	p("    %%%% Edges read: %s «path». Ignored events are listed in transitions.md.\n", labelForm)
	for _, g := range usedGuards(c) {
		p("    %%%% Guard %s: %s\n", guardText(g.Guard), g.Meaning)
	}
	p("    %%%% Paths (colours and line styles in migration.svg):\n")
	for _, st := range styles {
		p("    %%%%   %s (%s): %s\n", st.path, st.look, st.about)
	}
	p("    direction TB\n")
	p("    classDef initial fill:#ddf4ff,stroke:#57606a\n")
	p("    classDef terminal fill:#eaeef2,stroke:#57606a,stroke-width:3px\n")
	p("    classDef anyState fill:#ffffff,stroke:#57606a,stroke-dasharray:5 5,color:#57606a\n")

	es := edges(c)
	for _, to := range fanInTargets(es) {
		p("    state %q as %s\n", anySource(to), anyNode(to))
	}
	p("    [*] --> %s\n", c.Initial)
	for _, e := range es {
		from := string(e.from)
		if e.fromAny {
			from = anyNode(e.to)
		}
		p("    %s --> %s : %s «%s»\n", from, e.to, label(e), e.path)
	}
	for _, s := range c.States {
		if isTerminal(c, s) {
			p("    %s --> [*]\n", s)
		}
	}

	p("    note right of %s\n", notePlace(c))
	p("        Legend: %s «path»\n", labelForm)
	for _, st := range styles {
		p("        «%s» %s\n", st.path, st.about)
	}
	for _, g := range usedGuards(c) {
		p("        %s %s\n", guardText(g.Guard), g.Meaning)
	}
	p("    end note\n")

	p("    class %s initial\n", c.Initial)
	for _, s := range c.States {
		if isTerminal(c, s) {
			p("    class %s terminal\n", s)
		}
	}
	for _, to := range fanInTargets(es) {
		p("    class %s anyState\n", anyNode(to))
	}
	return b.Bytes(), nil
}

// notePlace picks the state the legend note hangs on: the first terminal
// state, which sits at the edge of the layout, or else the initial state.
func notePlace(c fsm.Chart) fsm.State {
	for _, s := range c.States {
		if isTerminal(c, s) {
			return s
		}
	}
	return c.Initial
}
