package fsm_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/repram/handover/fsm"
)

// scenarioDir holds the scenario traces; the format is described in
// testdata/fsm/README.md.
var scenarioDir = filepath.Join("..", "testdata", "fsm", "scenarios")

// scenarioLine is one line of a scenario: restart, or an event, whether an
// alternative is queued when it fires, and what is expected after it.
type scenarioLine struct {
	line    int
	restart bool
	event   fsm.Event
	alt     bool // has_alternative holds: written event[has_alternative]
	state   fsm.State
	ignored bool     // the event must be ignored
	path    fsm.Path // when set, the transition must be on this path
}

// parseScenario reads a scenario trace. Errors name the file and line.
func parseScenario(r io.Reader, name string) ([]scenarioLine, error) {
	var out []scenarioLine
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(text)
		switch {
		case len(f) == 0:
			continue
		case f[0] == "restart":
			if len(f) != 1 {
				return nil, fmt.Errorf("%s:%d: restart takes no columns: %q", name, n, text)
			}
			out = append(out, scenarioLine{line: n, restart: true})
			continue
		case len(f) < 2 || len(f) > 3:
			return nil, fmt.Errorf("%s:%d: %d columns, want: event[guards] state [ignored|path], or restart", name, n, len(f))
		}
		l := scenarioLine{line: n, state: fsm.State(f[1])}
		event, guards, bracket := strings.Cut(f[0], "[")
		l.event = fsm.Event(event)
		if bracket {
			list, ok := strings.CutSuffix(guards, "]")
			if !ok || event == "" {
				return nil, fmt.Errorf("%s:%d: %q: write event[has_alternative]", name, n, f[0])
			}
			for _, g := range strings.Split(list, ",") {
				switch fsm.Guard(g) {
				case fsm.HasAlternative:
					l.alt = true
				case fsm.OthersRacing:
					return nil, fmt.Errorf("%s:%d: %q: others_racing is not written, it is evaluated from "+
						"the links the trace dialled (fsm.Links); state only has_alternative", name, n, f[0])
				default:
					return nil, fmt.Errorf("%s:%d: %q: unknown guard %q; the one a scenario states is has_alternative",
						name, n, f[0], g)
				}
			}
		}
		if len(f) == 3 {
			if f[2] == "ignored" {
				l.ignored = true
			} else {
				l.path = fsm.Path(f[2])
			}
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// runScenario plays lines on a real Machine from the initial state, checking
// the link invariants on every step. has_alternative holds where the line
// says so; others_racing is evaluated from the link model. It returns the
// first mismatch, naming file:line.
func runScenario(lines []scenarioLine, name string) error {
	var (
		m     = fsm.New()
		links fsm.Links
	)
	for _, l := range lines {
		at := fmt.Sprintf("%s:%d", name, l.line)
		if l.restart {
			m, links = fsm.New(), fsm.Links{}
			continue
		}
		prev := links
		st, err := m.Fire(l.event, guardsOf(links, l.alt))
		if err != nil {
			return fmt.Errorf("%s: %s in %s: %w", at, l.event, m.State(), err)
		}
		if links, err = advance(links, st); err != nil {
			return fmt.Errorf("%s: invariant broken (links before: primary=%d candidates=%v): %w",
				at, prev.Primary, prev.Candidates, err)
		}
		switch {
		case m.State() != l.state:
			what := fmt.Sprintf("went to %s (path %s)", m.State(), st.Path)
			if st.Ignored {
				what = fmt.Sprintf("was ignored (%s)", st.Reason)
			}
			return fmt.Errorf("%s: %s in %s %s, want %s", at, l.event, st.From, what, l.state)
		case l.ignored && !st.Ignored:
			return fmt.Errorf("%s: %s in %s was not ignored: %s path %s", at, l.event, st.From, st.To, st.Path)
		case l.path != "" && st.Ignored:
			return fmt.Errorf("%s: %s in %s was ignored (%s), want path %s", at, l.event, st.From, st.Reason, l.path)
		case l.path != "" && st.Path != l.path:
			return fmt.Errorf("%s: %s in %s took path %s (guard %s), want %s", at, l.event, st.From, st.Path,
				guardName(st.Guard), l.path)
		}
	}
	return nil
}

func readScenario(file string) ([]scenarioLine, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseScenario(f, file)
}

func scenarioFiles(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(scenarioDir, "*.txt"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) == 0 {
		tb.Fatalf("no scenarios in %s", scenarioDir)
	}
	return files
}

// TestScenarios runs every file in testdata/fsm/scenarios.
func TestScenarios(t *testing.T) {
	for _, file := range scenarioFiles(t) {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			lines, err := readScenario(file)
			if err != nil {
				t.Fatal(err)
			}
			events := 0
			for _, l := range lines {
				if !l.restart {
					events++
				}
			}
			if events == 0 {
				t.Fatalf("%s: no events", file)
			}
			if err := runScenario(lines, file); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestScenarioRunnerGuards shows the runner passes has_alternative where a
// line states it and evaluates others_racing from the links dialled so far.
func TestScenarioRunnerGuards(t *testing.T) {
	const trace = `attach                          joining
attempt_delay                   joining     ignored  # nothing queued: no widening
attempt_delay[has_alternative]  joining     race     # a second candidate races
new_failed                      joining     race     # the other one still races
new_failed                      detached    detach   # nobody is left
`
	lines, err := parseScenario(strings.NewReader(trace), "s.txt")
	if err != nil {
		t.Fatal(err)
	}
	if !lines[2].alt || lines[3].alt {
		t.Fatalf("parsed has_alternative as %t, %t; want true, false", lines[2].alt, lines[3].alt)
	}
	if err := runScenario(lines, "s.txt"); err != nil {
		t.Fatal(err)
	}
}

// TestScenarioRunnerFails shows the runner reports each kind of mismatch.
func TestScenarioRunnerFails(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"attach joining\nhandshake_ok cooldown\n", "s.txt:2: handshake_ok in joining went to attached (path join), want cooldown"},
		{"attach joining\nattach joining join\n", "s.txt:2: attach in joining was ignored"},
		{"attach joining ignored\n", "s.txt:1: attach in detached was not ignored"},
		{"attach joining migrate\n", "s.txt:1: attach in detached took path join (guard -), want migrate"},
		// without [has_alternative] a goodbye has nowhere to go
		{"attach joining\nhandshake_ok attached\ngoodbye handshaking forced\n", "s.txt:3: goodbye in attached was ignored"},
		// others_racing comes from the links: one candidate, nobody else racing
		{"attach joining\nnew_failed joining race\n", "s.txt:2: new_failed in joining went to detached (path detach)"},
		{"# a comment\nteleport detached\n", "s.txt:2: teleport in detached: fsm: unknown event"},
		{"attach joining\nrestart\nclose closed\nattach joining\n", "s.txt:4: attach in closed was ignored"},
	} {
		lines, err := parseScenario(strings.NewReader(tc.in), "s.txt")
		if err != nil {
			t.Fatalf("parseScenario(%q): %v", tc.in, err)
		}
		if err := runScenario(lines, "s.txt"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("runScenario(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestParseScenarioErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"attach\n", "s.txt:1: 1 columns"},
		{"\n# c\nattach joining join extra\n", "s.txt:3: 4 columns"},
		{"restart now\n", "s.txt:1: restart takes no columns"},
		{"new_failed[others_racing] joining\n", "s.txt:1: \"new_failed[others_racing]\": others_racing is not written"},
		{"new_failed[maybe] joining\n", `unknown guard "maybe"`},
		{"new_failed[has_alternative joining\n", "write event[has_alternative]"},
		{"[has_alternative] joining\n", "write event[has_alternative]"},
	} {
		if _, err := parseScenario(strings.NewReader(tc.in), "s.txt"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseScenario(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}
