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
		var (
			mach  = fsm.New()
			links fsm.Links
		)
		for i, in := range fuzzInputs(m.chart.Events, data) {
			e, holds := in.event, guardsOf(links, in.alt)
			from := mach.State()
			got, err := mach.Fire(e, holds)
			if e == fuzzUnknown {
				var unknown *fsm.UnknownEventError
				if !errors.As(err, &unknown) || mach.State() != from {
					t.Fatalf("event %d: undeclared event in %s: error %v, state %s", i, from, err, mach.State())
				}
				continue
			}
			if err != nil {
				t.Fatalf("event %d: %s in %s: %v", i, e, from, err)
			}
			want, _ := m.step(from, e, holds)
			if d := diffStep(got, want); d != "" {
				t.Fatalf("event %d: %s in %s: %s", i, e, from, d)
			}
			if mach.State() != want.To {
				t.Fatalf("event %d: %s in %s: machine in %s, want %s", i, e, from, mach.State(), want.To)
			}
			if links, err = advance(links, got); err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
		}
	})
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
