//go:build openblas

package calibrate

// #cgo LDFLAGS: -lopenblas
import "C"

import "gonum.org/v1/netlib/blas/netlib"

// With -tags openblas (make build when libopenblas-dev is installed) the
// affine fits' GEMMs and the vector Hessian's SYRK run in OpenBLAS.
func init() {
	blasImpl = netlib.Implementation{}
	BLAS = "openblas"
}
