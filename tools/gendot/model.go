package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/repram/handover/fsm"
)

// pathStyle is how the transitions of one fsm.Path are drawn. Styles are a
// presentation concern, so they live here and not in package fsm; the chart
// says which path each transition belongs to.
type pathStyle struct {
	path     fsm.Path
	color    string // #rrggbb, for edges and their labels
	style    string // Graphviz edge style
	penwidth string // Graphviz pen width
	look     string // the same in words, for the Markdown legend
	about    string // what the path means, for every legend
}

// pathStyles lists every path in legend order.
var pathStyles = []pathStyle{
	{fsm.PathMigrate, "#1a7f37", "bold", "2.5", "bold green",
		"make-before-break happy path: dial, handshake, overlap, switch"},
	{fsm.PathForced, "#8250df", "bold", "2", "bold purple",
		"the primary said goodbye: migrate now, no hysteresis"},
	{fsm.PathSuspect, "#bf3989", "dashed", "2.5", "bold dashed pink",
		"the primary went silent: migrate now, keep it meanwhile"},
	{fsm.PathAccelerate, "#0969da", "bold", "2.5", "bold blue",
		"the old link died mid-overlap: the new one becomes primary"},
	{fsm.PathRace, "#953800", "solid", "1.5", "solid brown",
		"Happy Eyeballs: another candidate joins or leaves the race"},
	{fsm.PathCancel, "#d4570b", "dashed", "2", "dashed orange",
		"every candidate failed: cancel, keep the old link"},
	{fsm.PathContinue, "#0a7e8c", "dashed", "1.5", "dashed teal",
		"the old link died before a welcome: the candidates go on alone"},
	{fsm.PathReattach, "#9a6700", "dashed", "1.5", "dashed ochre",
		"the primary died: race the alternatives at once"},
	{fsm.PathJoin, "#24292f", "solid", "1.5", "solid black",
		"becoming attached from nothing"},
	{fsm.PathDetach, "#cf222e", "dotted", "1.5", "dotted red",
		"no usable link is left: rejoin with backoff"},
	{fsm.PathSettle, "#57606a", "solid", "1", "thin grey",
		"cooldown over"},
	{fsm.PathClose, "#8c959f", "solid", "0.7", "hairline light grey",
		"shutdown"},
}

// styleOf returns the style of path p.
func styleOf(p fsm.Path) (pathStyle, error) {
	for _, s := range pathStyles {
		if s.path == p {
			return s, nil
		}
	}
	return pathStyle{}, fmt.Errorf("path %q has no style: add it to pathStyles in tools/gendot/model.go", p)
}

// usedStyles returns the styles of the paths the chart uses, in legend order.
func usedStyles(c fsm.Chart) ([]pathStyle, error) {
	used := map[fsm.Path]bool{}
	for _, t := range c.Transitions {
		if _, err := styleOf(t.Path); err != nil {
			return nil, err
		}
		used[t.Path] = true
	}
	var out []pathStyle
	for _, s := range pathStyles {
		if used[s.path] {
			out = append(out, s)
		}
	}
	return out, nil
}

// edge is one arrow of a diagram: the transitions that share a source,
// target, guard, path and actions, drawn once with all their events. When fromAny
// is set the edge stands for the same transition declared from every state
// but its target (close), and from is empty.
type edge struct {
	from     fsm.State
	fromAny  bool
	to       fsm.State
	events   []fsm.Event
	guard    fsm.Guard // empty: unguarded
	actions  []fsm.Action
	path     fsm.Path
	meanings []string // distinct, in declaration order
}

// minFanIn is the least number of source states a transition needs before it
// is drawn once from "any state" instead of once per state.
const minFanIn = 3

