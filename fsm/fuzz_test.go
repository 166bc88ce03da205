package fsm_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/repram/handover/fsm"
)

// fuzzSeedDir holds FuzzMachine's seed corpus. The project keeps all test
// data under the top-level testdata/, where go test does not look for a
// corpus, so FuzzMachine adds these files with f.Add. They are in go test's
// own corpus format, so a failing input the fuzzer writes to
// fsm/testdata/fuzz/FuzzMachine/ can be moved here unchanged.
var fuzzSeedDir = filepath.Join("..", "testdata", "fuzz", "FuzzMachine")

// fuzzUnknown is the event a fuzz byte maps to when it names no declared event.
const fuzzUnknown fsm.Event = "fuzz_unknown_event"

// fuzzInput is what one fuzz byte stands for: an event, and whether
// has_alternative holds when it fires.
type fuzzInput struct {
	event fsm.Event
	alt   bool
}

// fuzzInputs maps each byte to an input: the low bit of byte b says whether
// has_alternative holds, and b>>1 mod (n+1), where n is the number of
// events, is the index of the declared event; index n is an undeclared
// event.
func fuzzInputs(events []fsm.Event, data []byte) []fuzzInput {
	out := make([]fuzzInput, len(data))
	for i, b := range data {
		out[i].alt = b&1 == 1
		if j := int(b>>1) % (len(events) + 1); j < len(events) {
			out[i].event = events[j]
		} else {
			out[i].event = fuzzUnknown
		}
	}
	return out
}

// fuzzBytes is the inverse of fuzzInputs for declared events.
func fuzzBytes(events []fsm.Event, seq []fuzzInput) []byte {
	out := make([]byte, len(seq))
	for i, in := range seq {
		out[i] = byte(slices.Index(events, in.event) << 1)
		if in.alt {
			out[i] |= 1
		}
	}
	return out
}

// readCorpusFile reads one []byte value from a file in go test's fuzz corpus
// format ("go test fuzz v1" then one []byte("...") line).
func readCorpusFile(name string) ([]byte, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" {
		return nil, fmt.Errorf("%s: want the line \"go test fuzz v1\" and one []byte(...) line", name)
	}
	v, hasPrefix := strings.CutPrefix(strings.TrimSpace(lines[1]), "[]byte(")
	v, hasSuffix := strings.CutSuffix(v, ")")
	if !hasPrefix || !hasSuffix {
		return nil, fmt.Errorf("%s:2: want []byte(\"...\"), got %q", name, lines[1])
	}
	s, err := strconv.Unquote(v)
	if err != nil {
		return nil, fmt.Errorf("%s:2: %w", name, err)
	}
	return []byte(s), nil
}

// FuzzMachine feeds arbitrary input sequences (events, and whether an
// alternative is queued; others_racing comes from the link model) to a
// Machine and checks every step against the declaration and the link
// invariants.
func FuzzMachine(f *testing.F) {
	m := declaredModel(f)
	seeds, err := filepath.Glob(filepath.Join(fuzzSeedDir, "*"))
	if err != nil {
		f.Fatal(err)
	}
	if len(seeds) == 0 {
		f.Fatalf("no seeds in %s", fuzzSeedDir)
	}
	for _, name := range seeds {
		b, err := readCorpusFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// Every scenario is a seed too, restarts removed: it reaches deep states.
	for _, file := range scenarioFiles(f) {
		lines, err := readScenario(file)
		if err != nil {
			f.Fatal(err)
		}
		var seq []fuzzInput
		for _, l := range lines {
			if !l.restart {
				seq = append(seq, fuzzInput{l.event, l.alt})
			}
		}
		f.Add(fuzzBytes(m.chart.Events, seq))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := runFuzzInput(m, data); err != nil {
			t.Fatal(err)
		}
	})
}

