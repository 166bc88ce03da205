package main

import (
	"bytes"
	"context"
	"errors"
	"html"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport/engine"
)

// committed is where the generated files live, relative to this package.
const committed = "../../docs/statecharts"

// generated renders the files once per test binary: Graphviz runs as
// WebAssembly and is the slow part.
var generated = sync.OnceValues(func() ([]file, error) {
	return generate(context.Background(), testInput())
})

// testInput is the chart and the scenarios of the module, as run gives them.
func testInput() input {
	c := fsm.Declaration()
	sc, err := readScenarios(c, "../../"+scenarioDir)
	if err != nil {
		panic(err)
	}
	return input{chart: c, scenarios: sc, rules: engine.Rules()}
}

func files(t *testing.T) []file {
	t.Helper()
	fs, err := generated()
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func fileData(t *testing.T, name string) string {
	t.Helper()
	for _, f := range files(t) {
		if f.name == name {
			return string(f.data)
		}
	}
	t.Fatalf("%s was not generated", name)
	return ""
}

// edgeOf returns the diagram edge that draws transition tr.
func edgeOf(t *testing.T, es []edge, tr fsm.Edge) edge {
	t.Helper()
	var found []edge
	for _, e := range es {
		if e.to == tr.To && (e.from == tr.From || e.fromAny) && slices.Contains(e.events, tr.Event) &&
			e.guard == tr.Guard && e.path == tr.Path && slices.Equal(e.actions, tr.Actions) {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s --%s--> %s is drawn by %d edges, want 1: %+v", tr.From, tr.Event, tr.To, len(found), found)
	}
	return found[0]
}

func TestEdgesDrawEveryTransitionOnce(t *testing.T) {
	c := fsm.Declaration()
	es := edges(c)
	drawn := 0
	for _, e := range es {
		n := len(e.events)
		if e.fromAny {
			n *= len(c.States) - 1
		}
		drawn += n
	}
	if drawn != len(c.Transitions) {
		t.Errorf("edges stand for %d transitions, the chart declares %d", drawn, len(c.Transitions))
	}
	for _, tr := range c.Transitions {
		e := edgeOf(t, es, tr)
		if e.fromAny {
			// A fan-in edge claims the transition from every state but its target.
			for _, s := range c.States {
				if s == e.to {
					continue
				}
				if cell, ok := c.Cell(s, tr.Event); !ok || cell.Transition == nil || cell.Transition.To != e.to {
					t.Errorf("fan-in edge %q claims %s --%s--> %s, which is not declared", label(e), s, tr.Event, e.to)
				}
			}
		}
	}
}

func TestCloseIsDrawnOnceFromAnyState(t *testing.T) {
	c := fsm.Declaration()
	var fan []edge
	for _, e := range edges(c) {
		if e.fromAny {
			fan = append(fan, e)
		}
	}
	if len(fan) != 1 || fan[0].to != fsm.Closed || !slices.Equal(fan[0].events, []fsm.Event{fsm.Close}) {
		t.Fatalf("fan-in edges %+v, want one close edge into closed", fan)
	}
}

func TestFanInNeedsEveryState(t *testing.T) {
	c := fsm.Declaration()
	// Make cooldown ignore close: close no longer leaves every state, so it
	// must be drawn state by state.
	c.Transitions = slices.DeleteFunc(c.Transitions, func(tr fsm.Edge) bool {
		return tr.From == fsm.Cooldown && tr.Event == fsm.Close
	})
	c.Ignores = append(c.Ignores, fsm.Ignore{State: fsm.Cooldown, Event: fsm.Close, Reason: "test"})
	closeEdges := 0
	for _, e := range edges(c) {
		if e.fromAny {
			t.Errorf("edge %q is drawn from any state, but cooldown does not take it", label(e))
		}
		if slices.Contains(e.events, fsm.Close) {
			closeEdges++
		}
	}
	if want := len(c.States) - 2; closeEdges != want {
		t.Errorf("%d close edges, want one per state that takes it: %d", closeEdges, want)
	}
}

func TestDotHasEveryTransition(t *testing.T) {
	c := fsm.Declaration()
	dot := fileData(t, "migration.dot")
	lines := strings.Split(dot, "\n")
	es := edges(c)
	for _, tr := range c.Transitions {
		e := edgeOf(t, es, tr)
		i := slices.IndexFunc(es, func(x edge) bool {
			return slices.Equal(x.events, e.events) && x.from == e.from && x.to == e.to && x.guard == e.guard && x.path == e.path
		})
		st, err := styleOf(tr.Path)
		if err != nil {
			t.Fatal(err)
		}
		var prefix string
		var want []string
		switch {
		case isLoop(e): // listed inside its state's box
			prefix = "\t" + quote(string(tr.From)) + " [id="
			want = append(want, `color="`+st.color+`"`)
			for _, l := range loopLines(e) {
				want = append(want, html.EscapeString(l))
			}
		case e.fromAny:
			prefix = "\t" + anyNode(tr.To) + " -> " + quote(string(tr.To)) + " [id=" + quote(edgeID(i))
			want = []string{string(tr.Event), "color=" + quote(st.color), "style=" + st.style}
		default:
			prefix = "\t" + quote(string(tr.From)) + " -> " + quote(string(tr.To)) + " [id=" + quote(edgeID(i))
			want = []string{string(tr.Event), "color=" + quote(st.color), "style=" + st.style}
		}
		if !isLoop(e) {
			if tr.Guard != "" {
				want = append(want, "<br/>"+guardText(tr.Guard)+"<br/>")
			}
			if len(tr.Actions) > 0 {
				want = append(want, "/ "+string(tr.Actions[0]))
			}
		}
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, prefix) && containsAll(l, want) }) {
			t.Errorf("migration.dot has no line %s...] with %q", prefix, want)
		}
	}
	if !strings.Contains(dot, "initial -> "+quote(string(c.Initial))) {
		t.Errorf("migration.dot does not mark %s as the initial state", c.Initial)
	}
}

