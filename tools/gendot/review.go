package main

import (
	"bytes"
	"fmt"
	"html/template"
	"strings"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport/engine"
)

// pageSVG prepares the rendered chart for inlining in review.html: it drops
// the XML prologue and doctype, and tags each line of a loop drawn inside
// its state (see loopLabel) with the class edgeID of its edge, so the page
// can highlight loops like edges. Graphviz writes one <text> per line, the
// state's name first, then the loops' lines in edge order.
func pageSVG(svg []byte, c fsm.Chart) ([]byte, error) {
	start := bytes.Index(svg, []byte("<svg"))
	if start < 0 {
		return nil, fmt.Errorf("the rendered SVG has no <svg> element")
	}
	es := edges(c)
	var out bytes.Buffer
	var pending []string // classes for the next <text> lines of the current state
	for _, line := range strings.SplitAfter(string(svg[start:]), "\n") {
		// Graphviz heads each node and edge with a comment.
		if strings.HasPrefix(line, "<!-- ") && len(pending) > 0 {
			return nil, fmt.Errorf("the SVG lacks %d loop lines before %q: Graphviz's output changed, update pageSVG", len(pending), line)
		}
		if rest, ok := strings.CutPrefix(line, `<g id="state_`); ok {
			s := fsm.State(rest[:strings.IndexByte(rest, '"')])
			pending = []string{""} // the state's name
			for i, e := range es {
				if isLoop(e) && e.from == s {
					for range loopLines(e) {
						pending = append(pending, edgeID(i))
					}
				}
			}
			if len(pending) == 1 {
				pending = nil
			}
		}
		if len(pending) > 0 && strings.HasPrefix(line, "<text ") {
			if pending[0] != "" {
				line = `<text class="` + pending[0] + `"` + line[len("<text"):]
			}
			pending = pending[1:]
		}
		out.WriteString(line)
	}
	if len(pending) > 0 {
		return nil, fmt.Errorf("the SVG lacks %d loop lines: Graphviz's output changed, update pageSVG", len(pending))
	}
	return out.Bytes(), nil
}

// Views of the chart for the page template.
type (
	reviewPage struct {
		Note, Summary string
		SVG           template.HTML
		Guards        []fsm.GuardInfo
		Rules         []engine.Rule
		States        []fsm.State
		Rows          []eventRow
		Scenarios     []scenarioView
		Paths         []pathView
	}
	pathView struct {
		Path               fsm.Path
		Color, Look, About string
	}
	eventRow struct {
		Event fsm.Event
		Cells []cellView
	}
	cellView struct {
		Branches []branchView
		Ignored  bool // the fallback is an ignore
		Reason   string
		Else     bool // guarded branches come first
	}
	branchView struct {
		Guard   string
		To      fsm.State
		Actions string
		Path    fsm.Path
		Color   string
		Edge    string
	}
	scenarioView struct {
		Name   string
		About  string
		Edges  string // space-separated edge ids, in first-taken order
		States string // space-separated state ids visited
		Steps  []stepView
	}
	stepView struct {
		Line    int
		Restart bool
		From    fsm.State
		Event   fsm.Event
		To      fsm.State
		Guard   string
		Actions string
		Path    fsm.Path
		Color   string
		Edge    string
		Reason  string
	}
)

// branch is the view of one transition.
func branch(es []edge, t *fsm.Edge) (branchView, error) {
	st, err := styleOf(t.Path)
	if err != nil {
		return branchView{}, err
	}
	return branchView{Guard: guardText(t.Guard), To: t.To, Actions: actionText(t.Actions), Path: t.Path,
		Color: st.color, Edge: edgeID(edgeIndex(es, *t))}, nil
}

// reviewFile renders review.html: one self-contained page (inline CSS, JS
// and SVG, nothing fetched) with the chart, the scenarios as paths that
// light up on it, the guards, the engine's rules (transport/engine.Rules:
// what the engine does around the chart) and every state × event decision.
func reviewFile(c fsm.Chart, svg []byte, scenarios []scenario, rules []engine.Rule) ([]byte, error) {
	inline, err := pageSVG(svg, c)
	if err != nil {
		return nil, err
	}
	styles, err := usedStyles(c)
	if err != nil {
		return nil, err
	}
	es := edges(c)
	guarded := 0
	for _, t := range c.Transitions {
		if t.Guard != "" {
			guarded++
		}
	}
	page := reviewPage{
		Note: generatedNote,
		Summary: fmt.Sprintf("%d states × %d events: %d guarded transitions tried first, then one fallback per pair, "+
			"%d unguarded transitions and %d ignores. Initial state: %s.",
			len(c.States), len(c.Events), guarded, len(c.Transitions)-guarded, len(c.Ignores), c.Initial),
		SVG:    template.HTML(inline),
		Guards: c.Guards,
		Rules:  rules,
		States: c.States,
	}
	for _, st := range styles {
		page.Paths = append(page.Paths, pathView{st.path, st.color, st.look, st.about})
	}
	for _, e := range c.Events {
		row := eventRow{Event: e}
		for _, s := range c.States {
			d, ok := c.Cell(s, e)
			if !ok {
				return nil, fmt.Errorf("(%s, %s) is undecided: declare a transition or an ignore in fsm/chart.go", s, e)
			}
			cv := cellView{Else: len(d.Guarded) > 0}
			for _, t := range append(d.Guarded, d.Transition) {
				if t == nil {
					continue
				}
				b, err := branch(es, t)
				if err != nil {
					return nil, err
				}
				cv.Branches = append(cv.Branches, b)
			}
			if d.Ignore != nil {
				cv.Ignored, cv.Reason = true, d.Ignore.Reason
			}
			row.Cells = append(row.Cells, cv)
		}
		page.Rows = append(page.Rows, row)
	}
	for _, sc := range scenarios {
		v := scenarioView{Name: sc.name, About: strings.Join(sc.about, " ")}
		var edgeIDs, stateIDs []string
		add := func(list *[]string, id string) {
			for _, x := range *list {
				if x == id {
					return
				}
			}
			*list = append(*list, id)
		}
		add(&stateIDs, stateID(c.Initial))
		for _, st := range sc.steps {
			sv := stepView{Line: st.line, Restart: st.restart, From: st.from, Event: st.event, To: st.to, Reason: st.reason}
			if st.t != nil {
				b, err := branch(es, st.t)
				if err != nil {
					return nil, err
				}
				sv.Guard, sv.Actions, sv.Path, sv.Color, sv.Edge = b.Guard, b.Actions, b.Path, b.Color, b.Edge
				add(&edgeIDs, b.Edge)
				add(&stateIDs, stateID(st.to))
			}
			v.Steps = append(v.Steps, sv)
		}
		v.Edges, v.States = strings.Join(edgeIDs, " "), strings.Join(stateIDs, " ")
		page.Scenarios = append(page.Scenarios, v)
	}
	var b bytes.Buffer
	if err := reviewTemplate.Execute(&b, page); err != nil {
		return nil, fmt.Errorf("render review.html: %w", err)
	}
	return b.Bytes(), nil
}

var reviewTemplate = template.Must(template.New("review").Parse(reviewHTML))
