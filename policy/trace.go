package policy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Trace is a latency trace: what a node in Enclave measured, cycle by cycle.
// The format is described in testdata/traces/README.md; [ParseTrace] reads it.
type Trace struct {
	Enclave string // this node's enclave (@enclave)
	Start   string // the initial attachment (@start, else the first substrate listed)
	// Steps are the cycles at which a real step change is first observed
	// (@step): ground truth written by the trace's author, used to measure
	// reaction time. Sorted, within the trace.
	Steps  []int
	Cycles []Cycle // consecutive: Cycles[i].N == Cycles[0].N + i
}

// Cycle is one evaluation cycle of a trace.
type Cycle struct {
	N       int
	Samples []Sample // at most one per substrate; substrates not listed were not observed
}

// Sample is one substrate as observed in one cycle of a trace.
type Sample struct {
	Substrate string
	Enclave   string
	Latency   time.Duration // > 0 measured; 0 unknown (no measurement this cycle)
	Gone      bool          // the substrate is down: if it is the current attachment, the node is forced off it
}

// ParseError is a trace syntax error, with its 1-based line number.
type ParseError struct {
	Line int
	Err  error
}

func (e *ParseError) Error() string { return fmt.Sprintf("policy: trace line %d: %v", e.Line, e.Err) }

// Unwrap returns the underlying error.
func (e *ParseError) Unwrap() error { return e.Err }

// ParseTrace reads a trace: one sample per line as "cycle,substrate,enclave,latency"
// (commas or blanks), '#' comments, an optional header line, and the
// directives "@enclave NAME", "@start ID" and "@step CYCLE". Errors are
// [*ParseError]s naming the line.
func ParseTrace(r io.Reader) (Trace, error) {
	var (
		tr        Trace
		sc        = bufio.NewScanner(r)
		line      int
		startLine int
		stepLines = map[int]int{}
		seen      = map[string]bool{}
		inCycle   = map[string]bool{}
	)
	fail := func(format string, args ...any) (Trace, error) {
		return Trace{}, &ParseError{Line: line, Err: fmt.Errorf(format, args...)}
	}
	for sc.Scan() {
		line++
		text, _, _ := strings.Cut(sc.Text(), "#")
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		if key, ok := strings.CutPrefix(text, "@"); ok {
			f := strings.Fields(key)
			if len(f) != 2 {
				return fail("directive %q: want \"@enclave NAME\", \"@start ID\" or \"@step CYCLE\"", text)
			}
			switch f[0] {
			case "enclave":
				tr.Enclave = f[1]
			case "start":
				tr.Start, startLine = f[1], line
			case "step":
				n, err := strconv.Atoi(f[1])
				if err != nil || n < 1 {
					return fail("@step %q: want a cycle number ≥ 1", f[1])
				}
				if _, dup := stepLines[n]; dup {
					return fail("@step %d given twice", n)
				}
				stepLines[n] = line
				tr.Steps = append(tr.Steps, n)
			default:
				return fail("unknown directive @%s: want @enclave, @start or @step", f[0])
			}
			continue
		}
		var f []string
		if strings.Contains(text, ",") {
			f = strings.Split(text, ",")
			for i := range f {
				f[i] = strings.TrimSpace(f[i])
			}
		} else {
			f = strings.Fields(text)
		}
		if len(f) != 4 {
			return fail("%d fields: want 4: cycle,substrate,enclave,latency", len(f))
		}
		if strings.EqualFold(f[0], "cycle") {
			continue // header
		}
		n, err := strconv.Atoi(f[0])
		if err != nil || n < 1 {
			return fail("cycle %q: want a number ≥ 1", f[0])
		}
		if f[1] == "" {
			return fail("empty substrate id")
		}
		s := Sample{Substrate: f[1], Enclave: f[2]}
		if s.Latency, s.Gone, err = parseLatency(f[3]); err != nil {
			return fail("%v", err)
		}
		switch last := len(tr.Cycles) - 1; {
		case last >= 0 && n < tr.Cycles[last].N:
			return fail("cycle %d after cycle %d: list cycles in increasing order", n, tr.Cycles[last].N)
		case last < 0 || n > tr.Cycles[last].N:
			for last >= 0 && tr.Cycles[last].N+1 < n { // an empty cycle: nothing observed
				tr.Cycles = append(tr.Cycles, Cycle{N: tr.Cycles[last].N + 1})
				last++
			}
			tr.Cycles = append(tr.Cycles, Cycle{N: n})
			clear(inCycle)
		}
		if inCycle[s.Substrate] {
			return fail("substrate %s listed twice in cycle %d", s.Substrate, n)
		}
		inCycle[s.Substrate] = true
		seen[s.Substrate] = true
		if tr.Start == "" && startLine == 0 {
			tr.Start = s.Substrate
		}
		c := &tr.Cycles[len(tr.Cycles)-1]
		c.Samples = append(c.Samples, s)
	}
	if err := sc.Err(); err != nil {
		return Trace{}, fmt.Errorf("policy: reading trace after line %d: %w", line, err)
	}
	if len(tr.Cycles) == 0 {
		return Trace{}, errors.New("policy: trace has no samples: want lines like \"1,s1,eu,40ms\"")
	}
	if startLine > 0 && !seen[tr.Start] {
		line = startLine
		return fail("@start %s: no sample of that substrate in the trace", tr.Start)
	}
	slices.Sort(tr.Steps)
	first, last := tr.Cycles[0].N, tr.Cycles[len(tr.Cycles)-1].N
	for _, s := range tr.Steps {
		if s < first || s > last {
			line = stepLines[s]
			return fail("@step %d is outside the trace's cycles %d..%d", s, first, last)
		}
	}
	return tr, nil
}

// maxTraceMillis bounds bare-number latencies so they fit a time.Duration.
const maxTraceMillis = 1e9

// parseLatency reads "40ms", "1.5s", "40" (milliseconds), "-"/"?"/"unknown"/""
// (no measurement) or "gone".
func parseLatency(s string) (time.Duration, bool, error) {
	switch strings.ToLower(s) {
	case "", "-", "?", "unknown":
		return 0, false, nil
	case "gone":
		return 0, true, nil
	}
	var d time.Duration
	if ms, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(ms) || math.IsInf(ms, 0) || math.Abs(ms) > maxTraceMillis {
			return 0, false, fmt.Errorf("latency %q: want a finite number of milliseconds", s)
		}
		d = time.Duration(ms * float64(time.Millisecond))
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, false, fmt.Errorf("latency %q: want a duration (40ms), milliseconds (40), - for no measurement, or gone", s)
	}
	if d <= 0 {
		return 0, false, fmt.Errorf("latency %q: must be positive; write - for no measurement", s)
	}
	return d, false, nil
}
