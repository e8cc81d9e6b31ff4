package distill

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/kdcal/kdcal/internal/metrics"
)

// DKD is Decoupled Knowledge Distillation (Zhao et al. 2022, "Decoupled
// Knowledge Distillation", CVPR, Eq. 7), registered as "dkd": the KD loss
// split into a target-class and a non-target-class term, weighted apart,
//
//	term = τ² · (1/N) Σ_i [ α·TCKD_i + β·NCKD_i ]
//	TCKD_i = KL(b_T ‖ b_S),  b = (p_y, 1 − p_y): the binary target/non-target split of softmax(·/τ)
//	NCKD_i = KL(p̂_T ‖ p̂_S),  p̂_k = p_k / (1 − p_y), k ≠ y: the distribution among the non-target classes
//
// with p_T = softmax(z_i/τ), p_S = softmax(s_i/τ) and y the label. It is
// mdistiller's mdistiller/distillers/DKD.py dkd_loss (which masks the target
// logit with −1000 for p̂; here the masked logit is −1e30, the same to
// float64 rounding), without its linear warm-up of the DKD weight over the
// first 20 epochs (DKD's CFG.DKD.WARMUP): kdcal's students train 10–20
// epochs with a constant weight, like every other loss of the grid.
//
// In the graph, with x = s_i/τ, log p_S = LogSoftmax(x), log p̂_S =
// LogSoftmax(x − M·onehot(y)) (M = 1e30; its target entry is unused) and
// log(1 − p_S,y) = log p_S,k − log p̂_S,k for every k ≠ y — hence also its
// p̂_T-weighted mean — the term of row i is, up to a constant,
//
//	−τ² [ Σ_k α p_T,k log p_S,k + Σ_{k≠y} (β − α b_nt) p̂_T,k log p̂_S,k ]
//
// (b_nt = 1 − p_T,y): two weighted cross-entropies of max-shifted log
// softmaxes, so neither a confident student (1 − p_S,y → 0) nor a
// confident teacher overflows, and no gradient flows through a max.
// Constant adds back τ²[α(b_t log b_t + b_nt log b_nt) + β Σ p̂ log p̂].
type DKD struct {
	Alpha, Beta float64
}

// dkdMask is added to the target logit to exclude it from p̂_S (mdistiller: −1000).
const dkdMask = -1e30

// Name returns "dkd".
func (DKD) Name() string { return "dkd" }

// Targets returns the teacher's scaled logits z/τ (float32): the split into
// target and non-target mass needs the label, known only per batch, and is
// computed from the logits in float64 (1 − p_y from probabilities would
// cancel for a confident teacher).
func (DKD) Targets(z []float64, c int, tau float64) ([]float32, error) {
	if !(tau > 0) {
		return nil, fmt.Errorf("distill: KD temperature %v must be > 0", tau)
	}
	out := make([]float32, len(z))
	for i, v := range z {
		out[i] = float32(v / tau)
	}
	return out, checkFinite(out, c)
}

// CheckTargets checks that the scaled logits are finite.
func (DKD) CheckTargets(t []float32, c int) error { return checkFinite(t, c) }

// Formula renders "4²·(1·TCKD + 8·NCKD)(softmax(t/4) ‖ softmax(s/4))".
func (d DKD) Formula(tau float64, teacher string) string {
	return fmt.Sprintf("%s²·(%s·TCKD + %s·NCKD)(softmax(%s/%s) ‖ softmax(s/%s))",
		fmtG(tau), fmtG(d.Alpha), fmtG(d.Beta), teacher, fmtG(tau), fmtG(tau))
}

// EffectiveTemperature returns τ·T_cal.
func (DKD) EffectiveTemperature(tau, calT float64) float64 { return tau * calT }

// dkdRow holds one row's teacher quantities: b_t, b_nt and p̂ (p̂_y = 0).
func dkdRow(zt []float32, y int, dst []float64) (bt, bnt float64) {
	c := len(zt)
	x := make([]float64, c)
	for k, v := range zt {
		x[k] = float64(v)
	}
	l := metrics.LogSumExp(x)
	x[y] = math.Inf(-1)
	ln := metrics.LogSumExp(x)
	bt = math.Exp(float64(zt[y]) - l)
	bnt = math.Exp(ln - l)
	for k := range dst {
		dst[k] = 0
		if k != y {
			dst[k] = math.Exp(x[k] - ln)
		}
	}
	return bt, bnt
}

func xlogx(x float64) float64 {
	if x > 0 {
		return x * math.Log(x)
	}
	return 0
}

