package fused

import (
	"gonum.org/v1/gonum/blas"
	gonumblas "gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
)

// conv is the geometry of one 3×3 convolution with padding 1 and stride s
// (torch.nn.Conv2d(c, f, 3, stride=s, padding=1, bias=False)): input
// (n,c,h,w), weight (f,c,3,3) in OIHW layout, output (n,f,ho,wo) with
// ho = ⌊(h+2−3)/s⌋+1 = ⌊(h−1)/s⌋+1 and likewise wo.
type conv struct {
	n, c, h, w int
	f, s       int
	ho, wo     int
	nb         int // images per chunk (chunkImages)
}

func newConv(n, c, h, w, f, s int) conv {
	g := conv{n: n, c: c, h: h, w: w, f: f, s: s, ho: (h-1)/s + 1, wo: (w-1)/s + 1}
	g.nb = chunkImages(g.k(), g.q(), n)
	return g
}

func (g conv) k() int { return g.c * 9 }   // patch length: rows of the column matrix
func (g conv) p() int { return g.h * g.w } // pixels of an input plane
func (g conv) q() int { return g.ho * g.wo }

// chunkElems bounds the column matrix of one chunk of images (k rows,
// nb·q columns) so that it stays in the L2 cache between im2col and the
// GEMM that reads it; BenchmarkChunk tunes it.
var chunkElems = 64 << 10

// chunkImages returns how many images one chunk holds: as many as fit in
// chunkElems, at least one, at most n.
func chunkImages(k, q, n int) int {
	return min(max(chunkElems/max(k*q, 1), 1), n)
}

// layout says where the plane of image i, channel c starts in a 4-d
// activation: at i·sn + c·sc. Planes (h·w pixels, row-major) are always
// contiguous. The fused ops exchange NCHW tensors (sn = C·P, sc = P) and
// keep their internal activations CNHW (sn = P, sc = N·P): a channel is then
// one contiguous row of N·P values, which is what the GEMMs (with leading
// dimension N·P) and the BatchNorm reductions want.
type layout struct{ sn, sc int }

func nchw(c, p int) layout { return layout{sn: c * p, sc: p} }
func cnhw(n, p int) layout { return layout{sn: p, sc: n * p} }

// im2col writes the column matrix of images n0..n0+nb−1 of x into col
// (k rows, nb·q columns, row-major):
//
//	col[(c·3+kh)·3+kw][i·q + oh·wo + ow] = x[n0+i, c, oh·s+kh−1, ow·s+kw−1]
//
// zero outside the image (padding 1).
func im2col[T Float](g conv, x []T, xl layout, col []T, n0, nb int) {
	j := nb * g.q()
	for c := 0; c < g.c; c++ {
		for kh := 0; kh < 3; kh++ {
			for kw := 0; kw < 3; kw++ {
				row := col[((c*3+kh)*3+kw)*j:][:j]
				for i := 0; i < nb; i++ {
					src := x[(n0+i)*xl.sn+c*xl.sc:][:g.p()]
					dst := row[i*g.q():][:g.q()]
					if g.s == 1 {
						shiftPlane(dst, src, g.h, g.w, kh-1, kw-1)
					} else {
						gatherPlane(dst, src, g, kh-1, kw-1)
					}
				}
			}
		}
	}
}

// shiftBounds returns, for a tap with offsets (dy, dx) ∈ {−1,0,1}² of a
// stride-1 convolution, the flat range [lo, hi) of output pixels
// p = oh·w+ow whose source pixel p+off (off = dy·w+dx) lies in the plane.
// Inside the range, the pixels in column w−1 (dx = 1) or 0 (dx = −1) wrap
// into the neighbouring row and are padding.
func shiftBounds(h, w, dy, dx int) (lo, hi, off int) {
	lo, hi = max(0, -dy)*w, min(h, h-dy)*w
	off = dy*w + dx
	lo = max(lo, -off)
	hi = min(hi, h*w-off)
	if hi < lo {
		hi = lo
	}
	return lo, hi, off
}

// shiftPlane writes one row segment of a stride-1 column matrix: a shifted
// copy of the plane (a memmove) with the padding zeroed.
func shiftPlane[T Float](dst, src []T, h, w, dy, dx int) {
	lo, hi, off := shiftBounds(h, w, dy, dx)
	clear(dst[:lo])
	copy(dst[lo:hi], src[lo+off:hi+off])
	clear(dst[hi:])
	zeroWrapped(dst, w, lo, hi, dx)
}

// zeroWrapped zeroes, inside [lo, hi), the column that a horizontal shift
// dx wrapped into the neighbouring row.
func zeroWrapped[T Float](dst []T, w, lo, hi, dx int) {
	var col int
	switch dx {
	case 1:
		col = w - 1
	case -1:
		col = 0
	default:
		return
	}
	for r := lo / w; r*w < hi; r++ {
		if i := r*w + col; i >= lo && i < hi {
			dst[i] = 0
		}
	}
}

// gatherPlane writes one row segment of a strided column matrix:
// dst[oh·wo+ow] = src[(oh·s+dy)·w + ow·s+dx], zero outside the plane.
func gatherPlane[T Float](dst, src []T, g conv, dy, dx int) {
	for oh := 0; oh < g.ho; oh++ {
		d := dst[oh*g.wo:][:g.wo]
		ih := oh*g.s + dy
		if ih < 0 || ih >= g.h {
			clear(d)
			continue
		}
		s := src[ih*g.w:][:g.w]
		for ow := range d {
			iw := ow*g.s + dx
			if iw >= 0 && iw < g.w {
				d[ow] = s[iw]
			} else {
				d[ow] = 0
			}
		}
	}
}

