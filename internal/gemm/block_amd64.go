//go:build !purego

package gemm

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/cpu"
)

const kernelName = "avx2-fma-6x16"

// haveKernel: AVX2 and FMA, with the OS saving the YMM state (x/sys/cpu
// checks OSXSAVE/XCR0 before it sets HasAVX2).
var haveKernel = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// kernel6x16 computes the tile C[0:rows, 0:16] = alpha·Aₚ·Bₚ + beta·C from
// a packed A micro-panel a (k columns of 6) and a packed B micro-panel b (k
// rows of 16), k ≥ 1, 1 ≤ rows ≤ 6. Only rows rows of C are touched, and C
// is not read when beta = ±0. Defined in kernel_amd64.s.
//
//go:noescape
func kernel6x16(k int, a, b, c *float32, ldc int, alpha, beta float32, rows int)

// packA6 sets d[6p+r] = rows[r][p] for p < k, r < 6.
//
//go:noescape
func packA6(d *float32, rows *[6]*float32, k int)

// packB16 sets d[16p+j] = rows[j][p] for p < k, j < 16.
//
//go:noescape
func packB16(d *float32, rows *[16]*float32, k int)

// packB16N sets d[q·16·kd + 16p + j] = b[p·ldb + 16q + j] for p < k,
// q < np, j < 16.
//
//go:noescape
func packB16N(d, b *float32, ldb, k, np, kd int)

// packA6T sets d[q·6·kd + 6p + r] = a[p·lda + 6q + r] for p < k, q < np,
// r < 6.
//
//go:noescape
func packA6T(d, a *float32, lda, k, np, kd int)

// fmaLoop runs n iterations of 12 independent 8-wide FMAs (192 flops).
//
//go:noescape
func fmaLoop(n int)

// workspace holds the packed panels of one call, 64-byte aligned.
type workspace struct {
	a, b []float32
	tile [mr * nr]float32
}

var workspaces = sync.Pool{New: func() any { return new(workspace) }}

// aligned returns a slice of n floats of buf (grown as needed) that starts
// on a 64-byte boundary.
func aligned(buf *[]float32, n int) []float32 {
	const pad = 16 // floats in 64 bytes
	if cap(*buf) < n+pad {
		*buf = make([]float32, n+pad)
	}
	s := (*buf)[:cap(*buf)]
	off := int(uintptr(unsafe.Pointer(&s[0]))&63) / 4
	if off != 0 {
		off = pad - off
	}
	return s[off : off+n]
}

// split divides total into the fewest blocks of at most blk, of nearly
// equal sizes rounded up to a multiple of unit, and returns the block size.
// Equal blocks avoid a short last block (k = 784 with kc = 256 runs
// 4 × 196 instead of 3 × 256 + 16).
func split(total, blk, unit int) int {
	nb := (total + blk - 1) / blk
	size := (total + nb - 1) / nb
	return (size + unit - 1) / unit * unit
}

// sgemmBlocked computes C = alpha·op(A)·op(B) + beta·C for valid arguments
// with m, n, k ≥ 1 and alpha ≠ 0 (the loop nest of the package doc). When
// n is below one 16-column panel and m is larger (a dense layer to 10
// classes, a 3×3 conv's weight gradient), it computes Cᵀ = op(B)ᵀ·op(A)ᵀ
// instead, which wastes fewer lanes, and writes each tile transposed.
func sgemmBlocked(aT, bT bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	ws := workspaces.Get().(*workspace)
	defer workspaces.Put(ws)
	swap := n < nr && m > n
	if swap {
		aT, bT, m, n, a, lda, b, ldb = !bT, !aT, n, m, b, ldb, a, lda
	}
	kb0 := split(k, kc, 1)
	nb0 := split(n, nc, nr)
	mb0 := split(m, mc, mr)
	pb := aligned(&ws.b, kb0*min(nb0, (n+nr-1)/nr*nr))
	pa := aligned(&ws.a, kb0*min(mb0, (m+mr-1)/mr*mr))
	for jc := 0; jc < n; jc += nb0 {
		nb := min(nb0, n-jc)
		for pc := 0; pc < k; pc += kb0 {
			kb := min(kb0, k-pc)
			bet := beta
			if pc > 0 {
				bet = 1 // later depth blocks accumulate
			}
			packB(pb, bT, b, ldb, pc, jc, kb, nb)
			for ic := 0; ic < m; ic += mb0 {
				mb := min(mb0, m-ic)
				packA(pa, aT, a, lda, ic, pc, mb, kb)
				if swap {
					macroKernelT(ws, mb, nb, kb, alpha, pa, pb, bet, c[jc*ldc+ic:], ldc)
				} else {
					macroKernel(ws, mb, nb, kb, alpha, pa, pb, bet, c[ic*ldc+jc:], ldc)
				}
			}
		}
	}
}

