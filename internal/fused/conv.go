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
//
// A convolution is computed chunk by chunk: im2col writes the column
// matrix of a chunk of output pixels (9c rows), and one GEMM per direction
// consumes it while it is in cache.
type conv struct {
	n, c, h, w int
	f, s       int
	ho, wo     int
	chunks     []chunk
}

// chunk is a block of output pixel columns: images n0..n0+nb−1, output
// rows r0..r1−1 of each (whole images when nb > 1). Its columns are
// j0 = n0·q + r0·wo … j0 + nb·(r1−r0)·wo − 1 of the n·q output pixels.
type chunk struct{ n0, nb, r0, r1 int }

func newConv(n, c, h, w, f, s int) conv {
	g := conv{n: n, c: c, h: h, w: w, f: f, s: s, ho: (h-1)/s + 1, wo: (w-1)/s + 1}
	g.chunks = g.split()
	return g
}

func (g conv) k() int { return g.c * 9 }   // patch length: rows of the column matrix
func (g conv) p() int { return g.h * g.w } // pixels of an input plane
func (g conv) q() int { return g.ho * g.wo }

// chunkElems bounds the column matrix of one chunk (k rows × its columns)
// so that it stays in the L2 cache (512 KiB per core on the Zen 3 host)
// between im2col and the GEMM that reads it. BenchmarkChunk (resnet20-w16,
// load ~10 on the 2-core host) put 128Ki–256Ki elements within noise of
// each other and 5–20% ahead of 32Ki and of whole-batch chunks.
var chunkElems = 128 << 10

// split cuts the output into chunks of at most chunkElems column-matrix
// elements: several whole images when one image fits, else bands of rows
// of one image (at least one row).
func (g conv) split() []chunk {
	var out []chunk
	per := g.k() * g.q()
	if per <= chunkElems {
		nb := min(max(chunkElems/max(per, 1), 1), g.n)
		for n0 := 0; n0 < g.n; n0 += nb {
			out = append(out, chunk{n0: n0, nb: min(nb, g.n-n0), r0: 0, r1: g.ho})
		}
		return out
	}
	rows := max(chunkElems/(g.k()*g.wo), 1)
	bands := (g.ho + rows - 1) / rows
	rows = (g.ho + bands - 1) / bands // even bands
	for n0 := 0; n0 < g.n; n0++ {
		for r0 := 0; r0 < g.ho; r0 += rows {
			out = append(out, chunk{n0: n0, nb: 1, r0: r0, r1: min(r0+rows, g.ho)})
		}
	}
	return out
}

// cols returns the first column and the number of columns of a chunk.
func (g conv) cols(ch chunk) (j0, j int) {
	return ch.n0*g.q() + ch.r0*g.wo, ch.nb * (ch.r1 - ch.r0) * g.wo
}

// colElems returns the size of the largest chunk's column matrix.
func (g conv) colElems() int {
	n := 0
	for _, ch := range g.chunks {
		_, j := g.cols(ch)
		n = max(n, g.k()*j)
	}
	return n
}

// layout says where the plane of image i, channel c starts in a 4-d
// activation: at i·sn + c·sc. Planes (h·w pixels, row-major) are always
// contiguous. The network's input is NCHW (sn = C·P, sc = P); every
// other activation is CNHW (sn = P, sc = N·P).
type layout struct{ sn, sc int }

func nchw(c, p int) layout { return layout{sn: c * p, sc: p} }
func cnhw(n, p int) layout { return layout{sn: p, sc: n * p} }

// im2col writes the column matrix of chunk ch of x into col (k rows and
// the chunk's j columns, row-major): with i the image and (oh, ow) the
// output pixel of a column,
//
//	col[(c·3+kh)·3+kw][col] = x[i, c, oh·s+kh−1, ow·s+kw−1]
//
// zero outside the image (padding 1).
func im2col[T Float](g conv, x []T, xl layout, col []T, ch chunk) {
	_, j := g.cols(ch)
	bw := (ch.r1 - ch.r0) * g.wo // columns per image
	for c := 0; c < g.c; c++ {
		for kh := 0; kh < 3; kh++ {
			for kw := 0; kw < 3; kw++ {
				row := col[((c*3+kh)*3+kw)*j:][:j]
				for i := 0; i < ch.nb; i++ {
					src := x[(ch.n0+i)*xl.sn+c*xl.sc:][:g.p()]
					dst := row[i*bw:][:bw]
					if g.s == 1 {
						shiftBand(dst, src, g.h, g.w, kh-1, kw-1, ch.r0, ch.r1)
					} else {
						gatherBand(dst, src, g, kh-1, kw-1, ch.r0, ch.r1)
					}
				}
			}
		}
	}
}