// Reference returns the term (weight 1) and its gradient in float64,
// straight from the definition: ∂/∂s_ik = τ/N · [α·∂TCKD + β·∂NCKD], with
// ∂TCKD/∂x_k = p_S,k (b_S,t − b_T,t)/b_S,t for k = y, p_S,k (b_S,nt − b_T,nt)/b_S,nt otherwise,
// ∂NCKD/∂x_k = p̂_S,k − p̂_T,k for k ≠ y, 0 for k = y.
func (d DKD) Reference(s []float64, zt []float32, labels []int, c int, tau float64) (float64, []float64) {
	n := len(labels)
	if len(s) != n*c || len(zt) != n*c {
		panic("distill: slice lengths do not match N×C")
	}
	grad := make([]float64, len(s))
	var loss float64
	pt := make([]float64, c)
	ps := make([]float64, c)
	for i, y := range labels {
		bt, bnt := dkdRow(zt[i*c:(i+1)*c], y, pt)
		x := make([]float64, c)
		for k := range x {
			x[k] = s[i*c+k] / tau
		}
		l := metrics.LogSumExp(x)
		sy := x[y]
		x[y] = math.Inf(-1)
		ln := metrics.LogSumExp(x)
		x[y] = sy
		st, snt := math.Exp(sy-l), math.Exp(ln-l)
		tckd := xlogx(bt) - bt*(sy-l) + xlogx(bnt) - bnt*(ln-l)
		var nckd float64
		for k := 0; k < c; k++ {
			if k == y {
				ps[k] = 0
				continue
			}
			ps[k] = math.Exp(x[k] - ln)
			nckd += xlogx(pt[k]) - pt[k]*(x[k]-ln)
		}
		loss += tau * tau * (d.Alpha*tckd + d.Beta*nckd)
		for k := 0; k < c; k++ {
			pk := math.Exp(x[k] - l)
			var g float64
			if k == y {
				g = d.Alpha * pk * (st - bt) / st
			} else {
				g = d.Alpha*pk*(snt-bnt)/snt + d.Beta*(ps[k]-pt[k])
			}
			grad[i*c+k] = tau * g / float64(n)
		}
	}
	return loss / float64(n), grad
}

// Build adds the term in the form of the type's doc comment.
func (d DKD) Build(g *G.ExprGraph, s *G.Node, in Inputs) (Term, error) {
	x := s
	var err error
	if in.Tau != 1 {
		if x, err = G.HadamardProd(s, constant(s, 1/in.Tau)); err != nil {
			return nil, fmt.Errorf("logits/τ: %w", err)
		}
	}
	w1, w1t, err := input(g, s, in.C, "dkd_w1")
	if err != nil {
		return nil, err
	}
	w2, w2t, err := input(g, s, in.C, "dkd_w2")
	if err != nil {
		return nil, err
	}
	mask, mt, err := input(g, s, in.C, "dkd_mask")
	if err != nil {
		return nil, err
	}
	xm, err := G.Add(x, mask)
	if err != nil {
		return nil, err
	}
	logq, err := LogSoftmax(x)
	if err != nil {
		return nil, err
	}
	lognc, err := LogSoftmax(xm)
	if err != nil {
		return nil, err
	}
	a, err := WeightedXent(logq, w1)
	if err != nil {
		return nil, err
	}
	b, err := WeightedXent(lognc, w2)
	if err != nil {
		return nil, err
	}
	node, err := G.Add(a, b)
	if err != nil {
		return nil, fmt.Errorf("DKD term: %w", err)
	}
	return &dkdTerm{d: d, node: node, w1: w1t, w2: w2t, mask: mt, c: in.C, coef: in.Weight * in.Tau * in.Tau, zt: in.Targets}, nil
}

type dkdTerm struct {
	d            DKD
	node         *G.Node
	w1, w2, mask *tensor.Dense
	c            int
	coef         float64   // w·τ²
	zt           []float32 // N_train×C teacher logits / τ
	konst        float64   // constant of the last Fill
}

func (t *dkdTerm) Node() *G.Node { return t.node }

func (t *dkdTerm) Fill(pos, labels []int) {
	c, m := t.c, len(pos)
	k := t.coef / float64(m)
	t.konst = 0
	w1 := make([]float64, len(pos)*c)
	w2 := make([]float64, len(pos)*c)
	for i, q := range pos {
		y := labels[i]
		ph := w2[i*c : (i+1)*c]
		bt, bnt := dkdRow(t.zt[q*c:(q+1)*c], y, ph)
		var h float64
		for j, p := range ph {
			h += xlogx(p)
			w1[i*c+j] = k * t.d.Alpha * bnt * p // α p_T,j = α b_nt p̂_j for j ≠ y
			ph[j] = k * (t.d.Beta - t.d.Alpha*bnt) * p
		}
		w1[i*c+y] = k * t.d.Alpha * bt
		t.konst += k * (t.d.Alpha*(xlogx(bt)+xlogx(bnt)) + t.d.Beta*h)
	}
	fill64(t.w1, func(dst []float64) { clear(dst); copy(dst, w1) })
	fill64(t.w2, func(dst []float64) { clear(dst); copy(dst, w2) })
	fill64(t.mask, func(dst []float64) {
		clear(dst)
		for i, y := range labels {
			dst[i*c+y] = dkdMask
		}
	})
}

func (t *dkdTerm) Constant([]int) float64 { return t.konst }
