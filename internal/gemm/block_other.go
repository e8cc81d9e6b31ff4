//go:build !amd64 || purego

package gemm

// Without the amd64 assembly (other architectures, or -tags purego),
// Implementation.Sgemm is gonum's.
const (
	kernelName = "gonum"
	haveKernel = false
)

func sgemmBlocked(aT, bT bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	panic("gemm: no kernel on this platform")
}
