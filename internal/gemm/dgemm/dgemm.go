// Package dgemm is a float64 matrix product for the affine calibrators:
// gonum's blas.Float64 with Dgemm and Dsyrk replaced by a packed,
// cache-blocked product (the float64 sibling of internal/gemm's SGEMM, next to it) around a 6×8 register-blocked micro-kernel (the
// BLIS design: Van Zee & van de Geijn 2015, "BLIS: A Framework for Rapidly
// Instantiating BLAS Functionality"; Goto & van de Geijn 2008, "Anatomy of
// High-Performance Matrix Multiplication"). On amd64 CPUs with AVX2 and FMA
// (golang.org/x/sys/cpu) the micro-kernel is Go assembly; elsewhere it is
// plain Go.
//
// gonum's own Dgemm reaches about 2–8 GFLOP/s on the shapes of matrix
// scaling (10⁴×100 by 100×100, and 100×10⁴ by 10⁴×100) on this project's
// 2-core Zen 3 machine, against about 45 for OpenBLAS; this package gets
// the pure-Go build close to OpenBLAS. Its results do not depend on
// GOMAXPROCS: every element of C is summed by one goroutine in a fixed
// order (k ascending within a block of kc, blocks ascending).
//
// Like gonum's BLAS it is row-major and panics on bad arguments.
package dgemm

import (
	"runtime"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	sgemm "github.com/kdcal/kdcal/internal/gemm" // the argument checks shared with Sgemm
)

// Implementation is gonum.Implementation with a faster Dgemm and Dsyrk.
type Implementation struct{ gonum.Implementation }

var _ blas.Float64 = Implementation{}

// Blocking: the depth k is cut into blocks of kc; within a block a worker
// takes mc rows of op(A) at a time and, for each group of mr rows, sweeps
// every nr-wide column panel of op(B): the mr×kc sliver of A (6×128
// float64, at most 128 cache lines) and one kc×nr panel of B (8 KiB) stay
// in L1 while the panels stream from L2.
const (
	mr = 6   // micro-tile rows
	nr = 8   // micro-tile columns
	kc = 128 // depth of a block
	mc = 96  // rows of op(A) per worker step (a multiple of mr)
)

// Dgemm computes C = α op(A) op(B) + β C, op(X) = X or Xᵀ; C is m×n,
// op(A) m×k, op(B) k×n, all row-major with leading dimensions lda, ldb, ldc.
func (Implementation) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	transA, transB := sgemm.CheckArgs(tA, tB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	sgemm.ScaleC(m, n, beta, c, ldc)
	if k == 0 || alpha == 0 {
		return
	}
	gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, c, ldc)
}

// Dsyrk computes the ul triangle of C = α A Aᵀ + β C (t = NoTrans, A n×k)
// or C = α Aᵀ A + β C (t = Trans, A k×n); the other triangle of C is not
// touched. It forms the whole n×n product with Dgemm (twice the flops of a
// triangle, which does not matter at the sizes kdcal uses) in a scratch
// matrix.
func (impl Implementation) Dsyrk(ul blas.Uplo, t blas.Transpose, n, k int, alpha float64, a []float64, lda int, beta float64, c []float64, ldc int) {
	if ul != blas.Upper && ul != blas.Lower {
		panic("blas: illegal triangle")
	}
	trans := sgemm.IsTrans(t)
	if n < 0 || k < 0 {
		panic("blas: n < 0 or k < 0")
	}
	rows, cols := n, k
	if trans {
		rows, cols = k, n
	}
	if lda < max(1, cols) || ldc < max(1, n) {
		panic("blas: bad leading dimension")
	}
	if (rows > 0 && len(a) < (rows-1)*lda+cols) || (n > 0 && len(c) < (n-1)*ldc+n) {
		panic("blas: short slice")
	}
	if n == 0 {
		return
	}
	tmp := make([]float64, n*n)
	if k > 0 && alpha != 0 {
		tA, tB := blas.NoTrans, blas.Trans
		if trans {
			tA, tB = blas.Trans, blas.NoTrans
		}
		impl.Dgemm(tA, tB, n, n, k, alpha, a, lda, a, lda, 0, tmp, n)
	}
	for i := range n {
		lo, hi := i, n
		if ul == blas.Lower {
			lo, hi = 0, i+1
		}
		row := c[i*ldc : i*ldc+n]
		for j := lo; j < hi; j++ {
			if beta == 0 {
				row[j] = tmp[i*n+j]
			} else {
				row[j] = beta*row[j] + tmp[i*n+j]
			}
		}
	}
}

