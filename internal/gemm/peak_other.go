//go:build !amd64 || purego

package gemm

// fmaPeak returns 0: there is no FMA loop for this platform.
func fmaPeak(n int) float64 { return 0 }
