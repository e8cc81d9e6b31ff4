package calibrate

import (
	"math"

	"github.com/kdcal/kdcal/internal/metrics"
	"github.com/kdcal/kdcal/internal/metrics/kernel"
)

// topLabelProbs returns, for each row of logits z, the probability vector
// softmax(β·z) whose top-label probability equals q(conf), conf being the
// top-label probability of softmax(z): a per-row temperature 1/β. Scaling
// logits by β > 0 keeps the order of all classes, so the predicted class
// (and every tie) is kept, and the other classes keep the shape the model
// gave them. The achievable range is [1/C, 1/k] for k classes tied at the
// top: q ≤ 1/C gives the uniform vector (β = 0) and q ≥ 1/k puts 1/k on each
// tied top class (β → ∞).
func topLabelProbs(logits []float64, c int, q func(conf float64) float64) []float64 {
	out := make([]float64, len(logits))
	kernel.Map(len(logits)/c, c, func(lo, hi int) struct{} {
		for i := lo; i < hi; i++ {
			retemper(out[i*c:(i+1)*c], logits[i*c:(i+1)*c], q)
		}
		return struct{}{}
	})
	return out
}

// betaFloor stands for the limit β → 0⁺ (uniform probabilities) when the
// calibrated confidence is at or below chance: softmax(1e-9·z) is uniform to
// within 1e-9 yet keeps the order of the classes, so the prediction stays.
const betaFloor = 1e-9

// retemper writes softmax(β·row) into out with β chosen so that its top
// probability is q(top probability of softmax(row)).
//
// With d_k = z_k − max z ≤ 0 and S(β) = Σ_k exp(β d_k), the top probability
// is 1/S(β), so β solves g(β) = log S(β) + log q = 0. g is convex and
// decreasing (g' = E[d] ≤ 0, second derivative Var[d] ≥ 0), so Newton's method started
// left of the root (at β = 1 when g(1) > 0, else at β = 0 where g = log Cq)
// climbs monotonically to it without overshooting.
func retemper(out, row []float64, q func(float64) float64) {
	c := len(row)
	m := row[0]
	for _, v := range row[1:] {
		m = max(m, v)
	}
	ties := 0
	for k, v := range row {
		out[k] = v - m // d_k
		if v == m {
			ties++
		}
	}
	stats := func(beta float64) (s0, s1 float64) {
		for _, d := range out {
			w := kernel.Exp(beta * d)
			s0 += w
			s1 += w * d
		}
		return s0, s1
	}
	s0, _ := stats(1)
	target := q(1 / s0)
	switch {
	case !(target > 1/float64(c)): // at or below chance (or NaN): the β → 0⁺ limit
		beta := betaFloor
		s0, _ := stats(beta)
		for k, d := range out {
			out[k] = kernel.Exp(beta*d) / s0
		}
		return
	case target >= 1/float64(ties): // only reachable in the limit β → ∞
		for k := range out {
			out[k] = 0
			if row[k] == m {
				out[k] = 1 / float64(ties)
			}
		}
		return
	}
	logq := math.Log(target)
	beta := 1.0
	if math.Log(s0)+logq <= 0 {
		beta = 0
	}
	for range 200 {
		s0, s1 := stats(beta)
		g := math.Log(s0) + logq
		step := -g / (s1 / s0) // g' = s1/s0 < 0 here: some d_k < 0
		beta += step
		if !(step > 1e-12*max(1, beta)) {
			break
		}
	}
	s0, _ = stats(beta)
	exact(out, row, m, ties, beta, s0, target)
}

// exact writes softmax(β·row) into out (which holds d_k = row_k − m) with
// the top probability set to exactly q and the other classes rescaled to
// sum to 1 − k·q. Newton leaves 1/S(β) within a few ulps of q; without this
// a reader binning the top probability as the confidence (kdcal's ECE,
// numpy, sklearn) could put a calibrated confidence that sits exactly on a
// bin edge (isotonic and histogram outputs often do: 2/5 = 0.4 = 6/15) one
// ulp into the next bin. Each other class stays strictly below q, so the
// predicted class cannot change.
func exact(out, row []float64, m float64, ties int, beta, s0, q float64) {
	var rest float64
	for k, d := range out {
		if row[k] != m {
			out[k] = kernel.Exp(beta*d) / s0
			rest += out[k]
		}
	}
	top := q
	scale := (1 - float64(ties)*q) / rest
	if !(rest > 0) || math.IsInf(scale, 0) {
		top, scale = 1/float64(ties), 0 // the other classes underflowed: 1/k is all that is representable
	}
	below := math.Nextafter(top, 0)
	for k := range out {
		if row[k] == m {
			out[k] = top
		} else {
			out[k] = min(out[k]*scale, below)
		}
	}
}

// topLabel returns the top-label confidences and correctness of softmax(logits).
func topLabel(logits []float64, labels []int, c int) ([]float64, []bool) {
	return metrics.TopLabel(metrics.Softmax(nil, logits, c), labels, c)
}
