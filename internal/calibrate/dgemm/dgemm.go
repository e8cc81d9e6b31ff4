// Package dgemm is a float64 matrix product for the affine calibrators:
// gonum's blas.Float64 with Dgemm and Dsyrk replaced by a packed,
// cache-blocked product around a 6×8 register-blocked micro-kernel (the
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

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Implementation is gonum.Implementation with a faster Dgemm and Dsyrk.
type Implementation struct{ gonum.Implementation }

var _ blas.Float64 = Implementation{}

// Blocking: a kc×nc block of B (packed, ~L3-resident: 256×4096 float64 is
// 8 MiB, but matrix scaling has n ≤ a few hundred) is shared by all
// workers; each worker packs an mc×kc block of A (96×256: 192 KiB, L2) and
// sweeps it against every nr-wide panel of B (256×8: 16 KiB, L1).
const (
	mr = 6   // micro-tile rows
	nr = 8   // micro-tile columns
	kc = 256 // depth of a packed block
	mc = 96  // rows of A packed per worker step (a multiple of mr)
)

// Dgemm computes C = α op(A) op(B) + β C, op(X) = X or Xᵀ; C is m×n,
// op(A) m×k, op(B) k×n, all row-major with leading dimensions lda, ldb, ldc.
func (Implementation) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	transA, transB := isTrans(tA), isTrans(tB)
	checkGemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	scale(m, n, beta, c, ldc)
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
	trans := isTrans(t)
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

func isTrans(t blas.Transpose) bool {
	switch t {
	case blas.NoTrans:
		return false
	case blas.Trans, blas.ConjTrans:
		return true
	}
	panic("blas: illegal transpose")
}

func checkGemm(transA, transB bool, m, n, k int, a []float64, lda int, b []float64, ldb int, c []float64, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic("blas: m, n or k < 0")
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	if lda < max(1, ac) || ldb < max(1, bc) || ldc < max(1, n) {
		panic("blas: bad leading dimension")
	}
	if (ar > 0 && ac > 0 && len(a) < (ar-1)*lda+ac) || (br > 0 && bc > 0 && len(b) < (br-1)*ldb+bc) ||
		(m > 0 && n > 0 && len(c) < (m-1)*ldc+n) {
		panic("blas: short slice")
	}
}

// scale sets C = β C (β = 0 clears C, NaNs included, as BLAS does).
func scale(m, n int, beta float64, c []float64, ldc int) {
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

// gemm adds α op(A) op(B) to C, block by block of depth kc.
func gemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, c []float64, ldc int) {
	np := (n + nr - 1) / nr
	bp := make([]float64, np*nr*min(k, kc))
	// Row blocks of A: mc rows, fewer when that leaves a worker idle.
	workers := runtime.GOMAXPROCS(0)
	rb := min(mc, roundUp((m+2*workers-1)/(2*workers), mr))
	nblocks := (m + rb - 1) / rb
	workers = min(workers, nblocks)
	aps := make([][]float64, workers)
	for w := range aps {
		aps[w] = make([]float64, rb*min(k, kc))
	}
	for p0 := 0; p0 < k; p0 += kc {
		kb := min(kc, k-p0)
		packB(transB, b, ldb, p0, kb, n, bp)
		var wg sync.WaitGroup
		next := make(chan int, nblocks)
		for i := range nblocks {
			next <- i * rb
		}
		close(next)
		for w := range workers {
			wg.Add(1)
			go func(ap []float64) {
				defer wg.Done()
				for i0 := range next {
					mb := min(rb, m-i0)
					packA(transA, a, lda, i0, mb, p0, kb, ap)
					block(mb, n, kb, alpha, ap, bp, c[i0*ldc:], ldc)
				}
			}(aps[w])
		}
		wg.Wait()
	}
}

func roundUp(x, q int) int { return (x + q - 1) / q * q }

