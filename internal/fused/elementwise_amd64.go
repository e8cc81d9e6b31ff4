//go:build !purego

package fused

// haveSIMD: SSE2 is part of the amd64 baseline.
const haveSIMD = true

// The kernels below run the float32 passes of elementwise.go on the first
// k elements (k a positive multiple of 4), four at a time, with the
// operations of the portable loops in their order (elementwise_amd64.s).

// normActSIMD: x̂ = (a−μ)·s into a, h = relu(γ·x̂+β).
//
//go:noescape
func normActSIMD(a, h *float32, k int, c *actConsts[float32])

// normActSCSIMD: x̂ = (a−μ)·s into a, h = relu(γ·x̂+β+sc).
//
//go:noescape
func normActSCSIMD(a, h, sc *float32, k int, c *actConsts[float32])

// gateSumsSIMD: d = gr where y > 0 else 0; part[l] += d, part[4+l] += d·x̂
// for lane l = i mod 4.
//
//go:noescape
func gateSumsSIMD(d, gr, y, xh *float32, k int, part *[8]float64)

// sumsSIMD: part[l] += v, part[4+l] += v² for lane l = i mod 4.
//
//go:noescape
func sumsSIMD(v *float32, k int, part *[8]float64)

// bnApplySIMD: d = ((d − c2) − x̂·c3)·c1.
//
//go:noescape
func bnApplySIMD(d, xh *float32, k int, c *bnConsts[float32])
