package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestScaleCommand runs `migsim scale` in virtual time, small, as JSON.
func TestScaleCommand(t *testing.T) {
	var out bytes.Buffer
	if err := scaleCmd(context.Background(), []string{"-nodes", "100", "-substrates", "8", "-seed", "2", "-json"}, &out); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	var r struct {
		Nodes, Lost, Duplicates, Rehomes int
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if r.Nodes != 100 || r.Lost != 0 || r.Duplicates != 0 || r.Rehomes == 0 {
		t.Fatalf("%+v: want 100 nodes, some rehomed, lost 0, duplicates 0", r)
	}
	for _, bad := range [][]string{{"-nodes", "1000", "-substrates", "2", "-max-children", "100"}, {"extra"}, {"-no-such-flag"}} {
		out.Reset()
		if err := scaleCmd(context.Background(), bad, &out); err == nil {
			t.Errorf("scale %q: no error", bad)
		}
	}
	// A flag the chosen variant would ignore is refused before anything runs.
	for _, ignored := range [][]string{
		{"-nodes", "400", "-substrates", "8", "-seed", "2", "-goodbye-gap", "1s"},
		{"-sockets", "-nodes", "2", "-plot", t.TempDir()},
	} {
		out.Reset()
		if err := scaleCmd(context.Background(), ignored, &out); !errors.Is(err, errUsage) {
			t.Errorf("scale %q: %v, want a usage error naming the ignored flag", ignored, err)
		}
	}
}

// TestModes checks which mode the arguments select, the old forms
// included, and that a mode refuses what it does not take.
func TestModes(t *testing.T) {
	for _, c := range []struct {
		args []string
		mode string
		rest []string
	}{
		{nil, "run", nil},
		{[]string{"-json"}, "run", []string{"-json"}},
		{[]string{"-compare", "-json"}, "compare", []string{"-json"}},
		{[]string{"-json", "--compare=true"}, "compare", []string{"-json"}},
		{[]string{"-replay", "x.csv"}, "replay", []string{"-replay", "x.csv"}},
		{[]string{"-connect=h:1"}, "live", []string{"-connect=h:1"}},
		{[]string{"-scenario", "x", "--", "-compare"}, "run", []string{"-scenario", "x", "--", "-compare"}},
		{[]string{"x", "-compare"}, "run", []string{"x", "-compare"}},
		// A flag's value is not an argument: the scan goes on past it.
		{[]string{"-scenario", "jitter", "-compare"}, "compare", []string{"-scenario", "jitter"}},
		{[]string{"-json", "-improvement", "0.2", "-replay", "x.csv"}, "replay", []string{"-json", "-improvement", "0.2", "-replay", "x.csv"}},
		{[]string{"-secret=s", "-v", "-enclave", "e", "-connect", "h:1"}, "live", []string{"-secret=s", "-v", "-enclave", "e", "-connect", "h:1"}},
	} {
		mode, rest := legacyMode(c.args)
		if mode != c.mode || !slices.Equal(rest, c.rest) {
			t.Errorf("%q: mode %s with %q, want %s with %q", c.args, mode, rest, c.mode, c.rest)
		}
	}
	var out bytes.Buffer
	for _, bad := range [][]string{
		{"replay"}, // no trace
		{"live"},   // no substrates
		{"replay", "-replay", "x.csv", "-svg", "a.svg"}, // not replay's flag
		{"run", "-connect", "h:1"},                      // not run's flag
		{"compare", "-strategy", "naive"},               // compare runs every strategy
		{"run", "stray"},
	} {
		err := migsim(context.Background(), bad, &out)
		if err == nil || errors.Is(err, errFailed) {
			t.Errorf("migsim %q: %v, want a usage error", bad, err)
		}
	}
}

// TestReplayFlags replays through the command: the policy flags reach the
// policy, and -filter picks the rows.
func TestReplayFlags(t *testing.T) {
	var out bytes.Buffer
	if err := migsim(context.Background(), []string{"replay", "-replay", "../../testdata/traces/step.csv", "-improvement", "0.2", "-cycles", "3"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "improvement 20%, streak 3") || !strings.Contains(out.String(), "[3]") {
		t.Errorf("replay output ignores the flags or misses the reaction:\n%s", out.String())
	}
	for _, c := range []struct {
		filter string
		rows   []string // the strategy column, in order
	}{
		{"", []string{"hysteresis/robust", "hysteresis/none", "naive"}},
		{"robust", []string{"hysteresis/robust", "hysteresis/none", "naive"}},
		{"none", []string{"hysteresis/none", "naive"}},
	} {
		out.Reset()
		args := []string{"-replay", "../../testdata/traces/noise-spikes.csv"} // the old form
		if c.filter != "" {
			args = append(args, "-filter", c.filter)
		}
		if err := migsim(context.Background(), args, &out); err != nil {
			t.Fatal(err)
		}
		var rows []string
		for l := range strings.SplitSeq(out.String(), "\n") {
			if f := strings.Fields(l); len(f) == 9 && (strings.HasPrefix(f[0], "hysteresis/") || f[0] == "naive") {
				rows = append(rows, f[0])
			}
		}
		if strings.Join(rows, " ") != strings.Join(c.rows, " ") {
			t.Errorf("-filter %q: rows %v, want %v:\n%s", c.filter, rows, c.rows, out.String())
		}
	}
	if err := migsim(context.Background(), []string{"replay", "-replay", "../../testdata/traces/jitter.csv", "-filter", "kalman"}, &out); err == nil ||
		!strings.Contains(err.Error(), "kalman") {
		t.Errorf("-filter kalman: %v, want an error naming it", err)
	}
}
