//go:build !openblas

package blasopt

import (
	G "gorgonia.org/gorgonia"

	"github.com/kdcal/kdcal/internal/gemm"
	"github.com/kdcal/kdcal/internal/version"
)

func init() {
	G.Use(gemm.Implementation{})
	version.Backend = "pure-go"
	version.GEMM = gemm.Kernel()
}

// SetThreads does nothing: internal/gemm runs on the calling goroutine.
func SetThreads(int) {}