// gemm adds α op(A) op(B) to C. The work is a set of tasks, a block of
// rows of op(A) times a chunk of the depth k, taken by the workers in any
// order with no barrier but the last, so that a worker descheduled on a
// busy machine delays only its own task. When k is long (matrix scaling's
// Gᵀ Z has k = N) it is cut into chunks of kchunk whose products go to
// separate partial sums, added to C in chunk order at the end: every
// element of C is summed in the same order whatever the number of workers.
//
// The micro-kernel reads op(A) in place through its strides (packing A
// cost a fifth of the time on matrix scaling's shapes) except for a
// partial panel at the bottom edge, and B in place unless it is
// transposed or the panel is partial (see packB).
func gemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, c []float64, ldc int) {
	rsa, csa := lda, 1 // op(A)(i, p) = a[i·rsa + p·csa]
	if transA {
		rsa, csa = 1, lda
	}
	panels := packB(transB, b, ldb, k, n)
	// Row blocks of op(A): mc rows, or fewer so that every worker gets the
	// same number of mr-row panels (±1) when m is small.
	workers := runtime.GOMAXPROCS(0)
	rb := min(mc, mr*ceilDiv(ceilDiv(m, mr), workers))
	nblocks := ceilDiv(m, rb)
	nchunks := ceilDiv(k, kchunk)
	if nchunks*m*n > maxPartial {
		nchunks = 1
	}
	chunk := ceilDiv(k, nchunks)
	var partial []float64
	if nchunks > 1 {
		partial = make([]float64, nchunks*m*n)
	}
	var next atomic.Int64
	tasks := nblocks * nchunks
	var wg sync.WaitGroup
	for range min(workers, tasks) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			edge := make([]float64, mr*kc)
			for t := int(next.Add(1) - 1); t < tasks; t = int(next.Add(1) - 1) {
				ib, kch := t%nblocks, t/nblocks
				i0, k0 := ib*rb, kch*chunk
				dst, ld, scale := c[i0*ldc:], ldc, alpha
				if partial != nil {
					dst, ld, scale = partial[kch*m*n+i0*n:], n, 1
				}
				rowBlock(min(rb, m-i0), n, k0, min(chunk, k-k0), scale, a[i0*rsa:], rsa, csa, panels, dst, ld, edge)
			}
		}()
	}
	wg.Wait()
	if partial == nil {
		return
	}
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		for j := range row {
			var s float64
			for t := range nchunks {
				s += partial[t*m*n+i*n+j]
			}
			row[j] += alpha * s
		}
	}
}

// Task sizes of gemm: a chunk of the depth k, and the most float64s of
// partial sums it allocates to split k (beyond that, no split).
const (
	kchunk     = 16 * kc
	maxPartial = 1 << 22
)

// rowBlock adds α op(A)[rows, k0:k0+kn] · op(B)[k0:k0+kn, :] to the mb rows
// of C at c (row stride ldc), kc at a time; a holds the block's first row
// of op(A) (strides rsa, csa). edge is mr·kc scratch.
func rowBlock(mb, n, k0, kn int, alpha float64, a []float64, rsa, csa int, panels []panel, c []float64, ldc int, edge []float64) {
	for p0 := k0; p0 < k0+kn; p0 += kc {
		kb := min(kc, k0+kn-p0)
		for r0 := 0; r0 < mb; r0 += mr {
			ap, rs, cs := a[r0*rsa+p0*csa:], rsa, csa
			rows := min(mr, mb-r0)
			if rows < mr {
				packEdgeA(a, rsa, csa, r0, rows, p0, kb, edge)
				ap, rs, cs = edge, 1, mr
			}
			row(rows, n, p0, kb, alpha, ap, rs, cs, panels, c[r0*ldc:], ldc)
		}
	}
}

