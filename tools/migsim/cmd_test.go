package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
)

// TestScaleCommand runs `migsim scale` in virtual time, small, as JSON.
func TestScaleCommand(t *testing.T) {
	var out bytes.Buffer
	if err := runScaleCmd(context.Background(), []string{"-nodes", "400", "-substrates", "8", "-seed", "2", "-json"}, &out); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	var r struct {
		Nodes, Lost, Duplicates, Rehomes int
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if r.Nodes != 400 || r.Lost != 0 || r.Duplicates != 0 || r.Rehomes == 0 {
		t.Fatalf("%+v: want 400 nodes rehomed, lost 0, duplicates 0", r)
	}
	for _, bad := range [][]string{{"-nodes", "1000", "-substrates", "2", "-max-children", "100"}, {"extra"}, {"-no-such-flag"}} {
		out.Reset()
		if err := runScaleCmd(context.Background(), bad, &out); err == nil {
			t.Errorf("scale %q: no error", bad)
		}
	}
}

// TestModes checks what each mode requires and implies.
func TestModes(t *testing.T) {
	for _, c := range []struct {
		mode    string
		f       flags
		compare bool
		ok      bool
	}{
		{"", flags{}, false, true},
		{"run", flags{}, false, true},
		{"compare", flags{}, true, true},
		{"replay", flags{}, false, false},
		{"replay", flags{replay: "x.csv"}, false, true},
		{"live", flags{}, false, false},
		{"live", flags{connect: "h:1"}, false, true},
	} {
		err := c.f.checkMode(c.mode)
		if (err == nil) != c.ok || c.f.compare != c.compare || errors.Is(err, errFailed) {
			t.Errorf("mode %q with %+v: err %v, compare %v", c.mode, c.f, err, c.f.compare)
		}
	}
}
