//go:build !amd64

package kernel

// expSubVec has no vector code on this architecture.
func expSubVec(dst, src []float64, m float64) int { return 0 }