// shiftBounds returns, for a tap with offsets (dy, dx) ∈ {−1,0,1}² of a
// stride-1 convolution, the flat range [lo, hi) of output pixels
// p = oh·w+ow whose source pixel p+off (off = dy·w+dx) lies in the plane,
// restricted to the output rows r0..r1−1 (the range may be empty, hi = lo,
// and then lo+off need not be an index). Inside the range, the pixels in
// column w−1 (dx = 1) or 0 (dx = −1) wrap into the neighbouring row and are
// padding.
func shiftBounds(h, w, dy, dx, r0, r1 int) (lo, hi, off int) {
	lo, hi = max(0, -dy, r0)*w, min(h, h-dy, r1)*w
	off = dy*w + dx
	lo = min(max(lo, -off), r1*w)
	hi = max(min(hi, h*w-off), lo)
	return lo, hi, off
}

// shiftBand writes one image's band of a stride-1 column-matrix row: a
// shifted copy of the plane's rows r0..r1−1 (a memmove) with the padding
// zeroed. dst[i] is output pixel r0·w + i.
func shiftBand[T Float](dst, src []T, h, w, dy, dx, r0, r1 int) {
	b0 := r0 * w
	lo, hi, off := shiftBounds(h, w, dy, dx, r0, r1)
	clear(dst[:lo-b0])
	clear(dst[hi-b0:])
	if hi > lo {
		copy(dst[lo-b0:hi-b0], src[lo+off:hi+off])
		zeroWrapped(dst[lo-b0:hi-b0], w, lo, dx)
	}
}

// zeroWrapped zeroes the entries of d (output pixels lo, lo+1, …) in the
// column that a horizontal shift dx wrapped into the neighbouring row.
func zeroWrapped[T Float](d []T, w, lo, dx int) {
	var col int
	switch dx {
	case 1:
		col = w - 1
	case -1:
		col = 0
	default:
		return
	}
	i := (col - lo%w + w) % w // first index in that column
	for ; i < len(d); i += w {
		d[i] = 0
	}
}

// gatherBand writes one image's band of a strided column-matrix row:
// dst[(oh−r0)·wo+ow] = src[(oh·s+dy)·w + ow·s+dx], zero outside the plane.
func gatherBand[T Float](dst, src []T, g conv, dy, dx, r0, r1 int) {
	// Output columns whose source column ow·s+dx lies in the plane.
	owLo := 0
	if dx < 0 {
		owLo = (-dx + g.s - 1) / g.s
	}
	owHi := 0
	if last := g.w - 1 - dx; last >= 0 {
		owHi = min(g.wo, last/g.s+1)
	}
	for oh := r0; oh < r1; oh++ {
		d := dst[(oh-r0)*g.wo:][:g.wo]
		ih := oh*g.s + dy
		if ih < 0 || ih >= g.h || owHi <= owLo {
			clear(d)
			continue
		}
		s := src[ih*g.w:][:g.w]
		clear(d[:owLo])
		for ow := owLo; ow < owHi; ow++ {
			d[ow] = s[ow*g.s+dx]
		}
		clear(d[owHi:])
	}
}

// col2im is the adjoint of im2col: it adds to dx every entry of the chunk's
// column matrix at the input pixel im2col copied it from. dx is not
// cleared; dcol is scratch (its padding entries may be zeroed in place).
func col2im[T Float](g conv, dcol, dx []T, xl layout, ch chunk) {
	_, j := g.cols(ch)
	bw := (ch.r1 - ch.r0) * g.wo
	for c := 0; c < g.c; c++ {
		for kh := 0; kh < 3; kh++ {
			for kw := 0; kw < 3; kw++ {
				row := dcol[((c*3+kh)*3+kw)*j:][:j]
				for i := 0; i < ch.nb; i++ {
					src := row[i*bw:][:bw]
					dst := dx[(ch.n0+i)*xl.sn+c*xl.sc:][:g.p()]
					if g.s == 1 {
						b0 := ch.r0 * g.w
						lo, hi, off := shiftBounds(g.h, g.w, kh-1, kw-1, ch.r0, ch.r1)
						if hi > lo {
							zeroWrapped(src[lo-b0:hi-b0], g.w, lo, kw-1)
							axpy(dst[lo+off:hi+off], src[lo-b0:hi-b0])
						}
					} else {
						scatterBand(dst, src, g, kh-1, kw-1, ch.r0, ch.r1)
					}
				}
			}
		}
	}
}