func TestDotTooltipsListEveryIgnore(t *testing.T) {
	c := fsm.Declaration()
	lines := strings.Split(fileData(t, "migration.dot"), "\n")
	for _, ig := range c.Ignores {
		prefix := "\t" + quote(string(ig.State)) + " [id=" + quote(stateID(ig.State)) + ", tooltip="
		want := `\n` + ignoreLine(c, ig)
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, prefix) && strings.Contains(l, want) }) {
			t.Errorf("migration.dot: the tooltip of %s does not say it ignores %s", ig.State, ig.Event)
		}
	}
}

func TestMermaidHasEveryTransition(t *testing.T) {
	c := fsm.Declaration()
	mmd := fileData(t, "migration.mmd")
	if !strings.HasPrefix(mmd, "stateDiagram-v2\n") {
		t.Fatalf("migration.mmd does not start with stateDiagram-v2:\n%s", mmd)
	}
	lines := strings.Split(mmd, "\n")
	for _, tr := range c.Transitions {
		e := edgeOf(t, edges(c), tr)
		from := string(tr.From)
		if e.fromAny {
			from = anyNode(tr.To)
		}
		prefix := "    " + from + " --> " + string(tr.To) + " : "
		want := []string{string(tr.Event), "«" + string(tr.Path) + "»"}
		if tr.Guard != "" {
			want = append(want, " "+guardText(tr.Guard))
		}
		if len(tr.Actions) > 0 {
			want = append(want, " / "+actionText(tr.Actions))
		}
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, prefix) && containsAll(l, want) }) {
			t.Errorf("migration.mmd has no line %q with %q", prefix, want)
		}
	}
	if !slices.Contains(lines, "    [*] --> "+string(c.Initial)) {
		t.Errorf("migration.mmd does not mark %s as the initial state", c.Initial)
	}
}

func TestEveryLegendNamesEveryPath(t *testing.T) {
	c := fsm.Declaration()
	for _, tr := range c.Transitions {
		st, err := styleOf(tr.Path)
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]string{
			"migration.dot":  ">" + string(tr.Path) + "<",
			"migration.mmd":  "«" + string(tr.Path) + "» " + st.about,
			"transitions.md": "| `" + string(tr.Path) + "` | " + st.look + " | " + st.about + " |",
			"migration.svg":  ">" + string(tr.Path) + "</text>",
		} {
			if !strings.Contains(fileData(t, name), want) {
				t.Errorf("the legend in %s lacks path %s: no %q", name, tr.Path, want)
			}
		}
	}
}

