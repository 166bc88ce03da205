package simnet

import (
	"os"
	"runtime/debug"
)

// The simulator allocates a copy of every gossip message it delivers (the
// engine's Deliver) on a live heap of a few MiB: at GOGC=100 the collector
// runs about 50 times a second and takes a quarter of this package's test
// CPU. The tests run at the collector target migsim scale uses, 400, unless
// GOGC is set (GOGC=100 measures them as before).
func init() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}
