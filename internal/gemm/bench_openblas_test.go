//go:build openblas

package gemm_test

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/netlib/blas/netlib"

	_ "github.com/kdcal/kdcal/internal/blasopt" // links -lopenblas
)

func init() {
	benchImpls = append(benchImpls, struct {
		name string
		impl blas.Float32Level3
	}{"openblas", netlib.Implementation{}})
}
