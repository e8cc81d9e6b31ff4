//go:build !unix

package train

// processCPU returns 0: no per-process CPU clock here (the CPU-time
// metrics are left out).
func processCPU() float64 { return 0 }
