package main

import (
	"html"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport/engine"
)

func TestReplay(t *testing.T) {
	c := fsm.Declaration()
	es := edges(c)
	type want struct {
		to     fsm.State
		guard  fsm.Guard
		path   fsm.Path
		reason string // set: ignored
	}
	cases := []struct {
		name, text string
		want       []want // one per non-restart step
		err        string
	}{
		{"join, ignore, restart", `
# joins
# event   state after
attach        joining   join   # a comment
attach        joining   ignored
restart
attach        joining
`, []want{{to: fsm.Joining, path: fsm.PathJoin}, {to: fsm.Joining, reason: "already joining: the race is running"}, {to: fsm.Joining, path: fsm.PathJoin}}, ""},
		{"no alternative: the fallback", `
attach        joining   join
new_failed    detached  detach
`, []want{{to: fsm.Joining, path: fsm.PathJoin}, {to: fsm.Detached, path: fsm.PathDetach}}, ""},
		{"an alternative queued", `
attach                        joining   join
new_failed[has_alternative]   joining   race
`, []want{{to: fsm.Joining, path: fsm.PathJoin}, {to: fsm.Joining, guard: fsm.HasAlternative, path: fsm.PathRace}}, ""},
		{"others racing, from the links dialled", `
attach                           joining   join
attempt_delay[has_alternative]   joining   race
new_failed                       joining   race
`, []want{{to: fsm.Joining, path: fsm.PathJoin}, {to: fsm.Joining, guard: fsm.HasAlternative, path: fsm.PathRace},
			{to: fsm.Joining, guard: fsm.OthersRacing, path: fsm.PathRace}}, ""},
		{"the chart disagrees", "attach joining join\nhandshake_ok overlapping migrate\n", nil, "x.txt:2: handshake_ok in joining went to attached"},
		{"a wrong path", "attach joining migrate\n", nil, "x.txt:1: attach in detached went to joining"},
		{"ignored but it is a transition", "attach joining ignored\n", nil, "x.txt:1:"},
		{"a transition but it is ignored", "handshake_ok detached join\n", nil, "x.txt:1:"},
		{"others_racing is not written", "attach[others_racing] joining join\n", nil, `x.txt:1: "attach[others_racing]"`},
		{"an unknown event", "teleport joining join\n", nil, `x.txt:1: fsm: unknown event`},
		{"four columns", "attach joining join extra\n", nil, `x.txt:1: want`},
		{"a lone word", "attach\n", nil, "x.txt:1: want"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := replay(c, "x", []byte(tc.text))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []step
			for _, st := range sc.steps {
				if !st.restart {
					got = append(got, st)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d steps, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				st := got[i]
				if st.to != w.to || st.reason != w.reason {
					t.Errorf("step %d: to %s reason %q, want %s %q", i, st.to, st.reason, w.to, w.reason)
				}
				if w.reason != "" {
					if st.t != nil || st.edge != -1 {
						t.Errorf("step %d: ignored, but took %+v (edge %d)", i, st.t, st.edge)
					}
					continue
				}
				if st.t == nil || st.t.Guard != w.guard || st.t.Path != w.path || st.edge < 0 || es[st.edge].guard != w.guard {
					t.Errorf("step %d: took %+v (edge %d), want guard %q path %s", i, st.t, st.edge, w.guard, w.path)
				}
			}
		})
	}
	if sc, _ := replay(c, "x", []byte(cases[0].text)); strings.Join(sc.about, "|") != "joins" {
		t.Errorf("about %q, want the heading comment without the column header", sc.about)
	}
}

func TestReadScenariosNeedsFiles(t *testing.T) {
	if _, err := readScenarios(fsm.Declaration(), t.TempDir()); err == nil {
		t.Error("no error for a directory without scenarios")
	}
}

