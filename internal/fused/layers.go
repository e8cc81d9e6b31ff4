package fused

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
)

// Activation layout. The network's input is NCHW (N,C,H,W), as the data
// is. Every activation after the stem is CNHW, a tensor of shape
// (C,N,H,W): a channel is then one contiguous row of N·H·W values, which is
// what the BatchNorm reductions, the elementwise passes and the GEMMs (with
// leading dimension N·H·W) want, and no layer transposes. These tensors
// only flow between the fused ops of one network; the head returns the
// logits (N,K).

// workspace holds the scratch buffers that the ops of one graph share:
// the ops of a graph run one after another (gorgonia's rule: one graph,
// one goroutine), and none keeps scratch data from one op to the next.
type workspace[T Float] struct {
	col  []T // column matrix of one chunk (im2col, dcol)
	a, b []T // activation-sized temporaries (CNHW)
	wt   []T // a flipped, transposed kernel (flipKernel)
}

// get returns *buf with n elements (its contents are scratch).
func (ws *workspace[T]) get(buf *[]T, n int) []T {
	*buf = grow(*buf, n)
	return *buf
}

// colFor returns the column-matrix scratch for the convolutions cs.
func (ws *workspace[T]) colFor(cs ...conv) []T {
	n := 0
	for _, g := range cs {
		n = max(n, g.colElems())
	}
	return ws.get(&ws.col, n)
}

// stemKernel is conv3×3(stride 1, pad 1, no bias) → BatchNorm → ReLU,
// torch's relu(bn1(conv1(x))) at the start of the CIFAR ResNet. Operands:
// x (N,C,H,W) NCHW, conv weight (F,C,3,3), BN weight γ (F), BN bias β (F).
// Output (F,N,H,W), CNHW.
type stemKernel[T Float] struct {
	cv      conv
	mode    Mode
	bn      *batchNorm[T]
	ws      *workspace[T]
	xh      []T    // x̂ of the last training forward (CNHW)
	y       []T    // the last output (the ReLU gate of the backward pass)
	tracked *int64 // num_batches_tracked of every BN layer: counted here, once per training forward
}

func (k *stemKernel[T]) name() string { return "Stem" }
func (k *stemKernel[T]) shapes() [][]int {
	g := k.cv
	return [][]int{{g.n, g.c, g.h, g.w}, {g.f, g.c, 3, 3}, {g.f}, {g.f}}
}
func (k *stemKernel[T]) outShape() []int { return []int{k.cv.f, k.cv.n, k.cv.ho, k.cv.wo} }

func (k *stemKernel[T]) forward(in [][]T, y []T) {
	x, w, gamma, beta := in[0], in[1], in[2], in[3]
	g, ws := k.cv, k.ws
	m := g.n * g.q()
	col := ws.colFor(g)
	xl := nchw(g.c, g.p())
	k.y = y
	if k.mode == Eval {
		a := ws.get(&ws.a, g.f*m)
		convForward(g, x, xl, w, a, col, nil, nil)
		k.bn.evalCoefficients(gamma, beta)
		for f := 0; f < g.f; f++ {
			evalAct(a[f*m:][:m], y[f*m:][:m], nil, k.bn.alpha[f], k.bn.betaShift[f])
		}
		return
	}
	k.xh = grow(k.xh, g.f*m)
	k.bn.resetSums()
	convForward(g, x, xl, w, k.xh, col, k.bn.s1, k.bn.s2)
	k.bn.batchStats()
	*k.tracked++
	for f := 0; f < g.f; f++ {
		normAct(k.xh[f*m:][:m], y[f*m:][:m], nil, k.bn.mean[f], k.bn.invstd[f], gamma[f], beta[f])
	}
}

