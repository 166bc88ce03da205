package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const tracesDir = "../testdata/traces"

func loadTrace(t testing.TB, name string) Trace {
	t.Helper()
	f, err := os.Open(filepath.Join(tracesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr, err := ParseTrace(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return tr
}

func replay(t *testing.T, tr Trace, cfg Config, s Strategy) Report {
	t.Helper()
	r, err := Replay(tr, cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReplayTraces(t *testing.T) {
	cases := []struct {
		trace string
		check func(t *testing.T, def, naive Report)
	}{
		{"jitter.csv", func(t *testing.T, def, naive Report) {
			if def.Migrations != 0 {
				t.Errorf("default policy: %d migrations on stationary jitter, want 0", def.Migrations)
			}
			if naive.Migrations < 20 || naive.PingPongs < 10 {
				t.Errorf("naive: %d migrations, %d ping-pongs; want many (≥ 20, ≥ 10)", naive.Migrations, naive.PingPongs)
			}
		}},
		{"step.csv", func(t *testing.T, def, naive Report) {
			if def.Migrations != 1 || def.Final != "s2" {
				t.Fatalf("default policy: %d migrations ending on %s, want 1 to s2", def.Migrations, def.Final)
			}
			if !reflect.DeepEqual(def.ReactionCycles, []int{2}) || def.Moves[0].Cycle != 61 {
				t.Errorf("default policy reacted in %v cycles (migrated at the end of cycle %d), "+
					"want [2]: the step at cycle 60 qualifies in cycles 60 and 61", def.ReactionCycles, def.Moves[0].Cycle)
			}
			if !reflect.DeepEqual(naive.ReactionCycles, []int{1}) {
				t.Errorf("naive reacted in %v cycles, want [1]", naive.ReactionCycles)
			}
		}},
		{"drift.csv", func(t *testing.T, def, naive Report) {
			if def.Migrations != 1 || def.PingPongs != 0 || def.Final != "s2" {
				t.Fatalf("default policy: %v; want one migration to s2", def)
			}
			// s2 is 25% faster from about cycle 94; the filter waits for
			// the noise margin too (cycle 138; 147 before the level
			// accumulated evidence).
			if c := def.Moves[0].Cycle; c < 94 || c > 140 {
				t.Errorf("default policy migrated at cycle %d, want within 94..140", c)
			}
			if naive.Migrations <= def.Migrations+2 || naive.PingPongs == 0 {
				t.Errorf("naive: %v; want it to flap around the crossing", naive)
			}
			if def.CyclesOnNonBest <= naive.CyclesOnNonBest {
				t.Errorf("default %d cycles on a non-best substrate, naive %d: hysteresis should cost time here",
					def.CyclesOnNonBest, naive.CyclesOnNonBest)
			}
			if len(def.ReactionCycles) != 0 {
				t.Errorf("reaction %v: the drift trace declares no step", def.ReactionCycles)
			}
		}},
		{"dying.csv", func(t *testing.T, def, naive Report) {
			if def.Migrations != 0 || def.Final != "s1" {
				t.Errorf("default policy: %v; a candidate losing every other measurement must never win", def)
			}
			if naive.Migrations == 0 || naive.Moves[0].To != "s2" {
				t.Errorf("naive: %v; want it to jump to the dying s2", naive)
			}
		}},
		{"enclave.csv", func(t *testing.T, def, naive Report) {
			if def.Migrations != 1 || def.Moves[0].To != "s3" || !reflect.DeepEqual(def.ReactionCycles, []int{2}) {
				t.Errorf("default policy: %v; want one migration to s3, 2 cycles after it appears", def)
			}
			for _, r := range []Report{def, naive} {
				if r.Final != "s3" {
					t.Errorf("%s ends on %s, want s3 (the node's enclave)", r.Strategy, r.Final)
				}
				for _, m := range r.Moves {
					if m.From == "s3" {
						t.Errorf("%s left the node's enclave: %+v", r.Strategy, m)
					}
				}
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.trace, func(t *testing.T) {
			tr := loadTrace(t, c.trace)
			def := replay(t, tr, Config{}, Hysteresis)
			naive := replay(t, tr, Config{}, Naive)
			t.Logf("%v", def)
			t.Logf("%v", naive)
			c.check(t, def, naive)
			if again := replay(t, tr, Config{}, Hysteresis); !reflect.DeepEqual(again, def) {
				t.Errorf("replay is not deterministic:\n%v\n%v", def, again)
			}
		})
	}
}

// The checked-in noise traces: 700 cycles of equal means, then s2 at half
// the latency. Filtered, no flap before the step; the README's table.
func TestReplayNoiseTraces(t *testing.T) {
	for _, c := range noiseClasses {
		name := "noise-" + c.name + ".csv"
		t.Run(name, func(t *testing.T) {
			tr := loadTrace(t, name)
			def := replay(t, tr, Config{}, Hysteresis)
			raw := replay(t, tr, Config{Filter: FilterNone}, Hysteresis)
			naive := replay(t, tr, Config{}, Naive)
			t.Logf("%v\n%v\n%v", def, raw, naive)
			for _, m := range def.Moves {
				if m.Cycle < noiseStepAt {
					t.Errorf("migration before the step: %+v", m)
				}
			}
			switch {
			case c.name == "loopback":
				if def.Migrations != 0 {
					t.Errorf("%v: a 75µs step is under MinDifference", def)
				}
			case heavy(c):
				if within := heavyBounds[c.name].within50; def.Migrations != 1 || def.ReactionCycles[0] > within {
					t.Errorf("%v: want one migration within %d cycles of the step", def, within)
				}
			default:
				if def.Migrations != 1 || def.ReactionCycles[0] > 3 {
					t.Errorf("%v: want one migration within 3 cycles of the step", def)
				}
			}
			if naive.Migrations <= def.Migrations+10 {
				t.Errorf("naive %v: want it to flap", naive)
			}
		})
	}
}

func TestReplayReactionFollowsStreak(t *testing.T) {
	tr := loadTrace(t, "step.csv")
	for _, streak := range []int{1, 2, 3, 5} {
		r := replay(t, tr, Config{Streak: streak}, Hysteresis)
		if !reflect.DeepEqual(r.ReactionCycles, []int{streak}) {
			t.Errorf("streak %d: reaction %v, want [%d]", streak, r.ReactionCycles, streak)
		}
	}
}

func TestReplayRules(t *testing.T) {
	parse := func(t *testing.T, s string) Trace {
		t.Helper()
		tr, err := ParseTrace(strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	t.Run("a gone current substrate forces a move that is not a migration", func(t *testing.T) {
		tr := parse(t, "@enclave eu\n1,a,eu,40\n1,b,eu,50\n1,c,eu,45\n2,a,eu,gone\n2,b,eu,50\n2,c,eu,45\n"+
			"3,b,eu,50\n3,c,eu,45\n")
		for _, s := range []Strategy{Hysteresis, Naive} {
			r := replay(t, tr, Config{}, s)
			if r.Forced != 1 || r.Migrations != 0 || r.Final != "c" || r.Moves[0].Cycle != 2 || !r.Moves[0].Forced {
				t.Errorf("%s: %v %+v; want one forced move to c in cycle 2", s, r, r.Moves)
			}
		}
	})
	t.Run("ping-pongs and non-best cycles are counted", func(t *testing.T) {
		// a and b take turns being faster, three cycles each; naive follows
		// them, but the cycle after each attachment (the first included) is
		// the partial one that only ends the cooldown.
		var b strings.Builder
		b.WriteString("@enclave eu\n")
		for n := 1; n <= 12; n++ {
			fa, fb := 40, 20
			if (n-1)%6 >= 3 {
				fa, fb = 20, 40
			}
			fmt.Fprintf(&b, "%d,a,eu,%d\n%d,b,eu,%d\n", n, fa, n, fb)
		}
		r := replay(t, parse(t, b.String()), Config{PingPongWindow: 3}, Naive)
		var cycles []int
		for _, m := range r.Moves {
			cycles = append(cycles, m.Cycle)
		}
		if !reflect.DeepEqual(cycles, []int{2, 4, 7, 10}) || r.PingPongs != 3 {
			t.Fatalf("moves at %v with %d ping-pongs, want [2 4 7 10] with 3", cycles, r.PingPongs)
		}
		if r.CyclesOnNonBest != 5 { // cycles 1, 2, 4, 7, 10
			t.Fatalf("%d cycles on a non-best substrate, want 5", r.CyclesOnNonBest)
		}
		if r.Final != "a" {
			t.Fatalf("ends on %s, want a", r.Final)
		}
		if r2 := replay(t, parse(t, b.String()), Config{PingPongWindow: 2}, Naive); r2.PingPongs != 1 {
			t.Fatalf("window 2: %d ping-pongs, want 1 (only the return at cycle 4)", r2.PingPongs)
		}
	})
	t.Run("no migration after a step reports -1", func(t *testing.T) {
		tr := parse(t, "@step 2\n1,a,eu,40\n1,b,eu,50\n2,a,eu,40\n2,b,eu,35\n3,a,eu,40\n")
		if r := replay(t, tr, Config{}, Hysteresis); !reflect.DeepEqual(r.ReactionCycles, []int{-1}) {
			t.Fatalf("reaction %v, want [-1]", r.ReactionCycles)
		}
	})
	t.Run("invalid config and strategy are errors", func(t *testing.T) {
		tr := parse(t, "1,a,eu,40\n")
		if _, err := Replay(tr, Config{Streak: -1}, Hysteresis); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("invalid config: %v", err)
		}
		if _, err := Replay(tr, Config{}, "greedy"); err == nil || !strings.Contains(err.Error(), `"greedy"`) {
			t.Errorf("unknown strategy: %v", err)
		}
	})
}

func TestParseStrategy(t *testing.T) {
	for _, s := range []string{"hysteresis", "naive"} {
		if g, err := ParseStrategy(s); err != nil || string(g) != s {
			t.Errorf("ParseStrategy(%q) = %q, %v", s, g, err)
		}
	}
	if _, err := ParseStrategy("Naive"); err == nil {
		t.Error("ParseStrategy accepted \"Naive\"")
	}
}

func TestReportString(t *testing.T) {
	r := Report{Strategy: Naive, Cycles: 10, Migrations: 3, PingPongs: 2, Forced: 1, CyclesOnNonBest: 4,
		ReactionCycles: []int{1}, Final: "s2"}
	want := "naive: 3 migrations, 2 ping-pongs, 1 forced, 4/10 cycles on a non-best substrate, reaction [1] cycles, ends on s2"
	if g := r.String(); g != want {
		t.Fatalf("got  %s\nwant %s", g, want)
	}
}
