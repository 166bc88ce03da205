package fsm_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/repram/handover/fsm"
)

// tablePath is the reviewable transition table; its format is described in
// its header and in testdata/fsm/README.md.
var tablePath = filepath.Join("..", "testdata", "fsm", "transitions.txt")

// tableRow is one (state, event) row of the transition table.
type tableRow struct {
	line int
	want fsm.Step // Reason is not part of the table
}

// parseTable reads a transition table. Errors name the file and line.
func parseTable(r io.Reader, name string) ([]tableRow, error) {
	var rows []tableRow
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || len(f) > 5 {
			return nil, fmt.Errorf("%s:%d: %d columns, want from event to actions [path]", name, n, len(f))
		}
		st := fsm.Step{From: fsm.State(f[0]), Event: fsm.Event(f[1]), To: fsm.State(f[2])}
		switch {
		case f[3] == "ignored":
			if f[2] != "-" || len(f) != 4 {
				return nil, fmt.Errorf("%s:%d: an ignored row has to - and no path: %q", name, n, line)
			}
			st.To, st.Ignored = st.From, true
		case f[2] == "-":
			return nil, fmt.Errorf("%s:%d: to is - but actions are not \"ignored\": %q", name, n, line)
		case len(f) != 5:
			return nil, fmt.Errorf("%s:%d: a transition needs a path column: %q", name, n, line)
		default:
			st.Path = fsm.Path(f[4])
			if f[3] != "none" {
				for _, a := range strings.Split(f[3], ",") {
					if a == "" || a == "none" || a == "ignored" {
						return nil, fmt.Errorf("%s:%d: bad action list %q: comma-separated action names, "+
							"\"none\" alone or \"ignored\" alone", name, n, f[3])
					}
					st.Actions = append(st.Actions, fsm.Action(a))
				}
			}
		}
		rows = append(rows, tableRow{line: n, want: st})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return rows, nil
}

// tableLine renders the row the table should hold for a declared step, so a
// failure can say what to add.
func tableLine(st fsm.Step) string {
	if st.Ignored {
		return fmt.Sprintf("%s %s - ignored", st.From, st.Event)
	}
	return fmt.Sprintf("%s %s %s %s %s", st.From, st.Event, st.To, actionList(st.Actions), st.Path)
}

// TestTransitionTable checks testdata/fsm/transitions.txt against the
// declaration both ways, firing every row through a real Machine.
func TestTransitionTable(t *testing.T) {
	f, err := os.Open(tablePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := parseTable(f, tablePath)
	if err != nil {
		t.Fatal(err)
	}
	type pair struct {
		s fsm.State
		e fsm.Event
	}
	seen := map[pair]int{}
	for _, r := range rows {
		at := fmt.Sprintf("%s:%d", tablePath, r.line)
		p := pair{r.want.From, r.want.Event}
		if prev, dup := seen[p]; dup {
			t.Errorf("%s: second row for (%s, %s), first at line %d", at, p.s, p.e, prev)
			continue
		}
		seen[p] = r.line
		m, err := fsm.NewIn(r.want.From)
		if err != nil {
			t.Errorf("%s: %v (declared: %v)", at, err, fsm.Declaration().States)
			continue
		}
		got, err := m.Fire(r.want.Event)
		if unknown := (*fsm.UnknownEventError)(nil); errors.As(err, &unknown) {
			t.Errorf("%s: %v (declared: %v)", at, err, fsm.Declaration().Events)
			continue
		} else if err != nil {
			t.Errorf("%s: %s --%s-->: %v", at, r.want.From, r.want.Event, err)
			continue
		}
		if m.State() != got.To {
			t.Errorf("%s: Fire said %s but the machine is in %s", at, got.To, m.State())
		}
		got.Reason = "" // the table does not carry reasons
		if d := diffStep(got, r.want); d != "" {
			t.Errorf("%s: the machine disagrees with the row: %s\n\trow:         %s\n\tthe machine: %s",
				at, d, tableLine(r.want), tableLine(got))
		}
	}
	c := fsm.Declaration()
	for _, s := range c.States {
		for _, e := range c.Events {
			if _, ok := seen[pair{s, e}]; !ok {
				cell, _ := c.Cell(s, e)
				t.Errorf("%s: no row for declared (%s, %s); the declaration says:\n\t%s",
					tablePath, s, e, tableLine(stepOf(s, e, cell)))
			}
		}
	}
}

func TestParseTableErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"detached attach joining\n", "t.txt:1: 3 columns"},
		{"# c\n\ndetached attach joining dial_candidate join extra\n", "t.txt:3: 6 columns"},
		{"detached attach joining dial_candidate\n", "t.txt:1: a transition needs a path column"},
		{"detached goodbye - ignored detach\n", "t.txt:1: an ignored row has to - and no path"},
		{"detached goodbye attached ignored\n", "t.txt:1: an ignored row has to -"},
		{"detached goodbye - drop_old detach\n", "t.txt:1: to is - but"},
		{"detached attach joining dial_candidate,,send_hello join\n", `t.txt:1: bad action list`},
		{"cooldown cooldown_elapsed attached none,drop_old settle\n", `t.txt:1: bad action list`},
	} {
		if _, err := parseTable(strings.NewReader(tc.in), "t.txt"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseTable(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
	rows, err := parseTable(strings.NewReader("# c\n cooldown\tcooldown_elapsed  attached none settle \n"), "t.txt")
	if err != nil || len(rows) != 1 || rows[0].line != 2 || rows[0].want.Actions != nil || rows[0].want.Path != fsm.PathSettle {
		t.Errorf("parseTable of a valid row: %+v, %v", rows, err)
	}
}
