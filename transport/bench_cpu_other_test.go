//go:build !unix

package transport

import "time"

// processCPU returns -1: the process's CPU time is read on unix only.
func processCPU() time.Duration { return -1 }
