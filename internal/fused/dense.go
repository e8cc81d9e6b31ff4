package fused

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Dense returns x·w + b for float32 matrices x (N,in), w (in,out) and
// b (1,out), followed by a ReLU when relu is set. The result is (N,out).
// It is the MLP and CNN families' fully connected layer.
//
// It computes exactly what this gorgonia graph computes, values and
// gradients, bit for bit:
//
//	h := G.BroadcastAdd(G.Must(G.Mul(x, w)), b, nil, []byte{0})
//	if relu { h = G.Rectify(h) }
//
// The bias is added after the product (same rounding), the ReLU is the
// product with the mask [v ≥ 0], so its derivative is 1 at a
// pre-activation of exactly 0 (PyTorch uses 0 there; the two agree except
// on exact zeros) and NaN or −∞ pre-activations give NaN as in gorgonia,
// and db sums the rows in order in float32 as gorgonia's Sum does.
//
// Why: gorgonia's layer materialises the repeated bias, the product, the
// comparison mask and the product with it, allocates all of them on every
// step, and its backward pass always computes the input gradient, also of
// the first layer whose input is data (a third of that layer's backward
// GEMM work). Dense does
//
//	forward:  y = x·W (one GEMM into a reused buffer);
//	          y = (y + b)·mask, mask = [y + b ≥ 0] (one pass)
//	backward: dpre = dy ⊙ mask;  db = Σ_rows dpre  (one pass)
//	          dW = xᵀ·dpre;      dx = dpre·Wᵀ      (two GEMMs, dx skipped when unused)
//
// Only float32 is supported (a float64 graph keeps the ops above). Shape or
// dtype problems are returned as errors. The values of the returned node
// and of its gradient nodes live in buffers that the node reuses on every
// run: copy a value out before the next run if you keep it.
func Dense(x, w, b *G.Node, relu bool) (*G.Node, error) {
	if err := checkNodes("Dense", 2, tensor.Float32, x, w, b); err != nil {
		return nil, err
	}
	xs, ws, bs := x.Shape(), w.Shape(), b.Shape()
	if xs[0] < 1 || xs[1] < 1 {
		return nil, fmt.Errorf("fused: Dense: x has shape %v, want (N,in) with N, in ≥ 1", xs)
	}
	if ws[0] != xs[1] || ws[1] < 1 {
		return nil, fmt.Errorf("fused: Dense: w has shape %v, want (%d,out) for x %v", ws, xs[1], xs)
	}
	if bs[0] != 1 || bs[1] != ws[1] {
		return nil, fmt.Errorf("fused: Dense: b has shape %v, want (1,%d)", bs, ws[1])
	}
	k := &denseKernel{n: xs[0], in: xs[1], out: ws[1], relu: relu}
	if relu {
		k.mask = make([]float32, k.n*k.out)
		k.dpre = make([]float32, k.n*k.out)
	}
	return apply[float32](k, Train, x, w, b)
}

// denseKernel is the kernel of Dense: x (n,in), w (in,out), y (n,out).
type denseKernel struct {
	n, in, out int
	relu       bool
	mask       []float32 // (n,out): 1 where the pre-activation is ≥ 0, else 0 (relu only)
	dpre       []float32 // (n,out): gradient of the pre-activation (relu only)
}

func (k *denseKernel) name() string {
	if k.relu {
		return "DenseReLU"
	}
	return "Dense"
}
func (k *denseKernel) shapes() [][]int {
	return [][]int{{k.n, k.in}, {k.in, k.out}, {1, k.out}}
}
func (k *denseKernel) outShape() []int { return []int{k.n, k.out} }

// forward computes y = x·w + b, then y = y ⊙ [y ≥ 0] with the mask
// [y ≥ 0] recorded when relu is set. The bias is added after the product,
// in one pass with the ReLU, so every value is rounded as gorgonia rounds
// (x·w) + b; the ReLU is the multiplication by the mask, as in gorgonia's
// Rectify (x ⊙ (x ≥ 0)), which also keeps its NaN behaviour.
func (k *denseKernel) forward(in [][]float32, y []float32) {
	x, w, b := in[0], in[1], in[2][:k.out]
	// y (n×out) = x (n×in) · w (in×out)
	gemm(blas.NoTrans, blas.NoTrans, k.n, k.out, k.in, 1, x, k.in, w, k.out, 0, y, k.out)
	for i := 0; i < k.n; i++ {
		row := y[i*k.out : (i+1)*k.out]
		if k.relu {
			biasRelu(row, b, k.mask[i*k.out:(i+1)*k.out])
		} else {
			axpy(row, b)
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
		var m uint32
		if u <= posInf {
			m = one
		}
		if u == negZero {
			m = one
		}
		f := math.Float32frombits(m)
		row[j], mask[j] = v*f, f
	}
}

// backward computes, with dpre = dy ⊙ mask (relu) or dy,
//
//	db = Σ_rows dpre,   dw = xᵀ·dpre,   dx = dpre·wᵀ
//
// dw and db are overwritten; dx when it is not nil (skipped otherwise).
// The ReLU mask is that of the last forward pass. db sums the rows in
// order in float32, as gorgonia's Sum along axis 0 does.
func (k *denseKernel) backward(in [][]float32, dy []float32, grads [][]float32) {
	x, w := in[0], in[1]
	dx, dw, db := grads[0], grads[1], grads[2][:k.out]
	dpre := dy[:k.n*k.out]
	if k.relu {
		dpre = k.dpre
	}
	for i := 0; i < k.n; i++ {
		d := dpre[i*k.out : (i+1)*k.out]
		if k.relu {
			maskRow(d, dy[i*k.out:(i+1)*k.out], k.mask[i*k.out:(i+1)*k.out])
		}
		if i == 0 {
			copy(db, d)
		} else {
			axpy(db, d)
		}
	}
	// dw (in×out) = xᵀ (in×n) · dpre (n×out)
	gemm(blas.Trans, blas.NoTrans, k.in, k.out, k.n, 1, x, k.in, dpre, k.out, 0, dw, k.out)
	if dx != nil {
		// dx (n×in) = dpre (n×out) · wᵀ (out×in)
		gemm(blas.NoTrans, blas.Trans, k.n, k.in, k.out, 1, dpre, k.out, w, k.out, 0, dx, k.in)
	}
}

// maskRow sets d[j] = g[j]·mask[j].
func maskRow(d, g, mask []float32) {
	g, mask = g[:len(d)], mask[:len(d)]
	for j := range d {
		d[j] = g[j] * mask[j]
	}
}
