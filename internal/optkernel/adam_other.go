//go:build !amd64 || purego

package optkernel

const haveSIMD = false

func adamSIMD(w, grad, m, v *float32, k int, c *AdamConsts, part *[4]float32) {
	panic("optkernel: no SIMD kernel on this architecture")
}