func (k *stemKernel[T]) backward(in [][]T, dy []T, grads [][]T) {
	x, w, gamma := in[0], in[1], in[2]
	g, ws := k.cv, k.ws
	m := g.n * g.q()
	dz := ws.get(&ws.a, g.f*m)
	for f := 0; f < g.f; f++ {
		r := dz[f*m:][:m]
		sd, sdx := gateSums(r, dy[f*m:][:m], k.y[f*m:][:m], k.xh[f*m:][:m])
		k.bn.backwardRow(f, r, k.xh[f*m:][:m], sd, sdx, gamma, grads[2], grads[3])
	}
	convBackward(g, x, nchw(g.c, g.p()), w, dz, grads[1], grads[0], false, ws)
}

// blockKernel is the BasicBlock of He et al. 2016 §4.2 with option-A
// shortcut, torch's
//
//	out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
//
// conv1 is 3×3 with stride s (1 or 2), conv2 3×3 with stride 1, both with
// padding 1 and no bias. The shortcut is the identity when s = 1 and the
// channel count is unchanged; otherwise it takes every s-th pixel,
// x[:, :, ::s, ::s], and pads zero channels, lo before and F−C−lo after
// (F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, F//4, F//4)) for F = 2C).
// Operands: x (C,N,H,W) CNHW, conv1 weight (F,C,3,3), bn1 γ, β (F), conv2
// weight (F,F,3,3), bn2 γ, β (F). Output (F,N,Ho,Wo), CNHW.
type blockKernel[T Float] struct {
	c1, c2       conv
	lo           int // zero channels before the input's in the shortcut
	mode         Mode
	bn1, bn2     *batchNorm[T]
	ws           *workspace[T]
	xh1, h1, xh2 []T // x̂1, relu(bn1(·)) and x̂2 of the last training forward (CNHW)
	y            []T // the last output (the ReLU gate of the backward pass)
	sc           []T // the subsampled shortcut of one channel (N·Ho·Wo)
	sd, sdx      []float64
}

func newBlockKernel[T Float](n, c, h, w, f, s int, mode Mode, bn1, bn2 *batchNorm[T], ws *workspace[T]) (*blockKernel[T], error) {
	if s == 1 && c != f {
		return nil, fmt.Errorf("fused: a stride-1 block must keep its %d channels (got %d outputs)", c, f)
	}
	if f < c {
		return nil, fmt.Errorf("fused: option-A shortcut cannot drop channels (%d → %d)", c, f)
	}
	c1 := newConv(n, c, h, w, f, s)
	k := &blockKernel[T]{c1: c1, c2: newConv(n, f, c1.ho, c1.wo, f, 1), lo: (f - c) / 2, mode: mode,
		bn1: bn1, bn2: bn2, ws: ws}
	if s != 1 {
		k.sc = make([]T, n*c1.q())
	}
	k.sd, k.sdx = make([]float64, f), make([]float64, f)
	return k, nil
}

func (k *blockKernel[T]) name() string { return "Block" }
func (k *blockKernel[T]) shapes() [][]int {
	g, f := k.c1, k.c1.f
	return [][]int{{g.c, g.n, g.h, g.w}, {f, g.c, 3, 3}, {f}, {f}, {f, f, 3, 3}, {f}, {f}}
}
func (k *blockKernel[T]) outShape() []int { return []int{k.c1.f, k.c1.n, k.c1.ho, k.c1.wo} }

// shortcut returns the shortcut's output channel f (N·Ho·Wo values), or
// nil for a zero channel.
func (k *blockKernel[T]) shortcut(x []T, f int) []T {
	g := k.c1
	c := f - k.lo
	if c < 0 || c >= g.c {
		return nil
	}
	src := x[c*g.n*g.p():][:g.n*g.p()]
	if g.s == 1 {
		return src
	}
	for i := 0; i < g.n; i++ {
		plane := src[i*g.p():]
		for oh := 0; oh < g.ho; oh++ {
			row := plane[oh*g.s*g.w:]
			d := k.sc[(i*g.ho+oh)*g.wo:][:g.wo]
			for ow := range d {
				d[ow] = row[ow*g.s]
			}
		}
	}
	return k.sc
}