// macroKernel updates the mb×nb block c (row stride ldc) with the packed
// A block pa and B block pb of depth kb, one 6×16 tile at a time. Tiles cut
// by m (fewer than 6 rows) are written directly; tiles cut by n (fewer than
// 16 columns) are computed into ws.tile and merged.
func macroKernel(ws *workspace, mb, nb, kb int, alpha float32, pa, pb []float32, beta float32, c []float32, ldc int) {
	for jr := 0; jr < nb; jr += nr {
		nn := min(nr, nb-jr)
		bp := &pb[jr*kb]
		for ir := 0; ir < mb; ir += mr {
			mm := min(mr, mb-ir)
			ap := &pa[ir*kb]
			if nn == nr {
				kernel6x16(kb, ap, bp, &c[ir*ldc+jr], ldc, alpha, beta, mm)
				continue
			}
			kernel6x16(kb, ap, bp, &ws.tile[0], nr, alpha, 0, mm)
			mergeTile(&ws.tile, mm, nn, beta, c[ir*ldc+jr:], ldc)
		}
	}
}

// mergeTile sets C[i,j] = t[i,j] + beta·C[i,j] for i < mm, j < nn, without
// reading C when beta = 0.
func mergeTile(t *[mr * nr]float32, mm, nn int, beta float32, c []float32, ldc int) {
	for i := range mm {
		row := c[i*ldc : i*ldc+nn]
		src := t[i*nr : i*nr+nn]
		switch beta {
		case 0:
			copy(row, src)
		case 1:
			for j, v := range src {
				row[j] += v
			}
		default:
			for j, v := range src {
				row[j] = beta*row[j] + v
			}
		}
	}
}

// macroKernelT is macroKernel for a transposed result: the mb×nb block
// of Cᵀ goes to c as c[j·ldc + i] = Cᵀ[i, j], tile by tile through ws.tile.
func macroKernelT(ws *workspace, mb, nb, kb int, alpha float32, pa, pb []float32, beta float32, c []float32, ldc int) {
	for jr := 0; jr < nb; jr += nr {
		nn := min(nr, nb-jr)
		bp := &pb[jr*kb]
		for ir := 0; ir < mb; ir += mr {
			mm := min(mr, mb-ir)
			kernel6x16(kb, &pa[ir*kb], bp, &ws.tile[0], nr, alpha, 0, mm)
			mergeTileT(&ws.tile, mm, nn, beta, c[jr*ldc+ir:], ldc)
		}
	}
}

// mergeTileT sets C[j,i] = t[i,j] + beta·C[j,i] for i < mm, j < nn, without
// reading C when beta = 0.
func mergeTileT(t *[mr * nr]float32, mm, nn int, beta float32, c []float32, ldc int) {
	for j := range nn {
		row := c[j*ldc : j*ldc+mm]
		for i := range row {
			v := t[i*nr+j]
			switch beta {
			case 0:
				row[i] = v
			case 1:
				row[i] += v
			default:
				row[i] = beta*row[i] + v
			}
		}
	}
}

// packA copies the mb×kb block of op(A) at (i0, p0) into dst as micro-panels
// of 6 rows: panel q holds dst[q·6·kb + 6p + r] = op(A)[i0+6q+r, p0+p].
// Rows of the last panel beyond mb hold other finite or stale values: row
// r of a tile depends only on row r of A, and the merge drops those rows.
func packA(dst []float32, aT bool, a []float32, lda, i0, p0, mb, kb int) {
	if aT {
		packPanelsByRow(dst, a[p0*lda+i0:], lda, kb, mb, mr, packA6T)
		return
	}
	for ir := 0; ir < mb; ir += mr {
		mm := min(mr, mb-ir)
		var rows [mr]*float32
		for r := range rows {
			rows[r] = &a[(i0+ir+min(r, mm-1))*lda+p0]
		}
		packA6(&dst[ir*kb], &rows, kb)
	}
}

// packPanelsByRow packs the kb×w block of a row-major matrix x (stride ldx)
// into micro-panels of width u (6 or 16): panel q holds dst[q·u·kb + u·p + j]
// = x[p·ldx + u·q + j]. The assembly routine pack reads whole panels, also
// the last one when it is cut by w, for the rows where that stays inside x;
// the rows past that (at most the last few) are copied here.
func packPanelsByRow(dst, x []float32, ldx, kb, w, u int, pack func(d, x *float32, ldx, k, np, kd int)) {
	np := (w + u - 1) / u
	safe := kb
	if over := (kb-1)*ldx + np*u - len(x); over > 0 {
		safe = kb - (over+ldx-1)/ldx
	}
	if safe > 0 {
		pack(&dst[0], &x[0], ldx, safe, np, kb)
	}
	for p := max(safe, 0); p < kb; p++ {
		row := x[p*ldx : p*ldx+w]
		for q := 0; q < w; q += u {
			copy(dst[q*kb+u*p:][:min(u, w-q)], row[q:])
		}
	}
}

// packB copies the kb×nb block of op(B) at (p0, j0) into dst as
// micro-panels of 16 columns: panel q holds dst[q·16·kb + 16p + c] =
// op(B)[p0+p, j0+16q+c]. Columns of the last panel beyond nb hold other
// values (column c of a tile depends only on column c of B).
func packB(dst []float32, bT bool, b []float32, ldb, p0, j0, kb, nb int) {
	if !bT {
		packPanelsByRow(dst, b[p0*ldb+j0:], ldb, kb, nb, nr, packB16N)
		return
	}
	for jr := 0; jr < nb; jr += nr {
		nn := min(nr, nb-jr)
		var rows [nr]*float32
		for j := range rows {
			rows[j] = &b[(j0+jr+min(j, nn-1))*ldb+p0]
		}
		packB16(&dst[jr*kb], &rows, kb)
	}
}
