package calibrate

import (
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/mat"

	"github.com/kdcal/kdcal/internal/gemm/dgemm"
	"github.com/kdcal/kdcal/internal/metrics/kernel"
)

// blasImpl is the float64 BLAS of the affine fits: package dgemm (gonum's
// BLAS with a packed AVX2+FMA Dgemm and Dsyrk, about 4× gonum's own on
// these shapes), replaced by OpenBLAS in builds with the openblas tag
// (blas_openblas.go).
var blasImpl blas.Float64 = dgemm.Implementation{}

// BLAS names the float64 BLAS the affine calibrators use: "dgemm/avx2-fma",
// "dgemm/go" or "openblas".
var BLAS = "dgemm/" + dgemm.Kernel

// affineObjective is the mean validation NLL of softmax(map(z)) plus, for
// matrix scaling, the L2 penalty, with the scratch space of its passes
// allocated once per fit. Its methods are not safe for concurrent use.
type affineObjective struct {
	am affineMap
	z  []float64 // N×C logits, row-major
	y  []int
	l2 float64
	s  []float64 // N×C: mapped logits, then G = (P − Y)/N
	q  []float64 // N×2C (vector Hessian only): [p ⊙ z, p] per row
}

func newAffineObjective(am affineMap, z []float64, y []int, l2 float64) *affineObjective {
	return &affineObjective{am: am, z: z, y: y, l2: l2, s: make([]float64, len(z))}
}

// rowPart is one chunk's share of f and of the per-class gradient sums.
type rowPart struct {
	f      float64
	ga, gb []float64 // vector: Σ G_ik z_ik; both maps: Σ G_ik
}

// fg returns NLL(θ) + penalty(θ) and writes its gradient into grad. With
// S = map(Z), P = softmax(S) row-wise and G = (P − Y)/N (Y one-hot):
//
//	NLL = (1/N) Σ_i [log Σ_k exp(S_ik) − S_{i,y_i}]
//	vector: ∂/∂a_k = Σ_i G_ik z_ik,    ∂/∂b_k = Σ_i G_ik
//	matrix: ∂/∂W = Gᵀ Z (a GEMM),      ∂/∂b_k = Σ_i G_ik
//
// For matrix scaling the forward map S = Z Wᵀ + 1 bᵀ is a GEMM too, so a
// pass costs two N×C×C matrix products (blasImpl) and N·C exponentials.
func (o *affineObjective) fg(theta, grad []float64) float64 {
	c, n := o.am.c, len(o.y)
	var scale, bias []float64 // per-class a and b of the row map (scale nil for matrix)
	if o.am.full {
		bias = theta[c*c:]
		blasImpl.Dgemm(blas.NoTrans, blas.Trans, n, c, c, 1, o.z, c, theta[:c*c], c, 0, o.s, c)
	} else {
		scale, bias = theta[:c], theta[c:]
	}
	inv := 1 / float64(n)
	parts := kernel.Map(n, c, func(lo, hi int) rowPart {
		p := rowPart{gb: make([]float64, c)}
		if scale != nil {
			p.ga = make([]float64, c)
		}
		for i := lo; i < hi; i++ {
			p.f += rowGrad(o.s[i*c:(i+1)*c], o.z[i*c:(i+1)*c], o.y[i], inv, scale, bias, p.ga, p.gb)
		}
		return p
	})
	clear(grad)
	var f float64
	gb := grad[len(grad)-c:]
	for _, p := range parts {
		f += p.f
		for k := range c {
			gb[k] += p.gb[k]
			if p.ga != nil {
				grad[k] += p.ga[k]
			}
		}
	}
	if o.am.full {
		blasImpl.Dgemm(blas.Trans, blas.NoTrans, c, c, n, 1, o.s, c, o.z, c, 0, grad[:c*c], c)
	}
	return f*inv + o.am.penalty(theta, grad, o.l2)
}

