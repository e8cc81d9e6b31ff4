//go:build !purego

package gemm

// fmaPeak runs n iterations of a register-only loop of 12 independent
// 8-wide float32 FMAs and returns the flops done (192·n), so that a
// benchmark can measure the core's float32 FMA throughput, the ceiling for
// any SGEMM. It returns 0 without AVX2 and FMA.
func fmaPeak(n int) float64 {
	if !haveKernel {
		return 0
	}
	fmaLoop(n)
	return 192 * float64(n)
}
