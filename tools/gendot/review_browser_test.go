package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/repram/handover/fsm"
)

// browserEnv names the Chromium binary the browser tests run. They are
// opt-in, as the REPRAM interop tests are: a browser is a program outside
// go.mod, and starting one holds one of go test's two slots on this
// machine for about two seconds. .ci/run installs Chromium and sets it.
const browserEnv = "HANDOVER_CHROMIUM"

// browser starts headless Chromium for one test, or skips the test when
// HANDOVER_CHROMIUM is not set; set to a browser that cannot be found, it
// fails the test. The flags keep the browser off the network (the build
// machines have none) and in a fresh profile; it is gone, with its
// children, when the test ends.
func browser(t *testing.T) context.Context {
	t.Helper()
	name := os.Getenv(browserEnv)
	if name == "" {
		t.Skip(browserEnv + " is not set, so review.html is not checked in a browser: " +
			"set it to Chromium (" + browserEnv + "=$(command -v chromium), after apt-get install chromium), as .ci/run does")
	}
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s=%s: %v (install Debian's chromium package, or name the browser's binary)", browserEnv, name, err)
	}
	profile := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1600, 1200),
	)
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		if err := chromedp.Cancel(bctx); err != nil {
			t.Errorf("close chromium: %v", err)
		}
		cancelBrowser()
		cancelAlloc()
		if left := processesUsing(profile); len(left) > 0 {
			t.Errorf("chromium processes left behind: %v", left)
		}
	})
	return bctx
}