// rowGrad finishes the map of one example, s = s + b (matrix: s holds
// W z) or s = a ⊙ z + b (vector: scale = a), overwrites s with
// G = (softmax(s) − e_y)·inv, adds G to gb and (vector) G ⊙ z to ga, and
// returns the example's NLL, log Σ_k exp(s_k) − s_y. Passes over the row:
// map, max, exponentials (kernel.ExpSub, 4 at a time), their sum, gradient.
func rowGrad(s, z []float64, y int, inv float64, scale, bias, ga, gb []float64) float64 {
	s, z, bias = s[:len(bias)], z[:len(bias)], bias[:len(bias)]
	if scale != nil {
		scale = scale[:len(s)]
		for k := range s {
			s[k] = scale[k]*z[k] + bias[k]
		}
	} else {
		for k := range s {
			s[k] += bias[k]
		}
	}
	m := maxOf(s)
	dy := s[y] - m
	kernel.ExpSub(s, s, m)
	var sum float64
	for _, e := range s {
		sum += e
	}
	r := inv / sum
	gb = gb[:len(s)]
	if ga != nil {
		ga = ga[:len(s)]
		for k, e := range s {
			g := e * r
			if k == y {
				g -= inv
			}
			s[k] = g
			gb[k] += g
			ga[k] += g * z[k]
		}
	} else {
		for k, e := range s {
			g := e * r
			if k == y {
				g -= inv
			}
			s[k] = g
			gb[k] += g
		}
	}
	return math.Log(sum) - dy
}

// maxOf returns max(s) with four running maxima (a short dependency chain).
func maxOf(s []float64) float64 {
	m0 := s[0]
	m1, m2, m3 := m0, m0, m0
	i := 1
	for ; i+4 <= len(s); i += 4 {
		m0, m1, m2, m3 = max(m0, s[i]), max(m1, s[i+1]), max(m2, s[i+2]), max(m3, s[i+3])
	}
	for ; i < len(s); i++ {
		m0 = max(m0, s[i])
	}
	return max(max(m0, m1), max(m2, m3))
}

// hessPart is one chunk's share of the diagonal terms of the vector Hessian.
type hessPart struct{ pzz, pz, p []float64 }

// vectorHess writes the Hessian of the vector-scaling NLL at θ = (a, b)
// into h (2C×2C). With s_i = a ⊙ z_i + b, p_i = softmax(s_i) and
// ∂²NLL_i/∂s∂s = diag(p_i) − p_i p_iᵀ:
//
//	H_aa[k,l] = (1/N) Σ_i z_ik z_il (p_ik δ_kl − p_ik p_il)
//	H_ab[k,l] = (1/N) Σ_i z_ik (p_ik δ_kl − p_ik p_il)
//	H_bb[k,l] = (1/N) Σ_i (p_ik δ_kl − p_ik p_il)
//
// that is H = (1/N) (D − QᵀQ) with the rows q_i = [p_i ⊙ z_i, p_i] of Q
// (N×2C, one symmetric rank-N update, blasImpl.Dsyrk) and the diagonal
// blocks D_aa = diag Σ_i p_ik z_ik², D_ab = D_ba = diag Σ_i p_ik z_ik,
// D_bb = diag Σ_i p_ik.
func (o *affineObjective) vectorHess(h *mat.SymDense, theta []float64) {
	c, n := o.am.c, len(o.y)
	if o.q == nil {
		o.q = make([]float64, 2*len(o.z))
	}
	parts := kernel.Map(n, c, func(lo, hi int) hessPart {
		p := hessPart{pzz: make([]float64, c), pz: make([]float64, c), p: make([]float64, c)}
		for i := lo; i < hi; i++ {
			zi, qi := o.z[i*c:(i+1)*c], o.q[2*i*c:2*(i+1)*c]
			pr := qi[c:]
			for k := range pr {
				pr[k] = theta[k]*zi[k] + theta[c+k]
			}
			softmaxRow(pr)
			for k, pk := range pr {
				pzk := pk * zi[k]
				qi[k] = pzk
				p.pzz[k] += pzk * zi[k]
				p.pz[k] += pzk
				p.p[k] += pk
			}
		}
		return p
	})
	raw := h.RawSymmetric()
	d := 2 * c
	blasImpl.Dsyrk(blas.Upper, blas.Trans, d, n, -1/float64(n), o.q, d, 0, raw.Data, raw.Stride)
	inv := 1 / float64(n)
	for _, p := range parts {
		for k := range c {
			raw.Data[k*raw.Stride+k] += p.pzz[k] * inv
			raw.Data[k*raw.Stride+c+k] += p.pz[k] * inv
			raw.Data[(c+k)*raw.Stride+c+k] += p.p[k] * inv
		}
	}
}

// softmaxRow overwrites s with softmax(s).
func softmaxRow(s []float64) {
	kernel.ExpSub(s, s, maxOf(s))
	var sum float64
	for _, e := range s {
		sum += e
	}
	r := 1 / sum
	for k := range s {
		s[k] *= r
	}
}
