package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/repram/handover/fsm"
)

// scenarioDir holds the scenario traces (format: testdata/fsm/README.md),
// relative to the module root.
const scenarioDir = "testdata/fsm/scenarios"

// scenario is one scenario file replayed on the chart, for review.html.
type scenario struct {
	name  string   // the file name without .txt
	about []string // the comment lines heading the file
	steps []step
}

// step is one line of a scenario: a restart, or an event fired in state
// from, which either took edge (an index into edges(c)) to state to, or was
// ignored for reason.
type step struct {
	line    int
	restart bool
	from    fsm.State
	event   fsm.Event
	to      fsm.State
	edge    int // -1 when ignored
	t       *fsm.Edge
	reason  string
}

// readScenarios reads and replays every *.txt file in dir, in name order.
func readScenarios(c fsm.Chart, dir string) ([]scenario, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, fmt.Errorf("list the scenarios: %w", err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no scenario files (*.txt) in %s: run gendot inside the module", dir)
	}
	var out []scenario
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("read a scenario: %w", err)
		}
		sc, err := replay(c, strings.TrimSuffix(filepath.Base(n), ".txt"), data)
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, nil
}

// replay parses one scenario file and plays it as fsm's scenario test does:
// on a real fsm.Machine from the initial state, has_alternative holding
// where a line writes event[has_alternative], others_racing evaluated from
// the links the trace has dialled (fsm.Links). Lines are "event[guards]
// state-after [ignored|path]", "restart", comments or blank (format:
// testdata/fsm/README.md). A line the machine contradicts is an error
// naming FILE:LINE; go test ./fsm/ says the same in more detail.
func replay(c fsm.Chart, name string, data []byte) (scenario, error) {
	sc := scenario{name: name}
	es := edges(c)
	m, links := fsm.New(), fsm.Links{}
	sr := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sr.Scan(); n++ {
		raw := strings.TrimSpace(sr.Text())
		text, comment, _ := strings.Cut(raw, "#")
		f := strings.Fields(text)
		where := fmt.Sprintf("%s/%s.txt:%d", scenarioDir, name, n)
		switch {
		case len(f) == 0:
			if c := strings.TrimSpace(comment); raw != "" && len(sc.steps) == 0 && !strings.HasPrefix(c, "event") {
				sc.about = append(sc.about, c)
			}
			continue
		case len(f) == 1 && f[0] == "restart":
			m, links = fsm.New(), fsm.Links{}
			sc.steps = append(sc.steps, step{line: n, restart: true, to: m.State(), edge: -1})
			continue
		case len(f) < 2 || len(f) > 3:
			return sc, fmt.Errorf("%s: want \"event[guards] state-after [ignored|path]\" or restart, got %q", where, text)
		}
		event, guards, bracket := strings.Cut(f[0], "[")
		alt := false
		if bracket {
			if guards != string(fsm.HasAlternative)+"]" {
				return sc, fmt.Errorf("%s: %q: a scenario states only [%s] (testdata/fsm/README.md); "+
					"if the format grew, teach tools/gendot/scenario.go", where, f[0], fsm.HasAlternative)
			}
			alt = true
		}
		fired, err := m.Fire(fsm.Event(event), func(g fsm.Guard) bool { return links.Holds(g, alt) })
		if err != nil {
			return sc, fmt.Errorf("%s: %w", where, err)
		}
		links.Apply(fired.Actions)
		want := ""
		if len(f) == 3 {
			want = f[2]
		}
		if got := m.State(); got != fsm.State(f[1]) || (want == "ignored") != fired.Ignored ||
			(want != "" && want != "ignored" && string(fired.Path) != want) {
			return sc, fmt.Errorf("%s: %s in %s went to %s (path %q, ignored %v), the file says %s %s: "+
				"fix the scenario or the chart (go test ./fsm/ explains)", where, event, fired.From, got, fired.Path, fired.Ignored, f[1], want)
		}
		st := step{line: n, from: fired.From, event: fired.Event, to: m.State(), edge: -1, reason: fired.Reason}
		if !fired.Ignored {
			cell, _ := c.Cell(fired.From, fired.Event)
			for _, t := range append(cell.Guarded, cell.Transition) {
				if t != nil && t.Guard == fired.Guard {
					st.t = t
				}
			}
			if st.t == nil {
				return sc, fmt.Errorf("%s: the machine took %s [%s] in %s, which the chart given to gendot does not declare",
					where, fired.Event, fired.Guard, fired.From)
			}
			st.edge = edgeIndex(es, *st.t)
		}
		sc.steps = append(sc.steps, st)
	}
	if err := sr.Err(); err != nil {
		return sc, fmt.Errorf("read %s: %w", name, err)
	}
	return sc, nil
}

// edgeIndex returns the index of the edge of es that draws t, or -1.
func edgeIndex(es []edge, t fsm.Edge) int {
	for i, e := range es {
		if e.to == t.To && (e.from == t.From || e.fromAny) && e.guard == t.Guard && e.path == t.Path &&
			slices.Equal(e.actions, t.Actions) && slices.Contains(e.events, t.Event) {
			return i
		}
	}
	return -1
}
