package distill

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// MSE is logit matching (Kim et al. 2021, "Comparing Kullback-Leibler
// Divergence and Mean Squared Error Loss in Knowledge Distillation",
// IJCAI, §3), registered as "mse":
//
//	term = (1/(N·C)) Σ_i Σ_k (s_ik − z_ik)²
//
// the mean over examples and classes, as the paper's code computes it
// (torch.nn.functional.mse_loss with its default reduction). z are the
// teacher's logits of the arm: t for raw, the calibrated logits for the
// calibrated arm (t/T_cal for temperature scaling, which therefore rescales
// the target; log p_cal for hist and isotonic). There is no temperature:
// Kim et al. show the loss is the τ → ∞ limit of τ²-scaled KD (up to a
// constant), so τ is ignored and the effective temperature is T_cal.
type MSE struct{}

// Name returns "mse".
func (MSE) Name() string { return "mse" }

// Targets returns the teacher's logits z as float32; τ is not used.
func (MSE) Targets(z []float64, c int, _ float64) ([]float32, error) {
	out := make([]float32, len(z))
	for i, v := range z {
		out[i] = float32(v)
	}
	return out, checkFinite(out, c)
}

// CheckTargets checks that the logits are finite.
func (MSE) CheckTargets(t []float32, c int) error { return checkFinite(t, c) }

// Formula renders "MSE(s, z)".
func (MSE) Formula(_ float64, teacher string) string { return fmt.Sprintf("MSE(s, %s)", teacher) }

// EffectiveTemperature returns T_cal: the target is z = t/T_cal.
func (MSE) EffectiveTemperature(_, calT float64) float64 { return calT }

// Reference returns the term and its gradient 2(s − z)/(N·C).
func (MSE) Reference(s []float64, z []float32, labels []int, c int, _ float64) (float64, []float64) {
	n := len(labels)
	if len(s) != n*c || len(z) != n*c {
		panic("distill: slice lengths do not match N×C")
	}
	grad := make([]float64, len(s))
	var loss float64
	inv := 1 / float64(n*c)
	for i, v := range s {
		d := v - float64(z[i])
		loss += d * d
		grad[i] = 2 * d * inv
	}
	return loss * inv, grad
}

// Build adds Σ_ik W_ik (s_ik − Z_ik)², where Z holds the batch's teacher
// logits and W is w/(m·C) on the m valid rows, 0 on padded rows.
func (MSE) Build(g *G.ExprGraph, s *G.Node, in Inputs) (Term, error) {
	z, zt, err := input(g, s, in.C, "z_teacher")
	if err != nil {
		return nil, err
	}
	w, wt, err := input(g, s, in.C, "mse_w")
	if err != nil {
		return nil, err
	}
	d, err := G.Sub(s, z)
	if err != nil {
		return nil, err
	}
	sq, err := G.HadamardProd(d, d)
	if err != nil {
		return nil, err
	}
	ws, err := G.HadamardProd(sq, w)
	if err != nil {
		return nil, err
	}
	node, err := G.Sum(ws)
	if err != nil {
		return nil, fmt.Errorf("MSE term: %w", err)
	}
	return &mseTerm{node: node, z: zt, w: wt, c: in.C, weight: in.Weight, t: in.Targets}, nil
}

type mseTerm struct {
	node   *G.Node
	z, w   *tensor.Dense
	c      int
	weight float64
	t      []float32
}

func (m *mseTerm) Node() *G.Node { return m.node }

func (m *mseTerm) Fill(pos, _ []int) {
	c := m.c
	k := m.weight / float64(len(pos)*c)
	fill64(m.z, func(dst []float64) {
		clear(dst)
		for i, q := range pos {
			for j, v := range m.t[q*c : (q+1)*c] {
				dst[i*c+j] = float64(v)
			}
		}
	})
	fill64(m.w, func(dst []float64) {
		clear(dst)
		for i := range pos {
			for j := 0; j < c; j++ {
				dst[i*c+j] = k
			}
		}
	})
}

func (m *mseTerm) Constant([]int) float64 { return 0 }
