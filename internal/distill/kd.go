// Package distill turns a teacher's stored logits into distillation targets
// for each arm of the study and defines the KD loss the trainer optimises
// (Hinton et al. 2015, "Distilling the Knowledge in a Neural Network"):
//
//	loss = ce_weight · CE(y, s) + kd_weight · τ² · KL(p_T ‖ softmax(s/τ))
//	KL(p_T ‖ q) = Σ_k p_T,k (log p_T,k − log q_k), summed over classes, averaged over the batch
//
// where s are the student's logits and p_T the teacher's soft targets:
//
//	raw:        p_T = softmax(t/τ)                      (t: the teacher's logits)
//	calibrated: p_T = softmax(g(t)/τ)                   for calibrators that map logits (g(t) = t/T_cal for temp,
//	                                                     so the effective softening is τ·T_cal)
//	            p_T = softmax(log p_cal(t)/τ)           for calibrators that output probabilities (hist, isotonic):
//	                                                     their probabilities are treated as softmax(log p_cal), i.e.
//	                                                     p_T ∝ p_cal^(1/τ); at τ = 1 the student matches p_cal itself.
//	scratch:    no teacher, CE(y, s) only (same initialisation and batch order as the KD arms of that seed).
//
// The τ² factor keeps the gradient magnitude of the soft term comparable
// across temperatures (Hinton et al. 2015, §2). The teacher is never run
// during distillation: targets come from its stored train-split logits,
// looked up by example position.
package distill

import (
	"errors"
	"fmt"
	"math"
	"strconv"

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

// Targets returns the soft targets p_T (N×C, float32, the trainer's input)
// of teacher logits (N×C) at KD temperature tau, after the calibrator cal
// (nil for the raw arm). A calibrator that maps logits is preferred; one that
// only gives probabilities is used through log p (see the package doc).
func Targets(logits []float64, c int, tau float64, cal any) ([]float32, error) {
	if !(tau > 0) {
		return nil, fmt.Errorf("distill: KD temperature %v must be > 0", tau)
	}
	z := logits
	switch m := cal.(type) {
	case nil:
	case LogitMapper:
		z = m.MapLogits(logits, c)
	case ProbCalibrator:
		p := m.Probs(logits, c)
		z = make([]float64, len(p))
		for i, v := range p {
			z[i] = math.Log(math.Max(v, 1e-12)) // exact zeros would give −Inf logits
		}
	default:
		return nil, fmt.Errorf("distill: calibrator %T neither maps logits nor gives probabilities", cal)
	}
	scaled := make([]float64, len(z))
	for i, v := range z {
		scaled[i] = v / tau
	}
	p := metrics.Softmax(nil, scaled, c)
	out := make([]float32, len(p))
	for i, v := range p {
		if math.IsNaN(v) {
			return nil, errors.New("distill: soft targets contain NaN (non-finite teacher logits?)")
		}
		out[i] = float32(v)
	}
	return out, nil
}

// Loss returns the mean KD loss of a batch in pure Go — the reference the
// trainer's graph is tested against — and its gradient with respect to the
// student logits s (N×C):
//
//	L = (1/N) Σ_i [ ceW · (−log softmax(s_i)_{y_i}) + kdW · τ² · Σ_k p_ik (log p_ik − log softmax(s_i/τ)_k) ]
//	∂L/∂s_ik = (1/N) [ ceW · (softmax(s_i)_k − 1[k=y_i]) + kdW · τ · (softmax(s_i/τ)_k − p_ik) ]
//
// Terms with p_ik = 0 contribute 0 to the KL (0·log 0 = 0).
func Loss(s []float64, p []float32, labels []int, c int, tau, ceW, kdW float64) (loss float64, grad []float64) {
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

// Formula renders the resolved loss, e.g.
// "loss = 0.1·CE(y, s) + 0.9·4²·KL(softmax(t/4) ‖ softmax(s/4))".
// tTransform names the teacher's logits after calibration, e.g. "t/1.83".
func Formula(ceW, kdW, tau float64, tTransform string) string {
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	if tTransform == "" {
		tTransform = "t"
	}
	return fmt.Sprintf("loss = %s·CE(y, s) + %s·%s²·KL(softmax(%s/%s) ‖ softmax(s/%s))",
		f(ceW), f(kdW), f(tau), tTransform, f(tau), f(tau))
}
