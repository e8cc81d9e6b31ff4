//go:build openblas

package blasopt

// #cgo LDFLAGS: -lopenblas
// void openblas_set_num_threads(int);
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

// SetThreads sets the number of OpenBLAS threads (run.blas_threads). A step
// run in the kdcal process itself needs it: OPENBLAS_NUM_THREADS is read
// once at start, and a step's summation order, so its bytes, depends on the
// thread count.
func SetThreads(n int) { C.openblas_set_num_threads(C.int(max(n, 1))) }