// processesUsing lists the pids whose command line names dir.
func processesUsing(dir string) []string {
	var out []string
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range cmdlines {
		if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), dir) {
			out = append(out, filepath.Base(filepath.Dir(f)))
		}
	}
	return out
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// TestReviewPageInChromium opens the generated review.html in headless
// Chromium and checks what a reviewer sees: the chart and the decision
// table render, selecting each scenario lights up exactly its edges (and
// dims the others), and no two texts of the chart overlap as the browser
// actually draws them. GENDOT_SCREENSHOT=file.png saves the page with a
// scenario selected.
func TestReviewPageInChromium(t *testing.T) {
	ctx := browser(t)
	// Chromium starts (about a second) while the page is generated.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	in := testInput()
	page := filepath.Join(t.TempDir(), "review.html")
	if err := os.WriteFile(page, []byte(fileData(t, "review.html")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := <-started; err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+page), chromedp.WaitVisible(chromedp.CSS("#chart svg"))); err != nil {
		t.Fatalf("open review.html: %v", err)
	}

	c := in.chart
	if got := eval[[]string](t, ctx, `[...document.querySelectorAll("#chart svg g.node")].map(g => g.id)`); !containsAll(strings.Join(got, " "), stateIDs(c)) {
		t.Errorf("chart nodes %v lack one of the states %v", got, stateIDs(c))
	}
	if w := eval[float64](t, ctx, `document.querySelector("#chart svg").getBoundingClientRect().width`); w < 500 {
		t.Errorf("the chart is drawn %v px wide, want it to fill its column", w)
	}
	if got, want := eval[int](t, ctx, `document.querySelectorAll("#matrix tr").length`), len(c.Events)+1; got != want {
		t.Errorf("the state × event table has %d rows, want %d", got, want)
	}
	if got, want := eval[int](t, ctx, `document.querySelectorAll("#matrix .br.ignored").length`), len(c.Ignores); got != want {
		t.Errorf("the table shows %d ignored cells, want one per declared ignore: %d", got, want)
	}
	if got, want := eval[int](t, ctx, `document.querySelectorAll("#guards tr").length`), len(c.Guards)+1; got != want {
		t.Errorf("the guards table has %d rows, want %d", got, want)
	}
	if got, want := eval[int](t, ctx, `document.querySelectorAll("#rules tr").length`), len(in.rules)+1; got != want {
		t.Errorf("the engine rules table has %d rows, want %d", got, want)
	}

	es := edges(c)
	// Every scenario in one evaluation (a mouse click costs a frame or
	// more each): a click at the centre of its radio button must reach the
	// button or its label, and selecting it must light up exactly the
	// scenario's edges.
	var names []string
	for _, sc := range in.scenarios {
		names = append(names, sc.name)
	}
	jsNames, err := json.Marshal(names)
	if err != nil {
		t.Fatal(err)
	}
	picked := eval[[]shownScenario](t, ctx, string(jsNames)+`.map(name => {
		const input = document.querySelector('#scenario-list input[value="' + name + '"]');
		input.scrollIntoView({block: "nearest"});
		const r = input.getBoundingClientRect();
		const at = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
		const hit = at === input || [...input.labels].some(l => l.contains(at));
		input.click();
		return {name, hit, `+shownJS+`};
	})`)
	if len(picked) != len(in.scenarios) {
		t.Fatalf("%d scenarios picked in the page, want %d", len(picked), len(in.scenarios))
	}
	for i, sc := range in.scenarios {
		if !picked[i].Hit {
			t.Errorf("%s: a click at the centre of its radio button hits an element that does not select it", sc.name)
		}
		checkShown(t, sc, es, picked[i])
	}
	// One real mouse click, through Chromium's input pipeline.
	first := in.scenarios[0]
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#scenario-list input[value="`+first.name+`"]`))); err != nil {
		t.Fatalf("select %s: %v", first.name, err)
	}
	checkShown(t, first, es, eval[shownScenario](t, ctx, `(name => ({name, `+shownJS+`}))("`+first.name+`")`))

	boxes := eval[[][5]any](t, ctx, `[...document.querySelectorAll("#chart svg text")].map(e => { const b = e.getBBox(); return [e.textContent, b.x, b.y, b.width, b.height]; })`)
	var bs []textBox
	for _, b := range boxes {
		x, y, w, h := b[1].(float64), b[2].(float64), b[3].(float64), b[4].(float64)
		// getBBox is the line box (ascent to descent of the font); lines
		// of one label are 1.2 em apart, so trim a little to keep touching
		// neighbours apart and catch real overlaps only.
		bs = append(bs, textBox{text: b[0].(string), x0: x + 0.5, y0: y + 0.5, x1: x + w - 0.5, y1: y + h - 0.5})
	}
	for _, o := range overlaps(bs) {
		t.Errorf("as Chromium draws them, labels overlap: %v and %v", o[0], o[1])
	}

	if shot := os.Getenv("GENDOT_SCREENSHOT"); shot != "" {
		// The scenario that takes the most edges shows the most.
		best := slices.MaxFunc(in.scenarios, func(a, b scenario) int {
			return len(scenarioEdges(a, es)) - len(scenarioEdges(b, es))
		})
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#scenario-list input[value="`+best.name+`"]`))); err != nil {
			t.Fatal(err)
		}
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(shot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// shownScenario is what the page shows with a scenario selected.
type shownScenario struct {
	Name string
	Hit  bool // a click at the centre of its radio button reaches it or its label
	// Highlighted lists the ids of the chart's highlighted edges.
	Highlighted []string
	// Rows counts the rows of the scenario's steps table, when shown.
	Rows int
	// Opacity is "hl 1" or "dim 0.14" for each edge of the chart.
	Opacity []string
}

// shownJS is the fields of a shownScenario, read from the page for the
// scenario called name.
const shownJS = `highlighted: [...new Set([...document.querySelectorAll("#chart svg .hl")].map(e => e.id || e.getAttribute("class").split(" ")[0]))].sort(),
		rows: document.querySelectorAll("#steps-" + name + ".shown tr").length,
		opacity: [...document.querySelectorAll("#chart svg g.edge")].map(g => (g.classList.contains("hl") ? "hl " : "dim ") + getComputedStyle(g).opacity)`

// checkShown checks the page selected sc: exactly its edges highlighted,
// the rest faded, and its steps table shown.
func checkShown(t *testing.T, sc scenario, es []edge, got shownScenario) {
	t.Helper()
	if got.Name != sc.name {
		t.Fatalf("the page showed %q for scenario %q", got.Name, sc.name)
	}
	if want := scenarioEdges(sc, es); !slices.Equal(got.Highlighted, want) {
		t.Errorf("%s: highlighted %v, want its edges %v", sc.name, got.Highlighted, want)
	}
	if got.Rows != len(sc.steps)+1 {
		t.Errorf("%s: the steps table shows %d rows, want a header and one per step: %d", sc.name, got.Rows, len(sc.steps)+1)
	}
	// Highlighting must be visible: taken edges opaque, the rest faded.
	for _, o := range got.Opacity {
		if kind, v, _ := strings.Cut(o, " "); (kind == "hl") != (v == "1") {
			t.Errorf("%s: an edge drawn %s has opacity %s", sc.name, kind, v)
			break
		}
	}
}

func stateIDs(c fsm.Chart) []string {
	var out []string
	for _, s := range c.States {
		out = append(out, stateID(s))
	}
	return out
}

// scenarioEdges returns the ids of the edges a scenario takes, sorted.
func scenarioEdges(sc scenario, es []edge) []string {
	var out []string
	for _, st := range sc.steps {
		if st.t != nil {
			if id := edgeID(edgeIndex(es, *st.t)); !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	slices.Sort(out)
	return out
}