func TestUnknownPathIsAnError(t *testing.T) {
	c := fsm.Declaration()
	c.Transitions[0].Path = "teleport"
	for name, render := range map[string]func(fsm.Chart) ([]byte, error){
		"dot": dotFile, "mermaid": mermaidFile,
		"markdown": func(c fsm.Chart) ([]byte, error) { return markdownFile(c, nil) },
		"review":   func(c fsm.Chart) ([]byte, error) { return reviewFile(c, []byte("<svg></svg>"), nil, nil) },
	} {
		if _, err := render(c); err == nil || !strings.Contains(err.Error(), `"teleport"`) {
			t.Errorf("%s: error %v, want one naming the path without a style", name, err)
		}
	}
}

// section returns the lines of the Markdown section with the given title.
func section(md, title string) []string {
	_, rest, ok := strings.Cut(md, "\n"+title+"\n")
	if !ok {
		return nil
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	return strings.Split(rest, "\n")
}

func TestMarkdownDecidesEveryCell(t *testing.T) {
	c := fsm.Declaration()
	md := fileData(t, "transitions.md")
	rows := map[[2]string][]string{}
	var state string
	for _, l := range section(md, mdCells) {
		if s, ok := strings.CutPrefix(l, "### "); ok {
			state = s
			continue
		}
		if rest, ok := strings.CutPrefix(l, "| `"); ok {
			event, _, _ := strings.Cut(rest, "`")
			k := [2]string{state, event}
			rows[k] = append(rows[k], l)
		}
	}
	if want := len(c.States) * len(c.Events); len(rows) != want {
		t.Errorf("rows for %d state × event pairs, want %d", len(rows), want)
	}
	transition := func(tr *fsm.Edge) []string {
		want := []string{"| **→ " + string(tr.To) + "** |", " " + string(tr.Path) + " ", tr.Meaning}
		if len(tr.Actions) > 0 {
			want = append(want, "| "+actionText(tr.Actions)+" |")
		}
		return want
	}
	for _, s := range c.States {
		for _, e := range c.Events {
			got := rows[[2]string{string(s), string(e)}]
			cell, _ := c.Cell(s, e)
			if len(got) != len(cell.Guarded)+1 {
				t.Errorf("(%s, %s): %d rows, want one per guarded transition and one fallback: %d", s, e, len(got), len(cell.Guarded)+1)
				continue
			}
			var wants [][]string
			for _, tr := range cell.Guarded {
				wants = append(wants, append(transition(tr), "| `"+guardText(tr.Guard)+"` |"))
			}
			var fallback []string
			if tr := cell.Transition; tr != nil {
				fallback = transition(tr)
			} else {
				fallback = []string{"| ignored |", cell.Ignore.Reason}
			}
			if len(cell.Guarded) > 0 {
				fallback = append(fallback, "| else |")
			}
			wants = append(wants, fallback)
			for i, want := range wants {
				if !containsAll(got[i], want) {
					t.Errorf("(%s, %s): row %q lacks one of %q", s, e, got[i], want)
				}
			}
		}
	}
}

func TestMarkdownListsEveryTransition(t *testing.T) {
	c := fsm.Declaration()
	var rows []string
	for _, l := range section(fileData(t, "transitions.md"), mdTransitions) {
		if strings.HasPrefix(l, "| ") && !strings.HasPrefix(l, "| #") {
			rows = append(rows, l)
		}
	}
	if len(rows) != len(c.Transitions) {
		t.Fatalf("%d transition rows, want %d", len(rows), len(c.Transitions))
	}
	for i, tr := range c.Transitions {
		want := []string{"| " + string(tr.From) + " |", "| `" + string(tr.Event) + "` |", "| " + string(tr.To) + " |", tr.Meaning}
		if tr.Guard != "" {
			want = append(want, "| `"+guardText(tr.Guard)+"` |")
		}
		if !containsAll(rows[i], want) {
			t.Errorf("row %d %q lacks one of %q", i+1, rows[i], want)
		}
	}
}

func TestSVGIsRendered(t *testing.T) {
	svg := fileData(t, "migration.svg")
	if !strings.Contains(svg, "<svg") || !strings.HasSuffix(svg, "</svg>\n") {
		t.Fatalf("migration.svg is not a whole SVG document:\n%.300s", svg)
	}
	c := fsm.Declaration()
	for _, s := range c.States {
		if !strings.Contains(svg, ">"+string(s)+"</text>") {
			t.Errorf("migration.svg has no node text %q", s)
		}
	}
	for _, e := range c.Events {
		if _, ok := firstTransition(c, e); ok && !strings.Contains(svg, ">"+string(e)) {
			t.Errorf("migration.svg has no edge label with %q", e)
		}
	}
}

func firstTransition(c fsm.Chart, e fsm.Event) (fsm.Edge, bool) {
	for _, tr := range c.Transitions {
		if tr.Event == e {
			return tr, true
		}
	}
	return fsm.Edge{}, false
}

func TestGenerateIsDeterministic(t *testing.T) {
	again, err := generate(context.Background(), testInput())
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range files(t) {
		if again[i].name != f.name || !bytes.Equal(again[i].data, f.data) {
			t.Errorf("%s differs between two runs", f.name)
		}
	}
}

func TestCommittedFilesAreUpToDate(t *testing.T) {
	if err := checkFiles(committed, files(t)); err != nil {
		t.Fatal(err)
	}
}

func TestRunCheckFailsNamingEachStaleFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := writeFiles(dir, files(t)); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), dir, true, &out); err != nil {
		t.Fatalf("check on freshly written files: %v", err)
	}

	mmd := filepath.Join(dir, "migration.mmd")
	data, err := os.ReadFile(mmd)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mmd, append(data, "%% edited by hand\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "transitions.md")); err != nil {
		t.Fatal(err)
	}
	err = checkFiles(dir, files(t))
	var stale *StaleError
	if !errors.As(err, &stale) {
		t.Fatalf("check after editing: %v, want a *StaleError", err)
	}
	if !slices.Equal(stale.Stale, []string{"migration.mmd"}) || !slices.Equal(stale.Missing, []string{"transitions.md"}) {
		t.Errorf("stale %q, missing %q; want [migration.mmd], [transitions.md]", stale.Stale, stale.Missing)
	}
	for _, want := range []string{"migration.mmd is stale", "transitions.md is missing", "go run ./tools/gendot"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	n, err := writeFiles(dir, files(t))
	if err != nil || n != 2 {
		t.Fatalf("regenerating rewrote %d files (err %v), want the 2 that were off", n, err)
	}
	if err := checkFiles(dir, files(t)); err != nil {
		t.Errorf("check after regenerating: %v", err)
	}
}

func TestModuleRoot(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	want, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if root != want {
		t.Errorf("module root %s, want %s", root, want)
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func TestReadmeChartIsReplacedBetweenMarkers(t *testing.T) {
	files := []file{{"migration.mmd", []byte("stateDiagram-v2\n    a --> b\n")}}
	in := []byte("# title\n" + readmeBegin + "\nstale\n" + readmeEnd + "\ntail\n")
	got, err := readmeWithChart(in, files)
	if err != nil {
		t.Fatal(err)
	}
	want := "# title\n" + readmeBegin + "\n```mermaid\nstateDiagram-v2\n    a --> b\n```\n" + readmeEnd + "\ntail\n"
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if _, err := readmeWithChart([]byte("# no markers\n"), files); err == nil {
		t.Fatal("a README without markers was accepted")
	}
	path := filepath.Join(t.TempDir(), "README.md")
	if err := os.WriteFile(path, in, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkReadme(path, files); err == nil {
		t.Fatal("a stale README chart passed the check")
	}
	if n, err := writeReadme(path, files); err != nil || n != 1 {
		t.Fatalf("writeReadme = %d, %v", n, err)
	}
	if err := checkReadme(path, files); err != nil {
		t.Fatalf("after writing: %v", err)
	}
}
