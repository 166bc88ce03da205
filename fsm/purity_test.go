package fsm_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// allowedImports are the only packages the fsm package may import: no net,
// time, os, sync or anything else that does I/O, reads a clock or schedules.
var allowedImports = map[string]bool{
	"context": true, "errors": true, "fmt": true, "slices": true, "strings": true, "sort": true,
	"github.com/looplab/fsm": true,
}

// impurities parses one source file and lists its imports outside
// allowedImports and its go statements.
func impurities(name string, src any) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, imp := range f.Imports {
		path, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fset.Position(imp.Pos()), err)
		}
		if !allowedImports[path] {
			out = append(out, fmt.Sprintf("%s: imports %q", fset.Position(imp.Pos()), path))
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		if g, ok := n.(*ast.GoStmt); ok {
			out = append(out, fmt.Sprintf("%s: go statement", fset.Position(g.Pos())))
		}
		return true
	})
	return out, nil
}

// TestPackageIsPure checks the package's non-test sources: imports within
// allowedImports and no goroutines.
func TestPackageIsPure(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		checked++
		bad, err := impurities(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bad {
			t.Errorf("%s: fsm must stay pure: no I/O, clock or goroutines (allowed imports: %v)",
				b, slices.Sorted(maps.Keys(allowedImports)))
		}
	}
	if checked == 0 {
		t.Fatal("no non-test Go files found: the test must run in the fsm directory")
	}
}

func TestImpuritiesAreFound(t *testing.T) {
	const src = `package fsm

import (
	"fmt"
	"time"
	lfsm "github.com/looplab/fsm"
)

var _ = lfsm.NewFSM

func tick() { go func() { fmt.Println(time.Now()) }() }
`
	bad, err := impurities("bad.go", src)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`bad.go:5:2: imports "time"`, `bad.go:11:15: go statement`}
	if !slices.Equal(bad, want) {
		t.Fatalf("impurities = %q, want %q", bad, want)
	}
}
