package fastconv

import (
	"math"

	"gonum.org/v1/gonum/blas"
	gonumblas "gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
)

// geom holds the sizes of one stage: x (N,C,H,W), w (F,C,3,3), output
// (N,F,Ho,Wo) with Ho = (H-2)/2+1 and Wo = (W-2)/2+1 (gorgonia's MaxPool2D
// formula with kernel 2, stride 2, no padding; floor(H/2) for H ≥ 2).
type geom struct {
	n, c, h, w, f int
	ho, wo        int
	nb            int // images per chunk (see chunkImages)
}

func newGeom(n, c, h, w, f int) geom {
	g := geom{n: n, c: c, h: h, w: w, f: f, ho: (h-2)/2 + 1, wo: (w-2)/2 + 1}
	g.nb = chunkImages(g)
	return g
}

// k is the patch length C·3·3 (rows of the column matrix).
func (g geom) k() int { return g.c * 9 }

// p is the number of pixels of one input plane.
func (g geom) p() int { return g.h * g.w }

// q is the number of pixels of one pooled plane.
func (g geom) q() int { return g.ho * g.wo }

// chunkBytes bounds the larger of the column matrix (C·9 rows) and the
// pre-activation matrix (F rows) of one chunk of images, so that both stay in
// cache between the im2col pass, the GEMM and the pooling pass. 128 KiB (one
// or two images for the medium CNN) was fastest in BenchmarkStageChunk;
// the whole batch at once was 1.5–2× slower.
var chunkBytes = 128 << 10

// chunkImages returns how many images are processed per chunk.
func chunkImages(g geom) int {
	per := max(g.k(), g.f) * g.p() * 4
	nb := chunkBytes / max(per, 1)
	return min(max(nb, 1), g.n)
}

// shiftBounds returns, for one 3×3 tap with offsets (dy, dx) ∈ {-1,0,1}², the
// flat range [lo, hi) of output pixels p = h·W+w whose source pixel
// p+off (off = dy·W+dx) lies in the plane. Inside the range, the pixels
// in column w = W-1 (dx = 1) or w = 0 (dx = -1) wrap into the neighbouring
// row and must be treated as padding by the caller.
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

// im2col writes the column matrix of nb images x (nb,C,H,W) into col
// (C·9 rows, nb·H·W columns): col[(c·3+kh)·3+kw][i·H·W + h·W + w] =
// x[i, c, h+kh-1, w+kw-1], zero outside the image (padding 1). Each row is
// a shifted copy of an image plane, so the pass is a sequence of memmoves.
func im2col(x, col []float32, g geom, nb int) {
	p := g.p()
	j := nb * p
	for c := 0; c < g.c; c++ {
		for kh := 0; kh < 3; kh++ {
			for kw := 0; kw < 3; kw++ {
				row := col[((c*3+kh)*3+kw)*j:][:j]
				lo, hi, off := shiftBounds(g.h, g.w, kh-1, kw-1)
				for i := 0; i < nb; i++ {
					src := x[(i*g.c+c)*p:][:p]
					dst := row[i*p:][:p]
					clear(dst[:lo])
					copy(dst[lo:hi], src[lo+off:hi+off])
					clear(dst[hi:])
					zeroWrapped(dst, g.h, g.w, lo, hi, kw-1)
				}
			}
		}
	}
}