// TestReviewTagsEveryLoopLine checks that each line of a loop listed in its
// state's box carries the loop's edge id, so selecting a scenario can light
// it up, and that a chart whose SVG lacks them is an error.
func TestReviewTagsEveryLoopLine(t *testing.T) {
	c := fsm.Declaration()
	html := fileData(t, "review.html")
	loops := 0
	for i, e := range edges(c) {
		if !isLoop(e) {
			continue
		}
		loops++
		got := strings.Count(html, `<text class="`+edgeID(i)+`" `)
		if want := len(loopLines(e)); got != want {
			t.Errorf("loop %q: %d tagged lines, want %d", label(e), got, want)
		}
	}
	if loops == 0 {
		t.Fatal("the chart has no loops: this test checks nothing")
	}
	// Drop the last line of joining's box: its loops no longer add up.
	svg := fileData(t, "migration.svg")
	box := strings.Index(svg, `<g id="state_joining"`)
	end := box + strings.Index(svg[box:], "</a>")
	last := box + strings.LastIndex(svg[box:end], "<text ")
	broken := svg[:last] + svg[last+strings.Index(svg[last:], "\n")+1:]
	if _, err := pageSVG([]byte(broken), c); err == nil {
		t.Error("no error for an SVG missing a loop line")
	}
}

// TestReviewIsSelfContained: the page must work offline from a checkout.
func TestReviewIsSelfContained(t *testing.T) {
	html := fileData(t, "review.html")
	for _, bad := range []string{"<link", " src=", "@import", "url(", "<iframe", "<?xml", "<!DOCTYPE svg"} {
		if strings.Contains(html, bad) {
			t.Errorf("review.html contains %q", bad)
		}
	}
	for _, m := range regexp.MustCompile(`https?://[^"' )<]*`).FindAllString(html, -1) {
		if m != "http://www.w3.org/2000/svg" && m != "http://www.w3.org/1999/xlink" {
			t.Errorf("review.html refers to %s", m)
		}
	}
	if !strings.Contains(html, "<svg") || !strings.Contains(html, `id="matrix"`) {
		t.Error("review.html lacks the chart or the table")
	}
}

func TestEngineRulesAreListed(t *testing.T) {
	rules := engine.Rules()
	if len(rules) == 0 {
		t.Fatal("the engine declares no rules: this test checks nothing")
	}
	md, page := fileData(t, "transitions.md"), fileData(t, "review.html")
	mdRows := section(md, mdRules)
	for _, r := range rules {
		row := "| `" + r.Name + "` | " + cell(r.When) + " | " + cell(r.Then) + " | `" + r.Test + "` |"
		if !slices.Contains(mdRows, row) {
			t.Errorf("transitions.md, %s: no row %q", mdRules, row)
		}
		row = "<tr><td><code>" + r.Name + "</code></td><td>" + r.When + "</td><td>" +
			r.Then + "</td><td><code>" + r.Test + "</code></td></tr>"
		if !strings.Contains(html.UnescapeString(page), row) {
			t.Errorf("review.html: no rule row %q", row)
		}
	}
}

func TestEveryOutputExplainsEveryGuard(t *testing.T) {
	c := fsm.Declaration()
	if len(c.Guards) == 0 {
		t.Fatal("the chart declares no guards: this test checks nothing")
	}
	for _, g := range usedGuards(c) {
		first := wrap(g.Meaning, guardWrap)[0]
		for name, want := range map[string][]string{
			"migration.dot":  {">" + guardText(g.Guard) + "<", html.EscapeString(first)},
			"migration.svg":  {">" + guardText(g.Guard) + "</text>", html.EscapeString(first)},
			"migration.mmd":  {"%% Guard " + guardText(g.Guard) + ": " + g.Meaning, "        " + guardText(g.Guard) + " " + g.Meaning},
			"transitions.md": {"| `" + guardText(g.Guard) + "` | " + cell(g.Meaning) + " |"},
			"review.html":    {"<tr><td><code>" + guardText(g.Guard) + "</code></td><td>" + html.EscapeString(g.Meaning) + "</td></tr>"},
		} {
			for _, w := range want {
				if !strings.Contains(fileData(t, name), w) {
					t.Errorf("%s does not explain %s: no %q", name, g.Guard, w)
				}
			}
		}
	}
}