// scatterBand is the adjoint of gatherBand: dst[(oh·s+dy)·w + ow·s+dx] +=
// src[(oh−r0)·wo+ow] for the source pixels inside the plane.
func scatterBand[T Float](dst, src []T, g conv, dy, dx, r0, r1 int) {
	for oh := r0; oh < r1; oh++ {
		ih := oh*g.s + dy
		if ih < 0 || ih >= g.h {
			continue
		}
		d := dst[ih*g.w:][:g.w]
		for ow, v := range src[(oh-r0)*g.wo:][:g.wo] {
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
// least colElems() elements. When s1 and s2 are not nil, it adds Σa and Σa²
// of every channel to them, chunk by chunk while the chunk is in cache (the
// BatchNorm batch statistics).
func convForward[T Float](g conv, x []T, xl layout, w, a, col []T, s1, s2 []float64) {
	k, ld := g.k(), g.n*g.q()
	for _, ch := range g.chunks {
		j0, j := g.cols(ch)
		im2col(g, x, xl, col, ch)
		// a[:, j0 : j0+j] (f × j, ld n·q) = w (f × k) · col (k × j)
		gemm(blas.NoTrans, blas.NoTrans, g.f, j, k, 1, w, k, col, j, 0, a[j0:], ld)
		if s1 != nil {
			for f := 0; f < g.f; f++ {
				m1, m2 := sums(a[f*ld+j0:][:j])
				s1[f] += m1
				s2[f] += m2
			}
		}
	}
}

// transposed returns the geometry of the convolution that computes the
// input gradient of a stride-1 convolution g: its input is the output
// gradient (f channels of the same plane) and its outputs the c input
// channels, with the kernel flipped (flipKernel).
func (g conv) transposed() conv { return newConv(g.n, g.f, g.h, g.w, g.c, 1) }

// flipKernel writes wt (c × 9f) with wt[c][(f·3+kh)·3+kw] = w[f][c][2−kh][2−kw]:
// for stride 1 and padding 1, dx = conv(da, wt) (the adjoint of a
// convolution is the convolution with the flipped, transposed kernel).
func flipKernel[T Float](w, wt []T, f, c int) {
	for o := 0; o < f; o++ {
		for i := 0; i < c; i++ {
			src := w[(o*c+i)*9:][:9]
			dst := wt[(i*f+o)*9:][:9]
			for t := range 9 {
				dst[t] = src[8-t]
			}
		}
	}
}

// convBackward computes the gradients of a = conv(x, w) for the output
// gradient da (CNHW, as convForward writes a): dw is overwritten with
// Σ_chunks da·colᵀ. When dx is not nil, the input gradient is added to dx
// (add) or overwrites it. For a stride-1 convolution of a CNHW input it is
// the convolution of da with the flipped kernel, one GEMM with inner
// dimension 9f per chunk; otherwise col2im(wᵀ·da), whose GEMM has inner
// dimension f (slower for small f, but it handles strides and layouts).
func convBackward[T Float](g conv, x []T, xl layout, w, da, dw, dx []T, add bool, ws *workspace[T]) {
	k, ld := g.k(), g.n*g.q()
	direct := dx != nil && g.s == 1 && xl == cnhw(g.n, g.p())
	col := ws.colFor(g)
	if direct {
		col = ws.colFor(g, g.transposed())
	}
	if dx != nil && !direct && !add {
		clear(dx)
	}
	for ci, ch := range g.chunks {
		j0, j := g.cols(ch)
		im2col(g, x, xl, col, ch)
		beta := T(1)
		if ci == 0 {
			beta = 0
		}
		// dw (f × k) += da[:, chunk] (f × j) · colᵀ (j × k)
		gemm(blas.NoTrans, blas.Trans, g.f, k, j, 1, da[j0:], ld, col, j, beta, dw, k)
		if dx != nil && !direct {
			// dcol (k × j) = wᵀ (k × f) · da[:, chunk] (f × j), reusing col
			gemm(blas.Trans, blas.NoTrans, k, j, g.f, 1, w, k, da[j0:], ld, 0, col, j)
			col2im(g, col, dx, xl, ch)
		}
	}
	if !direct {
		return
	}
	t := g.transposed()
	ws.wt = grow(ws.wt, g.c*t.k())
	flipKernel(w, ws.wt, g.f, g.c)
	beta := T(0)
	if add {
		beta = 1
	}
	for _, ch := range t.chunks {
		j0, j := t.cols(ch)
		im2col(t, da, cnhw(t.n, t.p()), col, ch)
		// dx[:, chunk] (c × j, ld n·p) (+)= wt (c × 9f) · col(da) (9f × j)
		gemm(blas.NoTrans, blas.NoTrans, g.c, j, t.k(), 1, ws.wt, t.k(), col, j, beta, dx[j0:], ld)
	}
}
