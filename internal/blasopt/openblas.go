//go:build openblas

package blasopt

// #cgo LDFLAGS: -lopenblas
import "C"

import (
	"gonum.org/v1/netlib/blas/netlib"
	G "gorgonia.org/gorgonia"

	"github.com/kdcal/kdcal/internal/version"
)

func init() {
	G.Use(netlib.Implementation{})
	version.Backend = "openblas"
	version.GEMM = "openblas"
}
