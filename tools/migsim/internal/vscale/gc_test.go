package vscale

import (
	"os"
	"runtime/debug"
)

// A study allocates a copy of every gossip message it delivers (the
// engine's Deliver) and an engine per node on a live heap of a few MiB: at
// GOGC=100 the collector takes a fifth of this package's test CPU. The tests
// run at the collector target migsim scale itself uses (scaleGCPercent),
// 400, unless GOGC is set (GOGC=100 measures them as before).
func init() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}
