// Command gendot generates the diagrams and the transition table of the
// migration state chart from fsm.Declaration():
//
//	docs/statecharts/migration.dot   Graphviz source
//	docs/statecharts/migration.mmd   Mermaid stateDiagram-v2 (GitHub renders it)
//	docs/statecharts/migration.svg   rendered in-process by Graphviz compiled to WebAssembly
//	docs/statecharts/transitions.md  every (state, event) decision and every transition
//	docs/statecharts/review.html     one self-contained page: the chart, the scenarios of
//	                                 testdata/fsm/scenarios highlighted on it, the guards,
//	                                 the engine's rules and every decision
//
// Run it from anywhere inside the module:
//
//	go run ./tools/gendot          write the files that changed
//	go run ./tools/gendot -check   write nothing; exit 1 naming each stale or missing file
//
// -out DIR writes to DIR instead of docs/statecharts under the module root.
// Without -out, the Mermaid chart is also kept in the module's README.md,
// between the markers readmeBegin and readmeEnd, so GitHub renders it on the
// front page; -check checks that copy too. The output is deterministic, so
// -check can run in CI.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/repram/handover/fsm"
	"github.com/repram/handover/transport/engine"
)

// defaultOut is where the files go, relative to the module root.
const defaultOut = "docs/statecharts"

func main() {
	out := flag.String("out", "", "directory for the generated files (default: "+defaultOut+" under the module root)")
	check := flag.Bool("check", false, "write nothing; exit 1 naming each generated file that is stale or missing")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: gendot [-check] [-out DIR]\n\n"+
			"Generates the state chart diagrams and transition table from fsm.Declaration().\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(context.Background(), *out, *check, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gendot:", err)
		os.Exit(1)
	}
}

// run generates the files and writes them to dir (or, with check, compares
// them with what dir holds). An empty dir means defaultOut under the module
// root.
func run(ctx context.Context, dir string, check bool, stdout io.Writer) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	readme := ""
	if dir == "" {
		dir = filepath.Join(root, defaultOut)
		readme = filepath.Join(root, "README.md")
	}
	c := fsm.Declaration()
	scenarios, err := readScenarios(c, filepath.Join(root, scenarioDir))
	if err != nil {
		return err
	}
	files, err := generate(ctx, input{chart: c, scenarios: scenarios, rules: engine.Rules()})
	if err != nil {
		return err
	}
	if check {
		if err := checkFiles(dir, files); err != nil {
			return err
		}
		if readme != "" {
			if err := checkReadme(readme, files); err != nil {
				return err
			}
		}
		fmt.Fprintf(stdout, "gendot: %d files in %s are up to date\n", len(files), dir)
		return nil
	}
	written, err := writeFiles(dir, files)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "gendot: %d of %d files in %s rewritten\n", written, len(files), dir)
	if readme != "" {
		n, err := writeReadme(readme, files)
		if err != nil {
			return err
		}
		if n > 0 {
			fmt.Fprintf(stdout, "gendot: the state chart in %s rewritten\n", readme)
		}
	}
	return nil
}

// file is one generated file.
type file struct {
	name string
	data []byte
}

// input is what the files are generated from.
type input struct {
	chart     fsm.Chart
	scenarios []scenario    // replayed on chart, for review.html
	rules     []engine.Rule // the engine's rules, for review.html and transitions.md
}

// generate renders every file from the input, in a fixed order.
func generate(ctx context.Context, in input) ([]file, error) {
	c := in.chart
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("the declaration is invalid, fix fsm/chart.go: %w", err)
	}
	dot, err := dotFile(c)
	if err != nil {
		return nil, err
	}
	mmd, err := mermaidFile(c)
	if err != nil {
		return nil, err
	}
	md, err := markdownFile(c, in.rules)
	if err != nil {
		return nil, err
	}
	svg, err := svgFile(ctx, dot)
	if err != nil {
		return nil, err
	}
	review, err := reviewFile(c, svg, in.scenarios, in.rules)
	if err != nil {
		return nil, err
	}
	return []file{
		{"migration.dot", dot},
		{"migration.mmd", mmd},
		{"migration.svg", svg},
		{"transitions.md", md},
		{"review.html", review},
	}, nil
}

// StaleError lists the generated files that differ from what the declaration
// gives, or are missing.
type StaleError struct {
	Dir     string
	Stale   []string // present but different
	Missing []string
}

func (e *StaleError) Error() string {
	var parts []string
	for _, n := range e.Stale {
		parts = append(parts, filepath.Join(e.Dir, n)+" is stale")
	}
	for _, n := range e.Missing {
		parts = append(parts, filepath.Join(e.Dir, n)+" is missing")
	}
	return strings.Join(parts, "; ") +
		": they are generated from fsm.Declaration(); regenerate them with `go run ./tools/gendot` (or `go generate ./fsm`) and commit the result"
}

// checkFiles compares the generated files with those in dir.
func checkFiles(dir string, files []file) error {
	serr := &StaleError{Dir: dir}
	for _, f := range files {
		have, err := os.ReadFile(filepath.Join(dir, f.name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			serr.Missing = append(serr.Missing, f.name)
		case err != nil:
			return fmt.Errorf("check %s: %w", f.name, err)
		case !bytes.Equal(have, f.data):
			serr.Stale = append(serr.Stale, f.name)
		}
	}
	if len(serr.Stale)+len(serr.Missing) > 0 {
		return serr
	}
	return nil
}

// writeFiles writes the files that differ from dir's and reports how many
// it wrote; unchanged files keep their modification time.
func writeFiles(dir string, files []file) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("create the output directory: %w", err)
	}
	written := 0
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if have, err := os.ReadFile(path); err == nil && bytes.Equal(have, f.data) {
			continue
		}
		if err := os.WriteFile(path, f.data, 0o644); err != nil {
			return written, fmt.Errorf("write %s: %w", f.name, err)
		}
		written++
	}
	return written, nil
}

// moduleRoot returns the nearest directory at or above the working directory
// that holds a go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod at or above the working directory: run gendot inside the module, which holds the scenarios it reads (testdata/fsm/scenarios)")
		}
		dir = parent
	}
}
