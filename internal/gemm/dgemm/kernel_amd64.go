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

// kernelAVX2 is kernelGo in AVX2 and FMA assembly.
func kernelAVX2(kb int, a []float64, rsa, csa int, b []float64, rsb int, c []float64, ldc int, alpha float64) {
	_ = a[(mr-1)*rsa+(kb-1)*csa]
	_ = b[(kb-1)*rsb+nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	kern6x8(kb, &a[0], rsa, csa, &b[0], rsb, &c[0], ldc, alpha)
}

//go:noescape
func kern6x8(kb int, a *float64, rsa, csa int, b *float64, rsb int, c *float64, ldc int, alpha float64)
