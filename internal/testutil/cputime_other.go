//go:build !unix

package testutil

import "time"

// CPUTime returns 0: no per-process CPU clock here (the CPU-time metrics
// are left out).
func CPUTime() time.Duration { return 0 }
