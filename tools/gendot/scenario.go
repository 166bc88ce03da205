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
	t       *fsm.Transition
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

// replay parses one scenario file and follows it on the chart. Each line
// is "event state-after [ignored|path] [[guard]]", "restart", a comment or
// blank. A line that names no guard is read as fsm's scenario test fires
// it, with no guard holding: the pair's fallback, when it ends in the
// expected state (on the path, when the line names one); failing that, the
// first guarded transition that does, since the file says what happened,
// not which guard held. A line naming [guard] takes that guard's branch. A line the chart contradicts is
// an error naming FILE:LINE; go test ./fsm/ says the same in more detail.
func replay(c fsm.Chart, name string, data []byte) (scenario, error) {
	sc := scenario{name: name}
	es := edges(c)
	cur := c.Initial
	sr := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sr.Scan(); n++ {
		raw := strings.TrimSpace(sr.Text())
		text, comment, _ := strings.Cut(raw, "#")
		f := strings.Fields(text)
		if len(f) == 0 {
			if c := strings.TrimSpace(comment); raw != "" && len(sc.steps) == 0 && !strings.HasPrefix(c, "event ") {
				sc.about = append(sc.about, c)
			}
			continue
		}
		where := fmt.Sprintf("%s/%s.txt:%d", scenarioDir, name, n)
		if len(f) == 1 && f[0] == "restart" {
			cur = c.Initial
			sc.steps = append(sc.steps, step{line: n, restart: true, to: cur, edge: -1})
			continue
		}
		if len(f) < 2 {
			return sc, fmt.Errorf("%s: want \"event state-after [ignored|path]\", got %q", where, text)
		}
		st := step{line: n, from: cur, event: fsm.Event(f[0]), to: fsm.State(f[1]), edge: -1}
		var want string // "ignored", a path or ""
		var guard fsm.Guard
		for _, x := range f[2:] {
			switch {
			case strings.HasPrefix(x, "[") && strings.HasSuffix(x, "]") && guard == "":
				guard = fsm.Guard(x[1 : len(x)-1])
			case want == "":
				want = x
			default:
				return sc, fmt.Errorf("%s: unexpected %q: gendot reads \"event state-after [ignored|path] [[guard]]\"; "+
					"if the format grew, teach tools/gendot/scenario.go", where, x)
			}
		}
		cell, ok := c.Cell(cur, st.event)
		if !ok {
			return sc, fmt.Errorf("%s: (%s, %s) is not declared in the chart", where, cur, st.event)
		}
		fits := func(t *fsm.Transition) bool {
			return t != nil && want != "ignored" && t.To == st.to && (want == "" || string(t.Path) == want)
		}
		switch {
		case guard == "" && fits(cell.Transition): // no guard held: the fallback
			st.t = cell.Transition
		case guard == "" && cell.Ignore != nil && st.to == cur && (want == "" || want == "ignored"):
			st.reason = cell.Ignore.Reason
		default:
			for _, t := range cell.Guarded {
				if fits(t) && (guard == "" || t.Guard == guard) {
					st.t = t
					break
				}
			}
		}
		switch {
		case st.t != nil:
			st.edge = edgeIndex(es, *st.t)
		case st.reason == "":
			return sc, fmt.Errorf("%s: the chart has no %s in %s leading to %s %s %s: fix the scenario or the chart (go test ./fsm/ explains)",
				where, st.event, cur, st.to, want, guardText(guard))
		}
		sc.steps = append(sc.steps, st)
		cur = st.to
	}
	if err := sr.Err(); err != nil {
		return sc, fmt.Errorf("read %s: %w", name, err)
	}
	return sc, nil
}

// edgeIndex returns the index of the edge of es that draws t, or -1.
func edgeIndex(es []edge, t fsm.Transition) int {
	for i, e := range es {
		if e.to == t.To && (e.from == t.From || e.fromAny) && e.guard == t.Guard && e.path == t.Path &&
			slices.Equal(e.actions, t.Actions) && slices.Contains(e.events, t.Event) {
			return i
		}
	}
	return -1
}
