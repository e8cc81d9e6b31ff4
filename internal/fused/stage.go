package fused

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Stage returns maxpool2×2(relu(conv3×3(x, w) + b)) for NCHW float32
// tensors: x (N,C,H,W), w (F,C,3,3) in OIHW layout, b (1,F,1,1). The
// convolution has stride 1 and padding 1; the pooling has kernel 2, stride 2
// and no padding, so the output is (N,F,⌊H/2⌋,⌊W/2⌋) like
// torch.nn.MaxPool2d(2); H and W must be at least 2 (gorgonia's MaxPool2D
// rejects smaller inputs too). It is the CNN family's layer.
//
// It computes exactly what this gorgonia graph computes, values and
// gradients, up to the summation order of the bias gradient (accumulated
// in float64 here):
//
//	c := G.Conv2d(x, w, tensor.Shape{3, 3}, []int{1, 1}, []int{1, 1}, []int{1, 1})
//	c = G.BroadcastAdd(c, b, nil, []byte{0, 2, 3})
//	y := G.MaxPool2D(G.Rectify(c), tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2})
//
// including gorgonia's tie rules: the pooled maximum is the first in
// row-major order among equal values, and the ReLU derivative is 1 at a
// pre-activation of exactly 0 (Rectify is x·(x ≥ 0); PyTorch uses 0 there,
// and the two agree except on exact zeros).
//
// Why: in gorgonia v0.9.18 such a stage spends most of its time moving
// data (NHWC↔NCHW transposes inside Conv2d, im2col/col2im, the
// materialised bias, pooling) and allocates every intermediate on every
// step (/work/shared/docs/gorgonia-notes.md §8). Stage does the same
// arithmetic with one GEMM per chunk of whole images in each direction:
//
//	forward:  col = im2col(x)             (C·9 × nb·H·W, no transposes)
//	          pre = W·col                 (F × nb·H·W)
//	          y, mask = pool(relu(pre+b)) (one pass; mask = argmax or −1)
//	backward: dPre = scatter(dy, mask);   db = Σ dPre
//	          dW += dPre·im2col(x)ᵀ;      dx = col2im(Wᵀ·dPre)
//
// and skips dx when nothing reads it (x is the data input of the first
// stage). Only float32 is supported (a float64 graph, e.g. for gradient
// checks, keeps the ops above). Shape or dtype problems are returned as
// errors.
//
// The values of the returned node and of its gradient nodes live in buffers
// that the node reuses on every run: copy a value out before the next run
// if you keep it, as gorgonia-notes.md §6 asks for every value.
func Stage(x, w, b *G.Node) (*G.Node, error) {
	if err := checkNodes("Stage", 4, tensor.Float32, x, w, b); err != nil {
		return nil, err
	}
	xs, ws, bs := x.Shape(), w.Shape(), b.Shape()
	if ws[0] < 1 || ws[1] != xs[1] || ws[2] != 3 || ws[3] != 3 {
		return nil, fmt.Errorf("fused: Stage: w has shape %v, want (F,%d,3,3) for x %v", ws, xs[1], xs)
	}
	if bs[0] != 1 || bs[1] != ws[0] || bs[2] != 1 || bs[3] != 1 {
		return nil, fmt.Errorf("fused: Stage: b has shape %v, want (1,%d,1,1)", bs, ws[0])
	}
	if xs[0] < 1 || xs[1] < 1 || xs[2] < 2 || xs[3] < 2 {
		return nil, fmt.Errorf("fused: Stage: x has shape %v, want N, C ≥ 1 and H, W ≥ 2 (2×2 pooling)", xs)
	}
	return apply[float32](newStageKernel(xs[0], xs[1], xs[2], xs[3], ws[0]), Train, x, w, b)
}

// checkNodes checks that every operand of op is present, of dtype dt and
// dims-dimensional, naming the operand (x, w, b in order) in the error.
func checkNodes(op string, dims int, dt tensor.Dtype, nodes ...*G.Node) error {
	for i, n := range nodes {
		name := [...]string{"x", "w", "b"}[i]
		switch {
		case n == nil:
			return fmt.Errorf("fused: %s: %s is nil", op, name)
		case n.Dtype() != dt:
			return fmt.Errorf("fused: %s: %s has dtype %v, want %v", op, name, n.Dtype(), dt)
		case n.Shape().Dims() != dims && dims == 2:
			return fmt.Errorf("fused: %s: %s has shape %v, want a matrix", op, name, n.Shape())
		case n.Shape().Dims() != dims:
			return fmt.Errorf("fused: %s: %s has shape %v, want %d dimensions", op, name, n.Shape(), dims)
		}
	}
	return nil
}

// stageKernel is the kernel of Stage. Its convolution g (stride 1) is cut
// into chunks of whole images (stageChunks), not into the ResNet's chunks:
// the pooling pass reads each chunk's pre-activations while they are in
// cache, and dW sums over the chunks in their order, so the chunking is
// part of the op's rounding.
type stageKernel struct {
	g        conv
	ho, wo   int       // pooled plane
	mask     []int32   // (N,F,Ho,Wo): in-plane index of the pooled pixel, −1 for zero gradient
	col, pre []float32 // chunk buffers: im2col / dCol (K×J) and pre-activation / dPre (F×J)
	dbAcc    []float64
}

// stageChunkBytes bounds the larger of the column matrix (C·9 rows) and the
// pre-activation matrix (F rows) of one chunk of images, so that both stay
// in cache between the im2col pass, the GEMM and the pooling pass. 128 KiB
// (one or two images for the medium CNN) was fastest in
// BenchmarkStageChunk; the whole batch at once was 1.5–2× slower.
var stageChunkBytes = 128 << 10

