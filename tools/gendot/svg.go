package main

import (
	"bytes"
	"context"
	"fmt"

	"github.com/goccy/go-graphviz"
)

// svgFile lays out a DOT graph with Graphviz's dot engine and renders it as
// SVG. Graphviz runs as WebAssembly inside the process (go-graphviz on
// wazero), so no system Graphviz is needed and the output does not depend
// on the machine: it uses Graphviz's built-in font metrics.
func svgFile(ctx context.Context, dot []byte) (_ []byte, err error) {
	gv, err := graphviz.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("start Graphviz: %w", err)
	}
	defer func() {
		if cerr := gv.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close Graphviz: %w", cerr)
		}
	}()
	graph, err := graphviz.ParseBytes(dot)
	if err != nil {
		return nil, fmt.Errorf("parse the generated DOT: %w", err)
	}
	defer func() {
		if cerr := graph.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("free the graph: %w", cerr)
		}
	}()
	var b bytes.Buffer
	if err := gv.Render(ctx, graph, graphviz.SVG, &b); err != nil {
		return nil, fmt.Errorf("render SVG: %w", err)
	}
	return b.Bytes(), nil
}
