//go:build !amd64

package kernel

// expVec has no vector code on this architecture.
func expVec(dst, src []float64, m, beta float64) int { return 0 }
