package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseTrace(t *testing.T) {
	in := `# a comment
@enclave eu
@step 3
@start s2
cycle,substrate,enclave,latency
1,s1,eu,40ms   # trailing comment
1, s2 , us , 25.5
2 s1 eu -
2 s2 us 1.5s
4,s1,eu,gone
4,s2,us,
`
	tr, err := ParseTrace(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := Trace{
		Enclave: "eu", Start: "s2", Steps: []int{3},
		Cycles: []Cycle{
			{N: 1, Samples: []Sample{{"s1", "eu", ms(40), false}, {"s2", "us", ms(25.5), false}}},
			{N: 2, Samples: []Sample{{"s1", "eu", 0, false}, {"s2", "us", ms(1500), false}}},
			{N: 3},
			{N: 4, Samples: []Sample{{"s1", "eu", 0, true}, {"s2", "us", 0, false}}},
		},
	}
	if !reflect.DeepEqual(tr, want) {
		t.Fatalf("got  %+v\nwant %+v", tr, want)
	}

	tr, err = ParseTrace(strings.NewReader("5,b,eu,10\n5,a,eu,20\n"))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Start != "b" || tr.Enclave != "" || len(tr.Cycles) != 1 || tr.Cycles[0].N != 5 {
		t.Fatalf("without directives: %+v; want start b (first listed), no enclave, one cycle numbered 5", tr)
	}
}

func TestParseTraceErrors(t *testing.T) {
	cases := []struct {
		name, in string
		line     int // 0: not a ParseError
		msg      string
	}{
		{"empty", "# nothing\n", 0, "no samples"},
		{"too few fields", "1,s1,eu,10\n1,s2,eu\n", 2, "3 fields"},
		{"bad cycle", "x,s1,eu,10\n", 1, `cycle "x"`},
		{"cycle zero", "0,s1,eu,10\n", 1, `cycle "0"`},
		{"empty substrate", "1,,eu,10\n", 1, "empty substrate"},
		{"bad latency", "1,s1,eu,fast\n", 1, `latency "fast"`},
		{"zero latency", "1,s1,eu,0\n", 1, "must be positive"},
		{"negative latency", "1,s1,eu,-5ms\n", 1, "must be positive"},
		{"NaN latency", "1,s1,eu,NaN\n", 1, "finite"},
		{"cycles out of order", "2,s1,eu,10\n1,s1,eu,10\n", 2, "increasing order"},
		{"duplicate in a cycle", "1,s1,eu,10\n1,s1,eu,12\n", 2, "listed twice"},
		{"unknown directive", "@speed 3\n", 1, "unknown directive @speed"},
		{"directive without value", "@enclave\n", 1, "directive"},
		{"bad step", "@step soon\n1,s1,eu,10\n", 1, `@step "soon"`},
		{"duplicate step", "@step 1\n@step 1\n1,s1,eu,10\n", 2, "twice"},
		{"step outside the trace", "1,s1,eu,10\n@step 9\n", 2, "outside"},
		{"unknown start", "@start s9\n1,s1,eu,10\n", 1, "@start s9"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseTrace(strings.NewReader(c.in))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q does not mention %q", err, c.msg)
			}
			var pe *ParseError
			if c.line == 0 {
				if errors.As(err, &pe) {
					t.Errorf("got a ParseError for line %d, want a trace-level error", pe.Line)
				}
				return
			}
			if !errors.As(err, &pe) || pe.Line != c.line {
				t.Fatalf("error %v: want a ParseError for line %d", err, c.line)
			}
			if !strings.Contains(err.Error(), "line ") {
				t.Errorf("error %q does not say which line", err)
			}
		})
	}
}

// TestCheckedInTraces checks that every documented trace parses and has the
// shape its README promises.
func TestCheckedInTraces(t *testing.T) {
	for _, c := range []struct {
		file       string
		minCycles  int
		substrates int
		steps      []int
	}{
		{"step.csv", 100, 3, []int{60}},
		{"jitter.csv", 100, 3, nil},
		{"drift.csv", 100, 2, nil},
		{"dying.csv", 60, 2, nil},
		{"enclave.csv", 100, 4, []int{40}},
		{"noise-lognormal20.csv", 1000, 3, []int{701}},
		{"noise-lognormal30.csv", 1000, 3, []int{701}},
		{"noise-lognormal40.csv", 1000, 3, []int{701}},
		{"noise-spikes.csv", 1000, 3, []int{701}},
		{"noise-bimodal.csv", 1000, 3, []int{701}},
		{"noise-diurnal.csv", 1000, 3, []int{701}},
		{"noise-loopback.csv", 1000, 3, []int{701}},
		{"lure.csv", 1000, 2, nil},
	} {
		t.Run(c.file, func(t *testing.T) {
			tr := loadTrace(t, c.file)
			if len(tr.Cycles) < c.minCycles {
				t.Errorf("%d cycles, want at least %d", len(tr.Cycles), c.minCycles)
			}
			ids := map[string]bool{}
			for _, cy := range tr.Cycles {
				for _, s := range cy.Samples {
					ids[s.Substrate] = true
				}
			}
			if len(ids) != c.substrates {
				t.Errorf("%d substrates, want %d", len(ids), c.substrates)
			}
			if !reflect.DeepEqual(tr.Steps, c.steps) {
				t.Errorf("steps %v, want %v", tr.Steps, c.steps)
			}
			if tr.Enclave == "" || tr.Start == "" {
				t.Errorf("enclave %q, start %q: both should be declared", tr.Enclave, tr.Start)
			}
		})
	}
}
