package fused

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
)

// workspace holds the scratch buffers that the ops of one graph share:
// the ops of a graph run one after another (gorgonia's rule: one graph,
// one goroutine), and none keeps scratch data from one op to the next.
type workspace[T Float] struct {
	col  []T // column matrix of one chunk (im2col, dcol)
	a, b []T // activation-sized temporaries (CNHW)
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
		n = max(n, g.k()*g.nb*g.q())
	}
	return ws.get(&ws.col, n)
}

// stemKernel is conv3×3(stride 1, pad 1, no bias) → BatchNorm → ReLU,
// torch's relu(bn1(conv1(x))) at the start of the CIFAR ResNet. Operands:
// x (N,C,H,W), conv weight (F,C,3,3), BN weight γ (F), BN bias β (F).
// Output (N,F,H,W).
type stemKernel[T Float] struct {
	cv      conv
	mode    Mode
	bn      *batchNorm[T]
	ws      *workspace[T]
	xh      []T    // x̂ of the last training forward (CNHW)
	tracked *int64 // num_batches_tracked of every BN layer: counted here, once per training forward
}

func (k *stemKernel[T]) name() string { return "Stem" }
func (k *stemKernel[T]) shapes() [][]int {
	g := k.cv
	return [][]int{{g.n, g.c, g.h, g.w}, {g.f, g.c, 3, 3}, {g.f}, {g.f}}
}
func (k *stemKernel[T]) outShape() []int { return []int{k.cv.n, k.cv.f, k.cv.ho, k.cv.wo} }

func (k *stemKernel[T]) forward(in [][]T, y []T) {
	x, w, gamma, beta := in[0], in[1], in[2], in[3]
	g, ws := k.cv, k.ws
	m, q := g.n*g.q(), g.q()
	col := ws.colFor(g)
	if k.mode == Train {
		k.xh = grow(k.xh, g.f*m)
		k.bn.resetSums()
		convForward(g, x, nchw(g.c, g.p()), w, k.xh, col, k.bn.s1, k.bn.s2)
		k.bn.normalize(k.xh)
		*k.tracked++
		toNCHW(y, k.xh, g.n, g.f, q, gamma, beta, nil)
		return
	}
	a := ws.get(&ws.a, g.f*m)
	convForward(g, x, nchw(g.c, g.p()), w, a, col, nil, nil)
	k.bn.evalCoefficients(gamma, beta)
	toNCHW(y, a, g.n, g.f, q, k.bn.alpha, k.bn.betaShift, nil)
}

func (k *stemKernel[T]) backward(in [][]T, dy []T, grads [][]T) {
	x, w, gamma := in[0], in[1], in[2]
	g, ws := k.cv, k.ws
	m, q := g.n*g.q(), g.q()
	dz := ws.get(&ws.a, g.f*m)
	maskToCNHW(dz, dy, k.xh, g.n, g.f, q, gamma, in[3], nil)
	k.bn.backward(dz, k.xh, gamma, grads[2], grads[3])
	if grads[0] != nil {
		clear(grads[0])
	}
	convBackward(g, x, nchw(g.c, g.p()), w, dz, grads[1], grads[0], ws.colFor(g))
}

// shortcutFunc returns the option-A shortcut plane of image n, output
// channel f (q values), using buf as scratch; see blockKernel.
type shortcutFunc[T Float] func(x []T, n, f int, buf []T) []T

// toNCHW writes the output y (NCHW) of a BatchNorm + ReLU from a CNHW
// input u: y[n,f,i] = relu(s_f·u[f,n,i] + t_f + sc(n,f)[i]), with sc zero
// when shortcut is nil. (s, t) are (γ, β) on x̂ in training and the
// evaluation coefficients on the convolution output otherwise.
func toNCHW[T Float](y, u []T, n, f, q int, s, t []T, sc func(n, f int) []T) {
	for i := 0; i < n; i++ {
		for c := 0; c < f; c++ {
			src := u[(c*n+i)*q:][:q]
			dst := y[(i*f+c)*q:][:q]
			sf, tf := s[c], t[c]
			if sc == nil {
				for j, v := range src {
					dst[j] = relu(affine(sf, tf, v))
				}
				continue
			}
			r := sc(i, c)[:q]
			for j, v := range src {
				dst[j] = relu(affine(sf, tf, v) + r[j])
			}
		}
	}
}

