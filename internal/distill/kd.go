// Package distill turns a teacher's stored logits into distillation targets
// for each arm of the study and holds the registry of KD losses the trainer
// optimises (loss.go). Every loss adds a term to the hard-label cross-entropy:
//
//	loss = ce_weight · CE(y, s) + kd_weight · term(s, teacher)
//
// with s the student's logits. The terms (one file each):
//
//	kd    Hinton et al. 2015: τ²·KL(softmax(z/τ) ‖ softmax(s/τ))             (kd.go)
//	dkd   Zhao et al. 2022: τ²·(α·TCKD + β·NCKD)                            (dkd.go)
//	mse   Kim et al. 2021: mean squared error between s and z               (mse.go)
//
// where z are the teacher's logits of the arm (CalibratedLogits):
//
//	raw:        z = t                                   (t: the teacher's logits)
//	calibrated: z = g(t) for calibrators that map logits (g(t) = t/T_cal for temp, so the effective
//	                                                     softening of kd and dkd is τ·T_cal, and mse matches t/T_cal)
//	            z = log p_cal(t)                        for calibrators that output probabilities (hist, isotonic):
//	                                                     softmax(z/τ) ∝ p_cal^(1/τ); at τ = 1 the student matches p_cal itself.
//	scratch:    no teacher, CE(y, s) only (same initialisation and batch order as the KD arms of that seed).
//
// The teacher is never run during distillation: targets come from its
// stored train-split logits, looked up by example position.
package distill

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/kdcal/kdcal/internal/metrics"
)

// LogitMapper is a calibrator that maps logits to calibrated logits
// (temp, vector, matrix, none).
type LogitMapper interface {
	MapLogits(logits []float64, c int) []float64
}

// ProbCalibrator is a calibrator that outputs calibrated probabilities.
type ProbCalibrator interface {
	Probs(logits []float64, c int) []float64
}

// Hinton is the KD loss of Hinton et al. 2015 ("Distilling the Knowledge
// in a Neural Network", §2), registered as "kd":
//
//	term = τ² · (1/N) Σ_i Σ_k p_ik (log p_ik − log softmax(s_i/τ)_k),   p_i = softmax(z_i/τ)
//
// The τ² factor keeps the gradient magnitude of the soft term comparable
// across temperatures. The graph computes the term in cross-entropy form
// −τ² Σ_k p_ik log softmax(s_i/τ)_k, which has the same gradient; Constant
// adds back τ² Σ_k p_ik log p_ik so that reported losses are true KL
// divergences. Same as mdistiller's distillers/KD.py kd_loss.
type Hinton struct{}

// Name returns "kd".
func (Hinton) Name() string { return "kd" }

// Targets returns the soft targets softmax(z/τ).
func (Hinton) Targets(z []float64, c int, tau float64) ([]float32, error) {
	return softTargets(z, c, tau)
}

// CheckTargets checks that every row is a probability vector.
func (Hinton) CheckTargets(t []float32, c int) error { return checkProbs(t, c) }

// Formula renders "τ²·KL(softmax(z/τ) ‖ softmax(s/τ))".
func (Hinton) Formula(tau float64, teacher string) string {
	return fmt.Sprintf("%s²·KL(softmax(%s/%s) ‖ softmax(s/%s))", fmtG(tau), teacher, fmtG(tau), fmtG(tau))
}

// EffectiveTemperature returns τ·T_cal.
func (Hinton) EffectiveTemperature(tau, calT float64) float64 { return tau * calT }

// Reference returns the term and its gradient (see KDLoss with ceW = 0, kdW = 1).
func (Hinton) Reference(s []float64, p []float32, labels []int, c int, tau float64) (float64, []float64) {
	return KDLoss(s, p, labels, c, tau, 0, 1)
}

// Build adds −Σ_ik P_ik log softmax(s/τ)_ik, where the input P holds
// w·τ²·p_i/m for the m valid rows and zeros for padded ones.
func (Hinton) Build(g *G.ExprGraph, s *G.Node, in Inputs) (Term, error) {
	p, pt, err := input(g, s, in.C, "p_teacher")
	if err != nil {
		return nil, err
	}
	x := s
	if in.Tau != 1 {
		if x, err = G.HadamardProd(s, constant(s, 1/in.Tau)); err != nil {
			return nil, fmt.Errorf("logits/τ: %w", err)
		}
	}
	logq, err := LogSoftmax(x)
	if err != nil {
		return nil, fmt.Errorf("log-softmax: %w", err)
	}
	node, err := WeightedXent(logq, p)
	if err != nil {
		return nil, fmt.Errorf("KD term: %w", err)
	}
	return &hintonTerm{node: node, pt: pt, c: in.C, kd: in.Weight * in.Tau * in.Tau, p: in.Targets,
		negEnt: negEntropies(in.Targets, in.C)}, nil
}