// runFuzzInput plays one fuzz input on a new Machine, checking every step
// against the model and the link invariants, and returns the paths of the
// transitions taken, in order.
func runFuzzInput(m *model, data []byte) ([]fsm.Path, error) {
	var (
		mach  = fsm.New()
		links fsm.Links
		paths []fsm.Path
	)
	for i, in := range fuzzInputs(m.chart.Events, data) {
		e, holds := in.event, guardsOf(links, in.alt)
		from := mach.State()
		got, err := mach.Fire(e, holds)
		if e == fuzzUnknown {
			var unknown *fsm.UnknownEventError
			if !errors.As(err, &unknown) || mach.State() != from {
				return nil, fmt.Errorf("event %d: undeclared event in %s: error %v, state %s", i, from, err, mach.State())
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("event %d: %s in %s: %w", i, e, from, err)
		}
		want, _ := m.step(from, e, holds)
		if d := diffStep(got, want); d != "" {
			return nil, fmt.Errorf("event %d: %s in %s: %s", i, e, from, d)
		}
		if mach.State() != want.To {
			return nil, fmt.Errorf("event %d: %s in %s: machine in %s, want %s", i, e, from, mach.State(), want.To)
		}
		if links, err = advance(links, got); err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		if !got.Ignored {
			paths = append(paths, got.Path)
		}
	}
	return paths, nil
}

// TestFuzzSeeds keeps the seed corpus in sync with the byte mapping and the
// chart: every seed must decode and run cleanly, and the named seeds must
// still take the paths their names promise. A seed moved here from a fuzz
// failure needs no entry.
func TestFuzzSeeds(t *testing.T) {
	m := declaredModel(t)
	const (
		join, migrate, forced, suspect = fsm.PathJoin, fsm.PathMigrate, fsm.PathForced, fsm.PathSuspect
		race, cancel, accelerate, cont = fsm.PathRace, fsm.PathCancel, fsm.PathAccelerate, fsm.PathContinue
		reattach, detach, settle, shut = fsm.PathReattach, fsm.PathDetach, fsm.PathSettle, fsm.PathClose
	)
	want := map[string][]fsm.Path{
		"empty":                       nil,
		"happy_migrations":            {join, join, migrate, migrate, migrate, settle, migrate, migrate, migrate, settle},
		"accelerate_then_forced":      {join, join, migrate, migrate, accelerate, settle, forced, cont, join},
		"unknown_events_and_close":    {join, join, migrate, migrate, cancel, shut}, // closed ignores the last attach
		"forced_next_alternative":     {join, join, forced, race, race, migrate, migrate},
		"race_then_first_welcome":     {join, race, race, race, join, forced, race, race, migrate},
		"suspect_reattach_accelerate": {join, join, suspect, migrate, accelerate, reattach, join, detach},
	}
	seeds, err := filepath.Glob(filepath.Join(fuzzSeedDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, name := range seeds {
		b, err := readCorpusFile(name)
		if err != nil {
			t.Fatal(err)
		}
		paths, err := runFuzzInput(m, b)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		base := filepath.Base(name)
		found[base] = true
		if w, ok := want[base]; ok && !slices.Equal(paths, w) {
			t.Errorf("%s takes the paths %v, want %v: re-encode it (see testdata/fsm/README.md)", name, paths, w)
		}
	}
	for name := range want {
		if !found[name] {
			t.Errorf("seed %s is missing from %s", name, fuzzSeedDir)
		}
	}
}

// TestFuzzInputs pins the byte mapping the seed corpus is written in.
func TestFuzzInputs(t *testing.T) {
	events := fsm.Declaration().Events
	n := byte(len(events))
	got := fuzzInputs(events, []byte{0, 1, 2 * 4, 2*4 + 1, 2 * n, 2*n + 1, 2 * (n + 1), 0xff})
	want := []fuzzInput{{events[0], false}, {events[0], true}, {events[4], false}, {events[4], true},
		{fuzzUnknown, false}, {fuzzUnknown, true}, {events[0], false}, {events[(0xff>>1)%(n+1)], true}}
	if !slices.Equal(got, want) {
		t.Fatalf("fuzzInputs = %v, want %v", got, want)
	}
	seq := []fuzzInput{{fsm.Goodbye, true}, {fsm.Close, false}}
	if back := fuzzInputs(events, fuzzBytes(events, seq)); !slices.Equal(back, seq) {
		t.Fatalf("fuzzBytes does not invert fuzzInputs: %v, want %v", back, seq)
	}
}

func TestReadCorpusFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ in, want string }{
		{"go test fuzz v1\n[]byte(\"\\x00\\x03\")\n", ""},
		{"go test fuzz v2\n[]byte(\"\")\n", "go test fuzz v1"},
		{"go test fuzz v1\nstring(\"a\")\n", `want []byte("...")`},
		{"go test fuzz v1\n[]byte(\"\\q\")\n", "invalid syntax"},
	} {
		name := filepath.Join(dir, "seed")
		if err := os.WriteFile(name, []byte(tc.in), 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := readCorpusFile(name)
		switch {
		case tc.want == "" && (err != nil || string(b) != "\x00\x03"):
			t.Errorf("readCorpusFile(%q) = %q, %v", tc.in, b, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("readCorpusFile(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}