func newStageKernel(n, c, h, w, f int) *stageKernel {
	g := newConv(n, c, h, w, f, 1)
	per := max(g.k(), g.f) * g.p() * 4
	nb := min(max(stageChunkBytes/max(per, 1), 1), g.n)
	g.chunks = g.chunks[:0]
	for n0 := 0; n0 < n; n0 += nb {
		g.chunks = append(g.chunks, chunk{n0: n0, nb: min(nb, n-n0), r0: 0, r1: g.ho})
	}
	k := &stageKernel{g: g, ho: (h-2)/2 + 1, wo: (w-2)/2 + 1}
	k.mask = make([]int32, n*f*k.ho*k.wo)
	k.col = make([]float32, g.colElems())
	k.pre = make([]float32, f*nb*g.p())
	k.dbAcc = make([]float64, f)
	return k
}

func (k *stageKernel) name() string { return "Stage" }
func (k *stageKernel) shapes() [][]int {
	g := k.g
	return [][]int{{g.n, g.c, g.h, g.w}, {g.f, g.c, 3, 3}, {1, g.f, 1, 1}}
}
func (k *stageKernel) outShape() []int { return []int{k.g.n, k.g.f, k.ho, k.wo} }

// forward computes y = maxpool2×2(relu(conv3×3(x, w) + b)) and the mask.
func (k *stageKernel) forward(in [][]float32, y []float32) {
	x, w, b := in[0], in[1], in[2]
	g := k.g
	for _, ch := range g.chunks {
		_, j := g.cols(ch)
		im2col(g, x, nchw(g.c, g.p()), k.col, ch)
		// pre (F×J) = W (F×K) · col (K×J)
		gemm(blas.NoTrans, blas.NoTrans, g.f, j, g.k(), 1, w, g.k(), k.col, j, 0, k.pre, j)
		k.biasReluPool(b, y, ch)
	}
}

// backward computes the gradients for the pooled gradient dy with the mask
// of the last forward pass: dw and db are overwritten, dx when it is not
// nil (skipped otherwise).
func (k *stageKernel) backward(in [][]float32, dy []float32, grads [][]float32) {
	x, w := in[0], in[1]
	dx, dw, db := grads[0], grads[1], grads[2]
	g := k.g
	xl := nchw(g.c, g.p())
	clear(k.dbAcc)
	if dx != nil {
		clear(dx)
	}
	for ci, ch := range g.chunks {
		_, j := g.cols(ch)
		k.scatterGrad(dy, ch)
		im2col(g, x, xl, k.col, ch)
		beta := float32(1)
		if ci == 0 {
			beta = 0
		}
		// dW (F×K) += dPre (F×J) · colᵀ (J×K)
		gemm(blas.NoTrans, blas.Trans, g.f, g.k(), j, 1, k.pre, j, k.col, j, beta, dw, g.k())
		if dx != nil {
			// dCol (K×J) = Wᵀ (K×F) · dPre (F×J), reusing col
			gemm(blas.Trans, blas.NoTrans, g.k(), j, g.f, 1, w, g.k(), k.pre, j, 0, k.col, j)
			col2im(g, k.col, dx, xl, ch)
		}
	}
	for f, v := range k.dbAcc {
		db[f] = float32(v)
	}
}

// biasReluPool reads the pre-activations of chunk ch (F rows, nb·H·W
// columns), adds the bias, applies ReLU and 2×2 max-pooling with stride 2,
// and writes the pooled values into y (N,F,Ho,Wo) and the backward mask:
// the flat in-plane index h·W+w of the selected pixel, or −1 when its
// gradient is zero.
//
// Semantics match gorgonia's Rectify followed by MaxPool2D exactly: the
// window maximum is the first one in row-major order among equal values,
// Rectify's derivative is 1 at v ≥ 0 (so an all-zero window passes the
// gradient to its first pixel when that pixel's pre-activation is exactly
// 0). H and W are at least 2 (Stage), so every window is complete; an odd
// last row or column is not read.
func (k *stageKernel) biasReluPool(b, y []float32, ch chunk) {
	g := k.g
	p, q, j := g.p(), k.ho*k.wo, ch.nb*g.p()
	for f := 0; f < g.f; f++ {
		for i := 0; i < ch.nb; i++ {
			o := ((ch.n0+i)*g.f + f) * q
			poolPlane(k.pre[f*j+i*p:][:p], b[f], y[o:o+q], k.mask[o:o+q], g.w, k.ho, k.wo)
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
			// then) if its v is ±0, else −1.
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

// scatterGrad builds the pre-activation gradient of chunk ch in k.pre (F
// rows, nb·H·W columns) from the pooled gradient gy (N,F,Ho,Wo) and the
// mask, and adds the bias gradient Σ dPre into k.dbAcc.
func (k *stageKernel) scatterGrad(gy []float32, ch chunk) {
	g := k.g
	p, q, j := g.p(), k.ho*k.wo, ch.nb*g.p()
	for f := 0; f < g.f; f++ {
		var s float64
		for i := 0; i < ch.nb; i++ {
			o := ((ch.n0+i)*g.f + f) * q
			s += scatterPlane(gy[o:o+q], k.mask[o:o+q], k.pre[f*j+i*p:][:p], g.w, g.h, k.ho, k.wo)
		}
		k.dbAcc[f] += s
	}
}

// scatterPlane writes one plane of dPre: every pixel of every window (zero,
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
