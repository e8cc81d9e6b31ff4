package fastdense

import (
	"math"

	"gonum.org/v1/gonum/blas"
	gonumblas "gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"

	"github.com/kdcal/kdcal/internal/opkit"
)

// forward computes y = x·w + b, then y = y ⊙ [y ≥ 0] with the mask
// [y ≥ 0] recorded when z.relu is set. x is (n,in), w (in,out), b (1,out),
// y and mask (n,out).
//
// The bias is added after the product, in one pass with the ReLU, so every
// value is rounded as gorgonia rounds (x·w) + b; the ReLU is the
// multiplication by the mask, as in gorgonia's Rectify (x ⊙ (x ≥ 0)), which
// also keeps its NaN behaviour (NaN and −∞ become NaN, not 0).
func forward(x, w, b, y, mask []float32, z sizes) {
	// y (n×out) = x (n×in) · w (in×out)
	G.WhichBLAS().Sgemm(blas.NoTrans, blas.NoTrans, z.n, z.out, z.in, 1, x, z.in, w, z.out, 0, y, z.out)
	b = b[:z.out]
	for i := 0; i < z.n; i++ {
		row := y[i*z.out : (i+1)*z.out]
		if z.relu {
			biasRelu(row, b, mask[i*z.out:(i+1)*z.out])
		} else {
			addTo(row, b)
		}
	}
}

// biasRelu sets v = row[j] + b[j], mask[j] = [v ≥ 0] and row[j] = v·mask[j].
//
// The comparison is done on the bit pattern u of v, because integer selects
// compile to CMOV while a float compare compiles to a branch that
// mispredicts on about half of the units (5× slower on random data):
// v ≥ 0 ⟺ u ≤ bits(+∞) (+0 to +∞; positive NaNs are above) or v = −0.
func biasRelu(row, b, mask []float32) {
	const posInf, negZero, one = 0x7f800000, 0x80000000, 0x3f800000
	b, mask = b[:len(row)], mask[:len(row)]
	for j, v := range row {
		v += b[j]
		u := math.Float32bits(v)
		var k uint32
		if u <= posInf {
			k = one
		}
		if u == negZero {
			k = one
		}
		m := math.Float32frombits(k)
		row[j], mask[j] = v*m, m
	}
}

// backward computes the gradients of the layer for the output gradient gy:
// with dpre = gy ⊙ mask (relu) or gy,
//
//	db = Σ_rows dpre,   dw = xᵀ·dpre,   dx = dpre·wᵀ
//
// dw and db are overwritten; dx is overwritten when it is not nil (skipped
// otherwise). The ReLU mask is that of the last forward pass. db sums the
// rows in order in float32, as gorgonia's Sum along axis 0 does.
func (s *scratch) backward(x, w, gy, dx, dw, db []float32, z sizes) {
	dpre := gy[:z.n*z.out]
	if z.relu {
		s.dpre = opkit.Grow(s.dpre, z.n*z.out)
		dpre = s.dpre
	}
	db = db[:z.out]
	for i := 0; i < z.n; i++ {
		g := gy[i*z.out : (i+1)*z.out]
		d := dpre[i*z.out : (i+1)*z.out]
		if z.relu {
			maskRow(d, g, s.mask[i*z.out:(i+1)*z.out])
		}
		if i == 0 {
			copy(db, d)
		} else {
			addTo(db, d)
		}
	}
	bl := G.WhichBLAS()
	// dw (in×out) = xᵀ (in×n) · dpre (n×out)
	bl.Sgemm(blas.Trans, blas.NoTrans, z.in, z.out, z.n, 1, x, z.in, dpre, z.out, 0, dw, z.out)
	if dx != nil {
		// dx (n×in) = dpre (n×out) · wᵀ (out×in)
		bl.Sgemm(blas.NoTrans, blas.Trans, z.n, z.in, z.out, 1, dpre, z.out, w, z.out, 0, dx, z.in)
	}
}

// maskRow sets d[j] = g[j]·mask[j].
func maskRow(d, g, mask []float32) {
	g, mask = g[:len(d)], mask[:len(d)]
	for j := range d {
		d[j] = g[j] * mask[j]
	}
}

// addTo sets dst[i] += src[i] with gonum's assembly axpy (pure Go and
// cgo-free in every build, so it is cheap for short rows). α = 1 makes each
// sum exactly dst[i] + src[i].
func addTo(dst, src []float32) {
	if len(dst) > 0 {
		gonumblas.Implementation{}.Saxpy(len(dst), 1, src[:len(dst)], 1, dst, 1)
	}
}
