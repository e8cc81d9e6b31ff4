//go:build !unix

package gemm

// ProcessCPU returns 0: no per-process CPU clock here (the CPU-time
// metrics are left out).
func ProcessCPU() float64 { return 0 }