// col2im is the adjoint of im2col: it adds to dx every column entry at
// the input pixel im2col copied it from. dx is not cleared; dcol is
// scratch (its padding entries may be zeroed in place).
func col2im[T Float](g conv, dcol, dx []T, xl layout, n0, nb int) {
	j := nb * g.q()
	for c := 0; c < g.c; c++ {
		for kh := 0; kh < 3; kh++ {
			for kw := 0; kw < 3; kw++ {
				row := dcol[((c*3+kh)*3+kw)*j:][:j]
				for i := 0; i < nb; i++ {
					src := row[i*g.q():][:g.q()]
					dst := dx[(n0+i)*xl.sn+c*xl.sc:][:g.p()]
					if g.s == 1 {
						lo, hi, off := shiftBounds(g.h, g.w, kh-1, kw-1)
						zeroWrapped(src, g.w, lo, hi, kw-1)
						axpy(dst[lo+off:hi+off], src[lo:hi])
					} else {
						scatterPlane(dst, src, g, kh-1, kw-1)
					}
				}
			}
		}
	}
}

// scatterPlane is the adjoint of gatherPlane: dst[(oh·s+dy)·w + ow·s+dx] +=
// src[oh·wo+ow] for the source pixels inside the plane.
func scatterPlane[T Float](dst, src []T, g conv, dy, dx int) {
	for oh := 0; oh < g.ho; oh++ {
		ih := oh*g.s + dy
		if ih < 0 || ih >= g.h {
			continue
		}
		d := dst[ih*g.w:][:g.w]
		for ow, v := range src[oh*g.wo:][:g.wo] {
			if iw := ow*g.s + dx; iw >= 0 && iw < g.w {
				d[iw] += v
			}
		}
	}
}

// axpy sets dst[i] += src[i] with gonum's assembly axpy (pure Go, no cgo,
// in every build; α = 1 makes each sum exactly dst[i] + src[i]).
func axpy[T Float](dst, src []T) {
	if len(dst) == 0 {
		return
	}
	switch d := any(dst).(type) {
	case []float32:
		gonumblas.Implementation{}.Saxpy(len(d), 1, any(src).([]float32)[:len(d)], 1, d, 1)
	case []float64:
		gonumblas.Implementation{}.Daxpy(len(d), 1, any(src).([]float64)[:len(d)], 1, d, 1)
	}
}

// gemm computes c = α·op(a)·op(b) + β·c (row-major) with gorgonia's BLAS
// (gonum's in a plain build, OpenBLAS with -tags openblas).
func gemm[T Float](ta, tb blas.Transpose, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	bl := G.WhichBLAS()
	switch a := any(a).(type) {
	case []float32:
		bl.Sgemm(ta, tb, m, n, k, float32(alpha), a, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		bl.Dgemm(ta, tb, m, n, k, float64(alpha), a, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}

// convForward computes a = conv(x, w) for the whole batch into a, a CNHW
// buffer (f rows of n·q values). x has layout xl; col is scratch of at
// least k·nb·q elements. When s1 and s2 are not nil, it adds Σa and Σa² of
// every channel to them, chunk by chunk while the chunk is in cache (the
// BatchNorm batch statistics).
func convForward[T Float](g conv, x []T, xl layout, w, a, col []T, s1, s2 []float64) {
	k, q, ld := g.k(), g.q(), g.n*g.q()
	for n0 := 0; n0 < g.n; n0 += g.nb {
		nb := min(g.nb, g.n-n0)
		j := nb * q
		im2col(g, x, xl, col, n0, nb)
		// a[:, n0·q : n0·q+j] (f × j, ld n·q) = w (f × k) · col (k × j)
		gemm(blas.NoTrans, blas.NoTrans, g.f, j, k, 1, w, k, col, j, 0, a[n0*q:], ld)
		if s1 != nil {
			for f := 0; f < g.f; f++ {
				m1, m2 := sums(a[f*ld+n0*q:][:j])
				s1[f] += m1
				s2[f] += m2
			}
		}
	}
}

// convBackward computes the gradients of a = conv(x, w) for the output
// gradient da (CNHW, as convForward writes a): dw is overwritten with
// Σ_chunks da·colᵀ, and when dx is not nil the input gradient
// col2im(wᵀ·da) is added to it (layout xl; dx is not cleared).
func convBackward[T Float](g conv, x []T, xl layout, w, da, dw, dx, col []T) {
	k, q, ld := g.k(), g.q(), g.n*g.q()
	for n0 := 0; n0 < g.n; n0 += g.nb {
		nb := min(g.nb, g.n-n0)
		j := nb * q
		im2col(g, x, xl, col, n0, nb)
		beta := T(1)
		if n0 == 0 {
			beta = 0
		}
		// dw (f × k) += da[:, chunk] (f × j) · colᵀ (j × k)
		gemm(blas.NoTrans, blas.Trans, g.f, k, j, 1, da[n0*q:], ld, col, j, beta, dw, k)
		if dx != nil {
			// dcol (k × j) = wᵀ (k × f) · da[:, chunk] (f × j), reusing col
			gemm(blas.Trans, blas.NoTrans, k, j, g.f, 1, w, k, da[n0*q:], ld, 0, col, j)
			col2im(g, col, dx, xl, n0, nb)
		}
	}
}

// sums returns Σv and Σv² in float64.
func sums[T Float](v []T) (s1, s2 float64) {
	for _, x := range v {
		f := float64(x)
		s1 += f
		s2 += f * f
	}
	return s1, s2
}
