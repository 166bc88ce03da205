package engine

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The pure packages: no network, no clock reads, no goroutines, no
// channels. Time is an input; each package imports only what it lists.
// This one test checks all three (fsm, policy and this engine), so the
// rule is written once.
var purePackages = []struct {
	dir     string
	imports []string
}{
	{"../../fsm", []string{"context", "errors", "fmt", "slices", "github.com/looplab/fsm"}},
	{"../../policy", []string{"bufio", "errors", "fmt", "io", "math", "slices", "sort", "strconv", "strings", "time",
		"github.com/repram/handover/fsm"}},
	{".", []string{"cmp", "errors", "fmt", "math", "math/rand/v2", "slices", "strconv", "strings", "time",
		"github.com/rs/zerolog", "github.com/repram/handover/fsm", "github.com/repram/handover/policy",
		"github.com/repram/handover/transport/dedup", "github.com/repram/handover/transport/wire"}},
}

// clockCalls read the clock or schedule: time is an input in a pure package.
var clockCalls = map[string]bool{"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
	"AfterFunc": true, "Tick": true, "NewTimer": true, "NewTicker": true}

// impurities lists what makes one source file impure.
func impurities(name string, src any, allowed []string) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, im := range f.Imports {
		p, err := strconv.Unquote(im.Path.Value)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(allowed, p) {
			out = append(out, fmt.Sprintf("%s: imports %q", fset.Position(im.Pos()), p))
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			out = append(out, fmt.Sprintf("%s: go statement", fset.Position(n.Pos())))
		case *ast.ChanType:
			out = append(out, fmt.Sprintf("%s: channel type", fset.Position(n.Pos())))
		case *ast.SelectorExpr:
			if id, ok := n.X.(*ast.Ident); ok && id.Name == "time" && clockCalls[n.Sel.Name] {
				out = append(out, fmt.Sprintf("%s: time.%s: time is an input here", fset.Position(n.Pos()), n.Sel.Name))
			}
		}
		return true
	})
	return out, nil
}

// TestPurePackages checks every non-test source of fsm, policy and this
// engine.
func TestPurePackages(t *testing.T) {
	for _, p := range purePackages {
		files, err := filepath.Glob(filepath.Join(p.dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			checked++
			bad, err := impurities(name, nil, p.imports)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range bad {
				t.Errorf("%s: %s must stay pure: no I/O, clock, goroutines or channels (allowed imports: %v)", b, p.dir, p.imports)
			}
		}
		if checked == 0 {
			t.Errorf("%s: no non-test Go files found", p.dir)
		}
	}
}

// TestImpuritiesAreFound shows the check can fail.
func TestImpuritiesAreFound(t *testing.T) {
	const src = `package x

import (
	"net"
	"time"
)

var _ net.Conn

func tick() { go func() { _ = time.Now() }() }

var c chan int
`
	bad, err := impurities("bad.go", src, []string{"time"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`bad.go:4:2: imports "net"`, `bad.go:10:15: go statement`,
		`bad.go:10:31: time.Now: time is an input here`, `bad.go:12:7: channel type`}
	if !slices.Equal(bad, want) {
		t.Fatalf("impurities =\n%q\nwant\n%q", bad, want)
	}
	if _, err := os.Stat("engine.go"); err != nil {
		t.Fatalf("the test must run in the engine's directory: %v", err)
	}
}
