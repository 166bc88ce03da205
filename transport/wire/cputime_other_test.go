//go:build !linux

package wire_test

import "time"

// threadCPU falls back to the wall clock where there is no thread CPU clock.
func threadCPU() time.Duration { return time.Duration(time.Now().UnixNano()) }
