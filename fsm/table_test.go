package fsm_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/repram/handover/fsm"
)

// tablePath is the reviewable transition table; its format is described in
// its header and in testdata/fsm/README.md.
var tablePath = filepath.Join("..", "testdata", "fsm", "transitions.txt")

// tableRow is one branch row of the transition table.
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
		if len(f) < 5 || len(f) > 6 {
			return nil, fmt.Errorf("%s:%d: %d columns, want from event guard to actions [path]", name, n, len(f))
		}
		st := fsm.Step{From: fsm.State(f[0]), Event: fsm.Event(f[1]), To: fsm.State(f[3])}
		if f[2] != "-" {
			st.Guard = fsm.Guard(f[2])
		}
		switch {
		case f[4] == "ignored":
			if f[2] != "-" || f[3] != "-" || len(f) != 5 {
				return nil, fmt.Errorf("%s:%d: an ignored row has guard -, to - and no path: %q", name, n, line)
			}
			st.To, st.Ignored = st.From, true
		case f[3] == "-":
			return nil, fmt.Errorf("%s:%d: to is - but actions are not \"ignored\": %q", name, n, line)
		case len(f) != 6:
			return nil, fmt.Errorf("%s:%d: a transition needs a path column: %q", name, n, line)
		default:
			st.Path = fsm.Path(f[5])
			if f[4] != "none" {
				for _, a := range strings.Split(f[4], ",") {
					if a == "" || a == "none" || a == "ignored" {
						return nil, fmt.Errorf("%s:%d: bad action list %q: comma-separated action names, "+
							"\"none\" alone or \"ignored\" alone", name, n, f[4])
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
		return fmt.Sprintf("%s %s - - ignored", st.From, st.Event)
	}
	return fmt.Sprintf("%s %s %s %s %s %s", st.From, st.Event, guardName(st.Guard), st.To, actionList(st.Actions), st.Path)
}

// tableKey identifies a branch: a (state, event) pair and its guard ("" for
// the fallback).
type tableKey struct {
	s fsm.State
	e fsm.Event
	g fsm.Guard
}

// readTable parses the transition table and checks that no branch has two
// rows.
func readTable(t *testing.T) []tableRow {
	t.Helper()
	f, err := os.Open(tablePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := parseTable(f, tablePath)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[tableKey]int{}
	for _, r := range rows {
		k := tableKey{r.want.From, r.want.Event, r.want.Guard}
		if prev, dup := seen[k]; dup {
			t.Fatalf("%s:%d: second row for (%s, %s) with guard %s, first at line %d",
				tablePath, r.line, k.s, k.e, guardName(k.g), prev)
		}
		seen[k] = r.line
	}
	return rows
}

// TestTransitionTable checks testdata/fsm/transitions.txt against the
// declaration both ways: every row is fired through a real Machine started in
// the row's state with exactly the row's guard holding (no guard for the
// fallback row) and must do what the row says; every declared branch must
// have a row.
func TestTransitionTable(t *testing.T) {
	rows := readTable(t)
	c := fsm.Declaration()
	declared := map[tableKey]bool{}
	for _, s := range c.States {
		for _, e := range c.Events {
			cell, _ := c.Cell(s, e)
			for _, st := range branchSteps(s, e, cell) {
				declared[tableKey{s, e, st.Guard}] = true
			}
		}
	}
	have := map[tableKey]bool{}
	for _, r := range rows {
		at := fmt.Sprintf("%s:%d", tablePath, r.line)
		k := tableKey{r.want.From, r.want.Event, r.want.Guard}
		have[k] = true
		if g := r.want.Guard; g != "" {
			if _, ok := c.GuardMeaning(g); !ok {
				t.Errorf("%s: unknown guard %q (declared: %v)", at, g, c.Guards)
				continue
			}
		}
		if !declared[k] {
			t.Errorf("%s: the chart declares no %s branch for (%s, %s): remove the row or declare the branch",
				at, guardName(k.g), k.s, k.e)
		}
		m, err := fsm.NewIn(r.want.From)
		if err != nil {
			t.Errorf("%s: %v (declared: %v)", at, err, c.States)
			continue
		}
		holds := only() // the fallback row: no guard holds
		if r.want.Guard != "" {
			holds = only(r.want.Guard)
		}
		got, err := m.Fire(r.want.Event, holds)
		if unknown := (*fsm.UnknownEventError)(nil); errors.As(err, &unknown) {
			t.Errorf("%s: %v (declared: %v)", at, err, c.Events)
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
	if len(declared) != 109 {
		t.Errorf("the chart declares %d branches; update the counts in %s and testdata/fsm/README.md", len(declared), tablePath)
	}
	for _, s := range c.States {
		for _, e := range c.Events {
			cell, _ := c.Cell(s, e)
			for _, st := range branchSteps(s, e, cell) {
				if !have[tableKey{s, e, st.Guard}] {
					t.Errorf("%s: no row for a declared branch of (%s, %s); the declaration says:\n\t%s",
						tablePath, s, e, tableLine(st))
				}
			}
		}
	}
}

// TestTransitionTableGuardOrder checks that the rows of a pair are listed in
// the order the machine tries the guards: each guarded row must win even when
// the guards of every later row of the pair hold too, and the guarded rows
// come before the pair's fallback.
func TestTransitionTableGuardOrder(t *testing.T) {
	rows := readTable(t)
	type pair struct {
		s fsm.State
		e fsm.Event
	}
	byPair := map[pair][]tableRow{}
	var order []pair
	for _, r := range rows {
		p := pair{r.want.From, r.want.Event}
		if _, ok := byPair[p]; !ok {
			order = append(order, p)
		}
		byPair[p] = append(byPair[p], r)
	}
	contested := 0
	for _, p := range order {
		rs := byPair[p]
		for i, r := range rs {
			at := fmt.Sprintf("%s:%d", tablePath, r.line)
			if r.want.Guard == "" {
				if i != len(rs)-1 {
					t.Errorf("%s: the fallback of (%s, %s) must be its last row", at, p.s, p.e)
				}
				continue
			}
			var later []fsm.Guard
			for _, l := range rs[i+1:] {
				if l.want.Guard != "" {
					later = append(later, l.want.Guard)
				}
			}
			if len(later) == 0 {
				continue
			}
			contested++
			m, err := fsm.NewIn(p.s)
			if err != nil {
				t.Fatal(err)
			}
			holding := append([]fsm.Guard{r.want.Guard}, later...)
			got, err := m.Fire(p.e, only(holding...))
			if err != nil {
				t.Fatalf("%s: %v", at, err)
			}
			if got.Guard != r.want.Guard {
				t.Errorf("%s: with %v all holding, (%s, %s) took the %s branch, want %s: "+
					"the table lists the guards in another order than the machine tries them",
					at, holding, p.s, p.e, guardName(got.Guard), r.want.Guard)
			}
		}
	}
	if contested == 0 {
		t.Fatal("no pair with two guarded rows: the order check checked nothing")
	}
	t.Logf("%d guarded rows checked against the guards listed after them", contested)
}

// TestHandshakingPrefersAlternative pins one case of the guard order by
// hand: a failed candidate with an alternative queued and rivals racing is
// replaced, not just dropped.
func TestHandshakingPrefersAlternative(t *testing.T) {
	for _, e := range []fsm.Event{fsm.NewFailed, fsm.HandshakeTimeout} {
		m, err := fsm.NewIn(fsm.Handshaking)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Fire(e, only(fsm.HasAlternative, fsm.OthersRacing))
		if err != nil {
			t.Fatal(err)
		}
		want := []fsm.Action{fsm.DropCandidate, fsm.DialAlternative, fsm.SendHello}
		if got.Guard != fsm.HasAlternative || !slices.Equal(got.Actions, want) || got.To != fsm.Handshaking {
			t.Errorf("%s in handshaking with both guards: %+v, want the has_alternative branch with %v", e, got, want)
		}
	}
}

func TestParseTableErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"detached attach - joining\n", "t.txt:1: 4 columns"},
		{"# c\n\ndetached attach - joining dial_candidate join extra\n", "t.txt:3: 7 columns"},
		{"detached attach - joining dial_candidate\n", "t.txt:1: a transition needs a path column"},
		{"detached goodbye - - ignored detach\n", "t.txt:1: an ignored row has guard -, to - and no path"},
		{"detached goodbye - attached ignored\n", "t.txt:1: an ignored row has"},
		{"attached goodbye has_alternative - ignored\n", "t.txt:1: an ignored row has guard -"},
		{"detached goodbye - - drop_old detach\n", "t.txt:1: to is - but"},
		{"detached attach - joining dial_candidate,,send_hello join\n", `t.txt:1: bad action list`},
		{"cooldown cooldown_elapsed - attached none,drop_old settle\n", `t.txt:1: bad action list`},
	} {
		if _, err := parseTable(strings.NewReader(tc.in), "t.txt"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseTable(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
	rows, err := parseTable(strings.NewReader("# c\n cooldown\tcooldown_elapsed - attached none settle \n"+
		"attached goodbye has_alternative handshaking dial_alternative,send_hello forced\n"), "t.txt")
	if err != nil || len(rows) != 2 || rows[0].line != 2 || rows[0].want.Actions != nil ||
		rows[0].want.Path != fsm.PathSettle || rows[0].want.Guard != "" || rows[1].want.Guard != fsm.HasAlternative {
		t.Errorf("parseTable of valid rows: %+v, %v", rows, err)
	}
}
