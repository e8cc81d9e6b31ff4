//go:build !amd64 || purego

package fused

const haveSIMD = false

func normActSIMD(a, h *float32, k int, c *actConsts[float32]) { panic("fused: no SIMD kernels") }
func normActSCSIMD(a, h, sc *float32, k int, c *actConsts[float32]) {
	panic("fused: no SIMD kernels")
}
func gateSumsSIMD(d, gr, y, xh *float32, k int, part *[8]float64) { panic("fused: no SIMD kernels") }
func sumsSIMD(v *float32, k int, part *[8]float64)                { panic("fused: no SIMD kernels") }
func bnApplySIMD(d, xh *float32, k int, c *bnConsts[float32])     { panic("fused: no SIMD kernels") }