// shortcutBackward sets dx to the shortcut's share of the input gradient
// (the adjoint of shortcut) from dz, the gradient of the block's
// pre-activation sum.
func (k *blockKernel[T]) shortcutBackward(dx, dz []T) {
	g := k.c1
	m := g.n * g.q()
	if g.s == 1 {
		copy(dx, dz) // lo = 0, same channels and planes
		return
	}
	clear(dx)
	for c := 0; c < g.c; c++ {
		src := dz[(c+k.lo)*m:][:m]
		for i := 0; i < g.n; i++ {
			plane := dx[(c*g.n+i)*g.p():]
			for oh := 0; oh < g.ho; oh++ {
				row := plane[oh*g.s*g.w:]
				for ow, v := range src[(i*g.ho+oh)*g.wo:][:g.wo] {
					row[ow*g.s] = v
				}
			}
		}
	}
}

func (k *blockKernel[T]) forward(in [][]T, y []T) {
	x, w1, g1, b1, w2, g2, b2 := in[0], in[1], in[2], in[3], in[4], in[5], in[6]
	c1, c2, ws := k.c1, k.c2, k.ws
	f, n, q := c1.f, c1.n, c1.q()
	m := n * q
	col := ws.colFor(c1, c2)
	xl := cnhw(n, c1.p())
	k.y = y
	if k.mode == Eval {
		a, b := ws.get(&ws.a, f*m), ws.get(&ws.b, f*m)
		convForward(c1, x, xl, w1, a, col, nil, nil)
		k.bn1.evalCoefficients(g1, b1)
		for c := 0; c < f; c++ {
			evalAct(a[c*m:][:m], a[c*m:][:m], nil, k.bn1.alpha[c], k.bn1.betaShift[c])
		}
		convForward(c2, a, cnhw(n, q), w2, b, col, nil, nil)
		k.bn2.evalCoefficients(g2, b2)
		for c := 0; c < f; c++ {
			evalAct(b[c*m:][:m], y[c*m:][:m], k.shortcut(x, c), k.bn2.alpha[c], k.bn2.betaShift[c])
		}
		return
	}
	k.xh1, k.h1, k.xh2 = grow(k.xh1, f*m), grow(k.h1, f*m), grow(k.xh2, f*m)
	k.bn1.resetSums()
	convForward(c1, x, xl, w1, k.xh1, col, k.bn1.s1, k.bn1.s2)
	k.bn1.batchStats()
	for c := 0; c < f; c++ {
		normAct(k.xh1[c*m:][:m], k.h1[c*m:][:m], nil, k.bn1.mean[c], k.bn1.invstd[c], g1[c], b1[c])
	}
	k.bn2.resetSums()
	convForward(c2, k.h1, cnhw(n, q), w2, k.xh2, col, k.bn2.s1, k.bn2.s2)
	k.bn2.batchStats()
	for c := 0; c < f; c++ {
		normAct(k.xh2[c*m:][:m], y[c*m:][:m], k.shortcut(x, c), k.bn2.mean[c], k.bn2.invstd[c], g2[c], b2[c])
	}
}