// zeroWrapped zeroes, inside [lo, hi), the column that a horizontal shift dx
// wrapped into the neighbouring row.
func zeroWrapped(dst []float32, h, w, lo, hi, dx int) {
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

// col2im is the adjoint of im2col: dx[i,c,h,w] = Σ over taps of the column
// entries that im2col copied from (h,w). dx (nb,C,H,W) is overwritten. dcol
// is scratch: its wrapped (padding) entries are zeroed in place.
func col2im(dcol, dx []float32, g geom, nb int) {
	p := g.p()
	j := nb * p
	clear(dx[:nb*g.c*p])
	for c := 0; c < g.c; c++ {
		for kh := 0; kh < 3; kh++ {
			for kw := 0; kw < 3; kw++ {
				row := dcol[((c*3+kh)*3+kw)*j:][:j]
				lo, hi, off := shiftBounds(g.h, g.w, kh-1, kw-1)
				for i := 0; i < nb; i++ {
					src := row[i*p:][:p]
					zeroWrapped(src, g.h, g.w, lo, hi, kw-1)
					addTo(dx[(i*g.c+c)*p+lo+off:][:hi-lo], src[lo:hi])
				}
			}
		}
	}
}

// addTo sets dst[i] += src[i] with gonum's assembly axpy (pure Go and
// cgo-free in every build, so it is cheap for the short rows of col2im).
func addTo(dst, src []float32) {
	if len(dst) > 0 {
		gonumblas.Implementation{}.Saxpy(len(dst), 1, src[:len(dst)], 1, dst, 1)
	}
}

// biasReluPool reads the pre-activation chunk pre (F rows, nb·H·W columns)
// of images n0..n0+nb-1, adds the bias, applies ReLU and 2×2 max-pooling
// with stride 2, and writes the pooled values into y (N,F,Ho,Wo) and the
// backward mask: the flat in-plane index h·W+w of the selected pixel, or -1
// when its gradient is zero.
//
// Semantics match gorgonia's Rectify followed by MaxPool2D exactly: the
// window maximum is the first one in row-major order among equal values,
// Rectify's derivative is 1 at v ≥ 0 (so an all-zero window passes the
// gradient to its first pixel when that pixel's pre-activation is exactly
// 0). H and W are at least 2 (checkStage), so every window is complete;
// an odd last row or column is not read.
func biasReluPool(pre, b, y []float32, mask []int32, g geom, n0, nb int) {
	p, q, j := g.p(), g.q(), nb*g.p()
	for f := 0; f < g.f; f++ {
		bf := b[f]
		for i := 0; i < nb; i++ {
			plane := pre[f*j+i*p:][:p]
			o := ((n0+i)*g.f + f) * q
			yp, mp := y[o:o+q], mask[o:o+q]
			poolPlane(plane, bf, yp, mp, g.w, g.ho, g.wo)
		}
	}
}

// poolPlane pools one plane (all 2×2 windows lie inside it). It finds the
// first maximum of the pre-activations v (ReLU is monotone, so it is also the
// first maximum of relu(v) when that is positive) with comparisons the
// compiler turns into conditional moves: on random data the branches of a
// compare-and-branch loop mispredict about once per window. When the maximum
// is ≤ 0, every relu(v) is 0 and gorgonia picks the window's first pixel,
// whose gradient passes only when its v is exactly 0 (Rectify' = 1 at 0).
func poolPlane(plane []float32, bf float32, yp []float32, mp []int32, w, ho, wo int) {
	for ph := 0; ph < ho; ph++ {
		r0 := int32(2 * ph * w)
		r1 := r0 + int32(w)
		ys, ms := yp[ph*wo:][:wo], mp[ph*wo:][:wo]
		top, bot := plane[r0:int(r0)+2*wo], plane[r1:int(r1)+2*wo]
		for pw := range wo {
			t := top[2*pw : 2*pw+2 : 2*pw+2]
			u := bot[2*pw : 2*pw+2 : 2*pw+2]
			v0, v1, v2, v3 := t[0]+bf, t[1]+bf, u[0]+bf, u[1]+bf
			// Float selects compile to branches (which mispredict on random
			// data) and the max builtin to a long ±0/NaN-safe sequence, but
			// integer selects compile to CMOV: carry each candidate maximum
			// as its bit pattern next to its index.
			b0, b1 := math.Float32bits(v0), math.Float32bits(v1)
			b2, b3 := math.Float32bits(v2), math.Float32bits(v3)
			i0 := r0 + int32(2*pw)
			tb, it := b0, i0
			if v1 > v0 {
				tb, it = b1, i0+1
			}
			i2 := r1 + int32(2*pw)
			bb, ib := b2, i2
			if v3 > v2 {
				bb, ib = b3, i2+1
			}
			if math.Float32frombits(bb) > math.Float32frombits(tb) {
				tb, it = bb, ib
			}
			// int32(bits) > 0 ⟺ the float is > 0 (sign bit clear, not +0).
			// Mask: it when the max is > 0, else the first pixel (it = i0
			// then) if its v is ±0, else -1.
			m := it
			if b0&0x7fffffff != 0 {
				m = -1
			}
			if int32(tb) > 0 {
				m = it
			}
			if int32(tb) <= 0 {
				tb = 0 // relu
			}
			ys[pw], ms[pw] = math.Float32frombits(tb), m
		}
	}
}

// scatterGrad builds the pre-activation gradient chunk dpre (F rows, nb·H·W
// columns) from the pooled gradient gy (N,F,Ho,Wo) and the mask, and adds
// the bias gradient Σ dpre into db.
func scatterGrad(gy []float32, mask []int32, dpre []float32, db []float64, g geom, n0, nb int) {
	p, q, j := g.p(), g.q(), nb*g.p()
	for f := 0; f < g.f; f++ {
		var s float64
		for i := 0; i < nb; i++ {
			o := ((n0+i)*g.f + f) * q
			s += scatterPlane(gy[o:o+q], mask[o:o+q], dpre[f*j+i*p:][:p], g.w, g.h, g.ho, g.wo)
		}
		db[f] += s
	}
}

// scatterPlane writes one plane of dpre: every pixel of every window (zero,
// or the pooled gradient at the mask index) and the odd last row and column,
// which no window covers, so the plane needs no separate clearing. It returns
// the sum of the plane. Selects are on integers (CMOV) as in poolPlane.
func scatterPlane(gp []float32, mp []int32, plane []float32, w, h, ho, wo int) float64 {
	var s float64
	for ph := 0; ph < ho; ph++ {
		r0 := 2 * ph * w
		top, bot := plane[r0:r0+2*wo], plane[r0+w:r0+w+2*wo]
		gs, ms := gp[ph*wo:][:wo], mp[ph*wo:][:wo]
		for pw := range wo {
			t := top[2*pw : 2*pw+2 : 2*pw+2]
			u := bot[2*pw : 2*pw+2 : 2*pw+2]
			t[0], t[1], u[0], u[1] = 0, 0, 0, 0
			m, gb, base := int(ms[pw]), math.Float32bits(gs[pw]), r0+2*pw
			if m < 0 {
				gb = 0
			}
			if m < 0 {
				m = base // write the zero to a pixel of the window
			}
			v := math.Float32frombits(gb)
			plane[m] = v
			s += float64(v)
		}
		if w%2 == 1 {
			plane[r0+w-1], plane[r0+2*w-1] = 0, 0
		}
	}
	if h%2 == 1 {
		clear(plane[(h-1)*w : h*w])
	}
	return s
}

// forward computes y = maxpool2×2(relu(conv3×3(x, w) + b)) and the mask.
func (s *scratch) forward(x, w, b, y []float32, g geom) {
	bl := G.WhichBLAS()
	k, p := g.k(), g.p()
	for n0 := 0; n0 < g.n; n0 += g.nb {
		nb := min(g.nb, g.n-n0)
		j := nb * p
		im2col(x[n0*g.c*p:], s.col, g, nb)
		// pre (F×J) = W (F×K) · col (K×J)
		bl.Sgemm(blas.NoTrans, blas.NoTrans, g.f, j, k, 1, w, k, s.col, j, 0, s.pre, j)
		biasReluPool(s.pre, b, y, s.mask, g, n0, nb)
	}
}

// backward computes the gradients of the stage for the pooled gradient gy,
// using the mask of the last forward pass: dw and db are overwritten, dx is
// overwritten when it is not nil (skipped otherwise).
func (s *scratch) backward(x, w, gy, dx, dw, db []float32, g geom) {
	bl := G.WhichBLAS()
	k, p := g.k(), g.p()
	dbAcc := s.dbAcc[:g.f]
	clear(dbAcc)
	for n0 := 0; n0 < g.n; n0 += g.nb {
		nb := min(g.nb, g.n-n0)
		j := nb * p
		scatterGrad(gy, s.mask, s.pre, dbAcc, g, n0, nb)
		im2col(x[n0*g.c*p:], s.col, g, nb)
		beta := float32(1)
		if n0 == 0 {
			beta = 0
		}
		// dW (F×K) += dPre (F×J) · colᵀ (J×K)
		bl.Sgemm(blas.NoTrans, blas.Trans, g.f, k, j, 1, s.pre, j, s.col, j, beta, dw, k)
		if dx != nil {
			// dCol (K×J) = Wᵀ (K×F) · dPre (F×J); reuse col as dCol
			bl.Sgemm(blas.Trans, blas.NoTrans, k, j, g.f, 1, w, k, s.pre, j, 0, s.col, j)
			col2im(s.col, dx[n0*g.c*p:], g, nb)
		}
	}
	for f, v := range dbAcc {
		db[f] = float32(v)
	}
}