// maskToCNHW is the backward of toNCHW's ReLU: dz[f,n,i] = dy[n,f,i] where
// the recomputed pre-activation γ_f·x̂[f,n,i] + β_f (+ shortcut) is > 0,
// else 0 (torch's ReLU derivative, 0 at 0). The recomputation repeats
// toNCHW's arithmetic, so the mask is exactly the forward one.
func maskToCNHW[T Float](dz, dy, xh []T, n, f, q int, gamma, beta []T, sc func(n, f int) []T) {
	for i := 0; i < n; i++ {
		for c := 0; c < f; c++ {
			src := xh[(c*n+i)*q:][:q]
			g := dy[(i*f+c)*q:][:q]
			dst := dz[(c*n+i)*q:][:q]
			gf, bf := gamma[c], beta[c]
			if sc == nil {
				for j, v := range src {
					dst[j] = g[j]
					if !(affine(gf, bf, v) > 0) {
						dst[j] = 0
					}
				}
				continue
			}
			r := sc(i, c)[:q]
			for j, v := range src {
				dst[j] = g[j]
				if !(affine(gf, bf, v)+r[j] > 0) {
					dst[j] = 0
				}
			}
		}
	}
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
// Operands: x (N,C,H,W), conv1 weight (F,C,3,3), bn1 γ, β (F), conv2 weight
// (F,F,3,3), bn2 γ, β (F). Output (N,F,Ho,Wo).
type blockKernel[T Float] struct {
	c1, c2       conv
	lo           int // zero channels before the input's in the shortcut
	mode         Mode
	bn1, bn2     *batchNorm[T]
	ws           *workspace[T]
	xh1, h1, xh2 []T // x̂1, relu(bn1(·)) and x̂2 of the last training forward (CNHW)
	scBuf, zeros []T // one shortcut plane; a zero plane
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
	k.scBuf, k.zeros = make([]T, c1.q()), make([]T, c1.q())
	return k, nil
}

func (k *blockKernel[T]) name() string { return "Block" }
func (k *blockKernel[T]) shapes() [][]int {
	g, f := k.c1, k.c1.f
	return [][]int{{g.n, g.c, g.h, g.w}, {f, g.c, 3, 3}, {f}, {f}, {f, f, 3, 3}, {f}, {f}}
}
func (k *blockKernel[T]) outShape() []int { return []int{k.c1.n, k.c1.f, k.c1.ho, k.c1.wo} }

// shortcut returns the shortcut plane of image n, output channel f.
func (k *blockKernel[T]) shortcut(x []T) func(n, f int) []T {
	g := k.c1
	return func(n, f int) []T {
		c := f - k.lo
		if c < 0 || c >= g.c {
			return k.zeros
		}
		src := x[(n*g.c+c)*g.p():][:g.p()]
		if g.s == 1 {
			return src
		}
		for oh := 0; oh < g.ho; oh++ {
			row := src[oh*g.s*g.w:]
			d := k.scBuf[oh*g.wo:][:g.wo]
			for ow := range d {
				d[ow] = row[ow*g.s]
			}
		}
		return k.scBuf
	}
}

// shortcutBackward sets dx to the shortcut's share of the input gradient
// (the adjoint of shortcut): dz is the gradient of the block's
// pre-activation sum, CNHW.
func (k *blockKernel[T]) shortcutBackward(dx, dz []T) {
	g := k.c1
	q := g.q()
	if g.s != 1 {
		clear(dx)
	}
	for n := 0; n < g.n; n++ {
		for c := 0; c < g.c; c++ {
			src := dz[((c+k.lo)*g.n+n)*q:][:q]
			dst := dx[(n*g.c+c)*g.p():][:g.p()]
			if g.s == 1 {
				copy(dst, src)
				continue
			}
			for oh := 0; oh < g.ho; oh++ {
				row := dst[oh*g.s*g.w:]
				for ow, v := range src[oh*g.wo:][:g.wo] {
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
	sc := k.shortcut(x)
	if k.mode == Train {
		k.xh1, k.h1, k.xh2 = grow(k.xh1, f*m), grow(k.h1, f*m), grow(k.xh2, f*m)
		k.bn1.resetSums()
		convForward(c1, x, nchw(c1.c, c1.p()), w1, k.xh1, col, k.bn1.s1, k.bn1.s2)
		k.bn1.normalize(k.xh1)
		affineRelu(k.h1, k.xh1, f, m, g1, b1)
		k.bn2.resetSums()
		convForward(c2, k.h1, cnhw(n, q), w2, k.xh2, col, k.bn2.s1, k.bn2.s2)
		k.bn2.normalize(k.xh2)
		toNCHW(y, k.xh2, n, f, q, g2, b2, sc)
		return
	}
	a, b := ws.get(&ws.a, f*m), ws.get(&ws.b, f*m)
	convForward(c1, x, nchw(c1.c, c1.p()), w1, a, col, nil, nil)
	k.bn1.evalCoefficients(g1, b1)
	affineRelu(a, a, f, m, k.bn1.alpha, k.bn1.betaShift)
	convForward(c2, a, cnhw(n, q), w2, b, col, nil, nil)
	k.bn2.evalCoefficients(g2, b2)
	toNCHW(y, b, n, f, q, k.bn2.alpha, k.bn2.betaShift, sc)
}

func (k *blockKernel[T]) backward(in [][]T, dy []T, grads [][]T) {
	x, w1, g1, w2, g2, b2 := in[0], in[1], in[2], in[4], in[5], in[6]
	c1, c2, ws := k.c1, k.c2, k.ws
	f, n, q := c1.f, c1.n, c1.q()
	m := n * q
	dz, dh, col := ws.get(&ws.a, f*m), ws.get(&ws.b, f*m), ws.colFor(c1, c2)
	maskToCNHW(dz, dy, k.xh2, n, f, q, g2, b2, k.shortcut(x))
	dx := grads[0]
	if dx != nil {
		k.shortcutBackward(dx, dz)
	}
	k.bn2.backward(dz, k.xh2, g2, grads[5], grads[6])
	clear(dh)
	convBackward(c2, k.h1, cnhw(n, q), w2, dz, grads[4], dh, col)
	for i, v := range k.h1 {
		if !(v > 0) {
			dh[i] = 0
		}
	}
	k.bn1.backward(dh, k.xh1, g1, grads[2], grads[3])
	convBackward(c1, x, nchw(c1.c, c1.p()), w1, dh, grads[1], dx, col)
}

// affineRelu sets dst[c,·] = relu(s_c·u[c,·] + t_c) for the f channel rows
// of m values of a CNHW activation (dst may be u).
func affineRelu[T Float](dst, u []T, f, m int, s, t []T) {
	for c := 0; c < f; c++ {
		src, d := u[c*m:][:m], dst[c*m:][:m]
		sc, tc := s[c], t[c]
		for i, v := range src {
			d[i] = relu(affine(sc, tc, v))
		}
	}
}

// headKernel is global average pooling followed by the classifier,
// torch's fc(adaptive_avg_pool2d(x, 1).flatten(1)): logits = g·Wᵀ + b with
// g[n,c] = mean of plane (n,c). Operands: x (N,C,H,W), fc weight (K,C)
// (torch layout), fc bias (K). Output (N,K).
type headKernel[T Float] struct {
	n, c, h, w, p, k int // p = h·w
	g, dg            []T // pooled features (N,C) of the last forward, their gradient
}

func (k *headKernel[T]) name() string { return "Head" }
func (k *headKernel[T]) shapes() [][]int {
	return [][]int{{k.n, k.c, k.h, k.w}, {k.k, k.c}, {k.k}}
}
func (k *headKernel[T]) outShape() []int { return []int{k.n, k.k} }

func (k *headKernel[T]) forward(in [][]T, y []T) {
	x, w, b := in[0], in[1], in[2]
	k.g = grow(k.g, k.n*k.c)
	inv := 1 / float64(k.p)
	for i := range k.g {
		var s float64
		for _, v := range x[i*k.p:][:k.p] {
			s += float64(v)
		}
		k.g[i] = T(s * inv)
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
	for i, v := range k.dg {
		d := T(float64(v) * inv)
		row := dx[i*k.p:][:k.p]
		for j := range row {
			row[j] = d
		}
	}
}