func (k *blockKernel[T]) backward(in [][]T, dy []T, grads [][]T) {
	x, w1, g1, w2, g2 := in[0], in[1], in[2], in[4], in[5]
	c1, c2, ws := k.c1, k.c2, k.ws
	f, n, q := c1.f, c1.n, c1.q()
	m := n * q
	dz, dh := ws.get(&ws.a, f*m), ws.get(&ws.b, f*m)
	dx := grads[0]
	// Output ReLU, then the BatchNorm sums of bn2; the shortcut's share of
	// dx is dz before bn2's backward overwrites it.
	sd, sdx := k.sd, k.sdx
	for c := 0; c < f; c++ {
		sd[c], sdx[c] = gateSums(dz[c*m:][:m], dy[c*m:][:m], k.y[c*m:][:m], k.xh2[c*m:][:m])
	}
	if dx != nil {
		k.shortcutBackward(dx, dz)
	}
	for c := 0; c < f; c++ {
		k.bn2.backwardRow(c, dz[c*m:][:m], k.xh2[c*m:][:m], sd[c], sdx[c], g2, grads[5], grads[6])
	}
	convBackward(c2, k.h1, cnhw(n, q), w2, dz, grads[4], dh, false, ws)
	for c := 0; c < f; c++ {
		r := dh[c*m:][:m]
		s, t := gateSums(r, r, k.h1[c*m:][:m], k.xh1[c*m:][:m])
		k.bn1.backwardRow(c, r, k.xh1[c*m:][:m], s, t, g1, grads[2], grads[3])
	}
	convBackward(c1, x, cnhw(n, c1.p()), w1, dh, grads[1], dx, true, ws)
}

// headKernel is global average pooling followed by the classifier,
// torch's fc(adaptive_avg_pool2d(x, 1).flatten(1)): logits = g·Wᵀ + b with
// g[n,c] the mean of plane (n,c). Operands: x (C,N,H,W) CNHW, fc weight
// (K,C) (torch layout), fc bias (K). Output (N,K).
type headKernel[T Float] struct {
	n, c, h, w, p, k int // p = h·w
	g, dg            []T // pooled features (N,C) of the last forward, their gradient
}

func (k *headKernel[T]) name() string { return "Head" }
func (k *headKernel[T]) shapes() [][]int {
	return [][]int{{k.c, k.n, k.h, k.w}, {k.k, k.c}, {k.k}}
}
func (k *headKernel[T]) outShape() []int { return []int{k.n, k.k} }

func (k *headKernel[T]) forward(in [][]T, y []T) {
	x, w, b := in[0], in[1], in[2]
	k.g = grow(k.g, k.n*k.c)
	inv := 1 / float64(k.p)
	for c := 0; c < k.c; c++ {
		for i := 0; i < k.n; i++ {
			var s float64
			for _, v := range x[(c*k.n+i)*k.p:][:k.p] {
				s += float64(v)
			}
			k.g[i*k.c+c] = T(s * inv)
		}
	}
	// y (n × k) = g (n × c) · wᵀ (c × k)
	gemm(blas.NoTrans, blas.Trans, k.n, k.k, k.c, 1, k.g, k.c, w, k.c, 0, y, k.k)
	for i := 0; i < k.n; i++ {
		axpy(y[i*k.k:][:k.k], b)
	}
}

func (k *headKernel[T]) backward(in [][]T, dy []T, grads [][]T) {
	w := in[1]
	dx, dw, db := grads[0], grads[1], grads[2]
	for j := 0; j < k.k; j++ {
		var s float64
		for i := 0; i < k.n; i++ {
			s += float64(dy[i*k.k+j])
		}
		db[j] = T(s)
	}
	// dw (k × c) = dyᵀ (k × n) · g (n × c)
	gemm(blas.Trans, blas.NoTrans, k.k, k.c, k.n, 1, dy, k.k, k.g, k.c, 0, dw, k.c)
	if dx == nil {
		return
	}
	// dg (n × c) = dy (n × k) · w (k × c)
	k.dg = grow(k.dg, k.n*k.c)
	gemm(blas.NoTrans, blas.NoTrans, k.n, k.c, k.k, 1, dy, k.k, w, k.c, 0, k.dg, k.c)
	inv := 1 / float64(k.p)
	for c := 0; c < k.c; c++ {
		for i := 0; i < k.n; i++ {
			d := T(float64(k.dg[i*k.c+c]) * inv)
			row := dx[(c*k.n+i)*k.p:][:k.p]
			for j := range row {
				row[j] = d
			}
		}
	}
}
