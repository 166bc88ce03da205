package engine

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// testFuncs returns the names of the test functions declared in this
// package's _test.go files.
func testFuncs(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob("*_test.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	out := map[string]bool{}
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Test") {
				continue
			}
			// func TestX(t *testing.T)
			if ps := fn.Type.Params.List; len(ps) == 1 {
				if star, ok := ps[0].Type.(*ast.StarExpr); ok {
					if sel, ok := star.X.(*ast.SelectorExpr); ok && sel.Sel.Name == "T" {
						out[fn.Name.Name] = true
					}
				}
			}
		}
	}
	return out
}

// Every rule is complete, named once, and pinned by a test that exists;
// every TestRule* test pins a rule.
func TestRulesTable(t *testing.T) {
	tests := testFuncs(t)
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	names := map[string]bool{}
	pinned := map[string]bool{}
	rules := Rules()
	if len(rules) < 30 {
		t.Errorf("%d rules: the table lost some", len(rules))
	}
	for i, r := range rules {
		if r.Name == "" || r.When == "" || r.Then == "" || r.Test == "" {
			t.Errorf("rule %d %q has an empty field: %+v", i, r.Name, r)
		}
		if !snake.MatchString(r.Name) {
			t.Errorf("rule %d: name %q is not snake_case", i, r.Name)
		}
		if names[r.Name] {
			t.Errorf("rule %d: name %q used twice", i, r.Name)
		}
		names[r.Name] = true
		if !tests[r.Test] {
			t.Errorf("rule %s: its test %s does not exist in package engine", r.Name, r.Test)
		}
		pinned[r.Test] = true
	}
	for name := range tests {
		if strings.HasPrefix(name, "TestRule") && name != "TestRulesTable" && !pinned[name] {
			t.Errorf("%s pins no rule: name it in a Rule's Test, or rename it", name)
		}
	}
}