// edges groups the chart's transitions into diagram edges, in the order of
// their first transition in the declaration.
func edges(c fsm.Chart) []edge {
	type fanKey struct {
		event   fsm.Event
		guard   fsm.Guard
		to      fsm.State
		path    fsm.Path
		actions string
	}
	actionKey := func(as []fsm.Action) string {
		return fmt.Sprint(as)
	}
	sources := map[fanKey][]fsm.State{}
	for _, t := range c.Transitions {
		k := fanKey{t.Event, t.Guard, t.To, t.Path, actionKey(t.Actions)}
		sources[k] = append(sources[k], t.From)
	}
	fromAll := func(k fanKey) bool {
		from := sources[k]
		if len(from) < minFanIn || len(from) != len(c.States)-1 {
			return false
		}
		for _, s := range c.States {
			if slices.Contains(from, s) == (s == k.to) {
				return false
			}
		}
		return true
	}

	var out []edge
	index := map[string]int{}
	for _, t := range c.Transitions {
		fk := fanKey{t.Event, t.Guard, t.To, t.Path, actionKey(t.Actions)}
		all := fromAll(fk)
		from := t.From
		if all {
			from = ""
		}
		key := strings.Join([]string{string(from), string(t.To), string(t.Guard), string(t.Path), actionKey(t.Actions)}, "\x00")
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, edge{from: from, fromAny: all, to: t.To, guard: t.Guard, path: t.Path,
				actions: slices.Clone(t.Actions)})
		}
		e := &out[i]
		if !slices.Contains(e.events, t.Event) {
			e.events = append(e.events, t.Event)
		}
		if !slices.Contains(e.meanings, t.Meaning) {
			e.meanings = append(e.meanings, t.Meaning)
		}
	}
	return out
}

// anySource names the states an edge with fromAny set leaves from.
func anySource(to fsm.State) string {
	return "any state except " + string(to)
}

// eventText joins an edge's events the UML way: "a, b".
func eventText(e edge) string {
	return joinNames(e.events)
}

// actionText joins actions: "a, b".
func actionText(as []fsm.Action) string {
	return joinNames(as)
}

func joinNames[T ~string](names []T) string {
	s := make([]string, len(names))
	for i, n := range names {
		s[i] = string(n)
	}
	return strings.Join(s, ", ")
}

// guardText is a guard the UML way, "[guard]", or "" for none.
func guardText(g fsm.Guard) string {
	if g == "" {
		return ""
	}
	return "[" + string(g) + "]"
}

// label is an edge label on one line: "event, event [guard] / action, action".
func label(e edge) string {
	l := eventText(e)
	if e.guard != "" {
		l += " " + guardText(e.guard)
	}
	if len(e.actions) > 0 {
		l += " / " + actionText(e.actions)
	}
	return l
}

// labelForm is how every legend spells a label.
const labelForm = "event, event [guard] / action, action"

// ignoredIn returns the ignores declared for state s, in event order.
func ignoredIn(c fsm.Chart, s fsm.State) []fsm.Ignore {
	var out []fsm.Ignore
	for _, e := range c.Events {
		if cell, ok := c.Cell(s, e); ok && cell.Ignore != nil {
			out = append(out, *cell.Ignore)
		}
	}
	return out
}

// ignoreLine says why s ignores an event, "event: reason", or, when guarded
// transitions of the pair come first, "event (no guard holds): reason".
func ignoreLine(c fsm.Chart, ig fsm.Ignore) string {
	if cell, _ := c.Cell(ig.State, ig.Event); len(cell.Guarded) > 0 {
		return string(ig.Event) + " (no guard holds): " + ig.Reason
	}
	return string(ig.Event) + ": " + ig.Reason
}

// usedGuards returns the declared guards some transition uses, in
// declaration order.
func usedGuards(c fsm.Chart) []fsm.GuardInfo {
	var out []fsm.GuardInfo
	for _, g := range c.Guards {
		if slices.ContainsFunc(c.Transitions, func(t fsm.Edge) bool { return t.Guard == g.Guard }) {
			out = append(out, g)
		}
	}
	return out
}