// packA copies rows i0..i0+mb and columns p0..p0+kb of op(A) into ap as
// ⌈mb/mr⌉ panels, each kb columns of mr values (zero-padded).
func packA(trans bool, a []float64, lda, i0, mb, p0, kb int, ap []float64) {
	for r0 := 0; r0 < mb; r0 += mr {
		panel := ap[r0*kb : r0*kb+mr*kb]
		rows := min(mr, mb-r0)
		switch {
		case trans && rows == mr: // row p0+p of A holds the panel's column p contiguously
			for p := range kb {
				q := (p0+p)*lda + i0 + r0
				d, s := panel[p*mr:p*mr+mr], a[q:q+mr]
				d[0], d[1], d[2], d[3], d[4], d[5] = s[0], s[1], s[2], s[3], s[4], s[5]
			}
		case !trans && rows == mr:
			r := [mr][]float64{}
			for i := range r {
				r[i] = a[(i0+r0+i)*lda+p0 : (i0+r0+i)*lda+p0+kb]
			}
			r0, r1, r2, r3, r4, r5 := r[0][:kb], r[1][:kb], r[2][:kb], r[3][:kb], r[4][:kb], r[5][:kb]
			for p := range kb {
				d := panel[p*mr : p*mr+mr]
				d[0], d[1], d[2], d[3], d[4], d[5] = r0[p], r1[p], r2[p], r3[p], r4[p], r5[p]
			}
		default: // a partial panel at the bottom edge
			clear(panel)
			for r := range rows {
				for p := range kb {
					i, q := i0+r0+r, p0+p
					if trans {
						panel[p*mr+r] = a[q*lda+i]
					} else {
						panel[p*mr+r] = a[i*lda+q]
					}
				}
			}
		}
	}
}

// packB copies rows p0..p0+kb of op(B) into bp as ⌈n/nr⌉ panels, each kb
// rows of nr values (zero-padded).
func packB(trans bool, b []float64, ldb, p0, kb, n int, bp []float64) {
	for j0 := 0; j0 < n; j0 += nr {
		panel := bp[j0*kb : j0*kb+nr*kb]
		cols := min(nr, n-j0)
		switch {
		case !trans && cols == nr: // row p0+p of B holds the panel's row p contiguously
			for p := range kb {
				q := (p0+p)*ldb + j0
				d, s := panel[p*nr:p*nr+nr], b[q:q+nr]
				d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
			}
		default:
			clear(panel)
			for j := range cols {
				for p := range kb {
					q := p0 + p
					if trans {
						panel[p*nr+j] = b[(j0+j)*ldb+q]
					} else {
						panel[p*nr+j] = b[q*ldb+j0+j]
					}
				}
			}
		}
	}
}

// block adds α Ap Bp to the mb×n block of C at c, micro-tile by micro-tile.
func block(mb, n, kb int, alpha float64, ap, bp, c []float64, ldc int) {
	var edge [mr * nr]float64
	for j0 := 0; j0 < n; j0 += nr {
		bpanel := bp[j0*kb:]
		cols := min(nr, n-j0)
		for r0 := 0; r0 < mb; r0 += mr {
			apanel := ap[r0*kb:]
			rows := min(mr, mb-r0)
			if rows == mr && cols == nr {
				kernel(kb, apanel, bpanel, c[r0*ldc+j0:], ldc, alpha)
				continue
			}
			clear(edge[:])
			kernel(kb, apanel, bpanel, edge[:], nr, alpha)
			for r := range rows {
				dst := c[(r0+r)*ldc+j0 : (r0+r)*ldc+j0+cols]
				for j := range dst {
					dst[j] += edge[r*nr+j]
				}
			}
		}
	}
}

// kernelGo adds α Σ_p a[p·mr + i] b[p·nr + j] to c[i·ldc + j], i < mr, j < nr.
func kernelGo(kb int, a, b, c []float64, ldc int, alpha float64) {
	var acc [mr][nr]float64
	a, b = a[:kb*mr], b[:kb*nr]
	for p := range kb {
		ar, br := a[p*mr:p*mr+mr], b[p*nr:p*nr+nr]
		for i, ai := range ar {
			row := &acc[i]
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