type hintonTerm struct {
	node   *G.Node
	pt     *tensor.Dense
	c      int
	kd     float64   // w·τ²
	p      []float32 // N_train×C soft targets
	negEnt []float64 // per train row Σ_k p log p
}

func (h *hintonTerm) Node() *G.Node { return h.node }

func (h *hintonTerm) Fill(pos, _ []int) {
	switch d := h.pt.Data().(type) {
	case []float32:
		fillScaled(d, h.p, pos, h.c, h.kd)
	case []float64:
		fillScaled(d, h.p, pos, h.c, h.kd)
	}
}

// fillScaled writes kd/m·p[pos_i] into row i, zeros into padded rows.
func fillScaled[T float32 | float64](dst []T, p []float32, pos []int, c int, kd float64) {
	clear(dst)
	s := kd * (1 / float64(len(pos)))
	for i, q := range pos {
		src := p[q*c : (q+1)*c]
		row := dst[i*c : (i+1)*c]
		for k, v := range src {
			row[k] = T(s * float64(v))
		}
	}
}

func (h *hintonTerm) Constant(pos []int) float64 {
	var k float64
	for _, q := range pos {
		k += h.negEnt[q]
	}
	return k * (h.kd / float64(len(pos)))
}

// negEntropies returns Σ_k p_k log p_k of every row of p (0·log 0 = 0).
func negEntropies(p []float32, c int) []float64 {
	out := make([]float64, len(p)/c)
	for i := range out {
		for _, v := range p[i*c : (i+1)*c] {
			if v > 0 {
				out[i] += float64(v) * math.Log(float64(v))
			}
		}
	}
	return out
}

// Targets returns the soft targets p_T = softmax(z/τ) (N×C, float32) of
// teacher logits after the calibrator cal (nil for the raw arm); see
// CalibratedLogits.
func Targets(logits []float64, c int, tau float64, cal any) ([]float32, error) {
	z, err := CalibratedLogits(logits, c, cal)
	if err != nil {
		return nil, err
	}
	return softTargets(z, c, tau)
}

// KDLoss returns the mean Hinton KD loss of a batch in pure Go — the
// reference the trainer's graph is tested against — and its gradient with
// respect to the student logits s (N×C):
//
//	L = (1/N) Σ_i [ ceW · (−log softmax(s_i)_{y_i}) + kdW · τ² · Σ_k p_ik (log p_ik − log softmax(s_i/τ)_k) ]
//	∂L/∂s_ik = (1/N) [ ceW · (softmax(s_i)_k − 1[k=y_i]) + kdW · τ · (softmax(s_i/τ)_k − p_ik) ]
//
// Terms with p_ik = 0 contribute 0 to the KL (0·log 0 = 0).
func KDLoss(s []float64, p []float32, labels []int, c int, tau, ceW, kdW float64) (loss float64, grad []float64) {
	n := len(labels)
	if len(s) != n*c || len(p) != n*c {
		panic("distill: slice lengths do not match N×C")
	}
	grad = make([]float64, len(s))
	q1 := metrics.Softmax(nil, s, c)
	st := make([]float64, len(s))
	for i, v := range s {
		st[i] = v / tau
	}
	qt := metrics.Softmax(nil, st, c)
	for i := 0; i < n; i++ {
		lseT := metrics.LogSumExp(st[i*c : (i+1)*c])
		lse1 := metrics.LogSumExp(s[i*c : (i+1)*c])
		loss += ceW * (lse1 - s[i*c+labels[i]])
		for k := 0; k < c; k++ {
			j := i*c + k
			pk := float64(p[j])
			if pk > 0 {
				loss += kdW * tau * tau * pk * (math.Log(pk) - (st[j] - lseT))
			}
			g := kdW * tau * (qt[j] - pk)
			g += ceW * q1[j]
			if k == labels[i] {
				g -= ceW
			}
			grad[j] = g / float64(n)
		}
	}
	return loss / float64(n), grad
}

// Formula renders the whole resolved loss of a KD student, e.g.
// "loss = 0.1·CE(y, s) + 0.9·4²·KL(softmax(t/4) ‖ softmax(s/4))".
// teacher names the teacher's logits after calibration, e.g. "t/1.83".
func Formula(l Loss, ceW, kdW, tau float64, teacher string) string {
	if teacher == "" {
		teacher = "t"
	}
	return fmt.Sprintf("loss = %s·CE(y, s) + %s·%s", fmtG(ceW), fmtG(kdW), l.Formula(tau, teacher))
}
