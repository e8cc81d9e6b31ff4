package gemm

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Implementation is gonum's BLAS with Sgemm replaced by this package's
// blocked AVX2+FMA GEMM where the CPU supports it. Every other routine,
// and Sgemm on other CPUs, is gonum's. Pass it to gorgonia.Use.
type Implementation struct {
	gonum.Implementation
}

var _ blas.Float32Level3 = Implementation{}

// Kernel names the Sgemm kernel in use on this CPU: "avx2-fma-6x16" (this
// package's micro-kernel) or "gonum" (gonum's Sgemm).
func Kernel() string {
	if haveKernel {
		return kernelName
	}
	return "gonum"
}

// Sgemm performs one of the matrix-matrix operations
//
//	C = alpha·op(A)·op(B) + beta·C,  op(X) = X or Xᵀ,
//
// where op(A) is m×k, op(B) is k×n and C is m×n, all row-major with leading
// dimensions lda, ldb and ldc. tA and tB choose op (ConjTrans is Trans).
//
// The arguments are checked as gonum checks them, with the same panics. As in
// the reference BLAS, A and B are not read when alpha = 0 or k = 0 (gonum's
// Sgemm reads them), and C is not read when beta = 0 (it is overwritten, so
// NaN in C does not propagate).
// The computation runs in the calling goroutine (no threads); see the
// package documentation for the blocking scheme and the error bound.
func (impl Implementation) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	aT, bT := CheckArgs(tA, tB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if alpha == 0 || k == 0 {
		ScaleC(m, n, beta, c, ldc)
		return
	}
	if !haveKernel {
		impl.Implementation.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	sgemmBlocked(aT, bT, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Panic messages of gonum's argument checks (gonum/blas/gonum/errors.go).
const (
	badTranspose = "blas: illegal transpose"
	mLT0         = "blas: m < 0"
	nLT0         = "blas: n < 0"
	kLT0         = "blas: k < 0"
	badLdA       = "blas: bad leading dimension of A"
	badLdB       = "blas: bad leading dimension of B"
	badLdC       = "blas: bad leading dimension of C"
	shortA       = "blas: insufficient length of a"
	shortB       = "blas: insufficient length of b"
	shortC       = "blas: insufficient length of c"
)

// CheckArgs panics as gonum's Sgemm and Dgemm do on invalid arguments,
// with their messages, and returns whether A and B are transposed. Shared
// with internal/gemm/dgemm.
func CheckArgs[T float32 | float64](tA, tB blas.Transpose, m, n, k int, a []T, lda int, b []T, ldb int, c []T, ldc int) (aT, bT bool) {
	aT, bT = IsTrans(tA), IsTrans(tB)
	switch {
	case m < 0:
		panic(mLT0)
	case n < 0:
		panic(nLT0)
	case k < 0:
		panic(kLT0)
	case aT && lda < max(1, m), !aT && lda < max(1, k):
		panic(badLdA)
	case bT && ldb < max(1, k), !bT && ldb < max(1, n):
		panic(badLdB)
	case ldc < max(1, n):
		panic(badLdC)
	case m == 0 || n == 0:
		return aT, bT
	case aT && len(a) < (k-1)*lda+m, !aT && len(a) < (m-1)*lda+k:
		panic(shortA)
	case bT && len(b) < (n-1)*ldb+k, !bT && len(b) < (k-1)*ldb+n:
		panic(shortB)
	case len(c) < (m-1)*ldc+n:
		panic(shortC)
	}
	return aT, bT
}

// IsTrans reports whether t transposes, panicking as gonum does on an
// illegal value.
func IsTrans(t blas.Transpose) bool {
	switch t {
	case blas.NoTrans:
		return false
	case blas.Trans, blas.ConjTrans:
		return true
	}
	panic(badTranspose)
}

// ScaleC sets C = beta·C, and C = 0 without reading C (NaNs included, as
// BLAS does) when beta = 0.
func ScaleC[T float32 | float64](m, n int, beta T, c []T, ldc int) {
	if beta == 1 {
		return
	}
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}