func ceilDiv(x, q int) int { return (x + q - 1) / q }

// panel is one nr-wide column panel of op(B) over the whole depth k: row p
// at b[p·rs:], nr values.
type panel struct {
	b  []float64
	rs int
}

// packB returns the column panels of op(B) (k×n): in place when B is not
// transposed and the panel is full (copying Z, 8 MB for matrix scaling on
// 10⁴×100 logits, cost more than it saved), else copied as k rows of nr
// values, zero-padded.
func packB(trans bool, b []float64, ldb, k, n int) []panel {
	panels := make([]panel, 0, ceilDiv(n, nr))
	for j0 := 0; j0 < n; j0 += nr {
		cols := min(nr, n-j0)
		if !trans && cols == nr {
			panels = append(panels, panel{b[j0:], ldb})
			continue
		}
		dst := make([]float64, k*nr)
		for p := range k {
			row := dst[p*nr : p*nr+cols]
			for j := range row {
				if trans {
					row[j] = b[(j0+j)*ldb+p]
				} else {
					row[j] = b[p*ldb+j0+j]
				}
			}
		}
		panels = append(panels, panel{dst, nr})
	}
	return panels
}

// packEdgeA copies rows i0..i0+rows (rows < mr) and columns p0..p0+kb of
// op(A) into dst as kb columns of mr values, zero-padded.
func packEdgeA(a []float64, rsa, csa, i0, rows, p0, kb int, dst []float64) {
	clear(dst)
	for p := range kb {
		for r := range rows {
			dst[p*mr+r] = a[(i0+r)*rsa+(p0+p)*csa]
		}
	}
}

// row adds α op(A)[rows, p0:p0+kb] · op(B)[p0:p0+kb, :] to the rows of C
// at c, one micro-tile per column panel; partial tiles go through a
// scratch tile.
func row(rows, n, p0, kb int, alpha float64, ap []float64, rsa, csa int, panels []panel, c []float64, ldc int) {
	var tile [mr * nr]float64
	for jp, pn := range panels {
		j0 := jp * nr
		cols := min(nr, n-j0)
		bp := pn.b[p0*pn.rs:]
		if rows == mr && cols == nr {
			kernel(kb, ap, rsa, csa, bp, pn.rs, c[j0:], ldc, alpha)
			continue
		}
		clear(tile[:])
		kernel(kb, ap, rsa, csa, bp, pn.rs, tile[:], nr, alpha)
		for r := range rows {
			dst := c[r*ldc+j0 : r*ldc+j0+cols]
			for j := range dst {
				dst[j] += tile[r*nr+j]
			}
		}
	}
}

// kernelGo adds α Σ_p A(i, p) B(p, j) to c[i·ldc + j] for i < mr, j < nr,
// p < kb, with A(i, p) = a[i·rsa + p·csa] and B(p, j) = b[p·rsb + j].
func kernelGo(kb int, a []float64, rsa, csa int, b []float64, rsb int, c []float64, ldc int, alpha float64) {
	var acc [mr][nr]float64
	for p := range kb {
		br := b[p*rsb : p*rsb+nr]
		for i := range mr {
			ai, row := a[i*rsa+p*csa], &acc[i]
			for j, bj := range br {
				row[j] += ai * bj
			}
		}
	}
	for i := range mr {
		row := c[i*ldc : i*ldc+nr]
		for j := range row {
			row[j] += alpha * acc[i][j]
		}
	}
}
