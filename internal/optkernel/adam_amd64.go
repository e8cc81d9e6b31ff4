//go:build !purego

package optkernel

// haveSIMD: SSE2 is part of the amd64 baseline.
const haveSIMD = true

// adamSIMD is Adam on the first k elements (k a positive multiple of 4),
// four at a time; part receives the four partial sums of w².
//
//go:noescape
func adamSIMD(w, grad, m, v *float32, k int, c *AdamConsts, part *[4]float32)
