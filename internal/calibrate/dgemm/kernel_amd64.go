package dgemm

import "golang.org/x/sys/cpu"

// Kernel names the micro-kernel in use: "avx2-fma" or "go".
var Kernel = "go"

var kernel = kernelGo

func init() {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		kernel, Kernel = kernelAVX2, "avx2-fma"
	}
}

// kernelAVX2 is kernelGo with AVX2 and FMA; the slices must hold kb·mr,
// kb·nr and 5·ldc + nr values.
func kernelAVX2(kb int, a, b, c []float64, ldc int, alpha float64) {
	_ = a[kb*mr-1]
	_ = b[kb*nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	kern6x8(kb, &a[0], &b[0], &c[0], ldc, alpha)
}

//go:noescape
func kern6x8(kb int, a, b, c *float64, ldc int, alpha float64)
