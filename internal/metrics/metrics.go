// Package metrics computes accuracy, proper scoring rules and calibration
// errors of classifiers from logits or probabilities. It has no I/O and no
// training dependency: it works on plain row-major slices, N examples × C
// classes. Length mismatches are programmer errors and panic with a
// "metrics:" prefix; labels outside [0, C) and empty inputs panic too
// (validate input first).
//
// Every reported number names its variant in its JSON key (see Summary):
//
//	accuracy         top-1 accuracy (argmax, first index on ties)
//	nll              mean negative log-likelihood of the true class, in nats
//	brier            multiclass Brier score, mean over examples of Σ_k (p_k − 1[y=k])²
//	ece              top-label ECE (ℓ1), M equal-width bins (lo, hi], first bin also takes 0:
//	                 Σ_b (n_b/N) |acc_b − conf_b|
//	mce              maximum calibration error (ℓ∞) over the same non-empty bins
//	rmsce            top-label RMS calibration error (plug-in ℓ2), the same bins:
//	                 sqrt(Σ_b (n_b/N) (acc_b − conf_b)²)
//	ece_debiased_l2  top-label ℓ2 calibration error, the same bins, debiased as in Kumar et
//	                 al. 2019: sqrt(max(Σ_b (n_b/N) [(acc_b − conf_b)² − acc_b(1 − acc_b)/(n_b − 1)], 0)),
//	                 bins with n_b < 2 contributing 0 (their library defaults to equal-mass bins;
//	                 kdcal uses the equal-width bins of ece so that it is rmsce debiased)
//	ece_em           top-label ECE, M equal-mass (adaptive) bins
//	cw_ece           classwise ECE, M equal-width bins per class, averaged over classes
//	bins             M (15 by default, as in Guo et al. 2017)
//
// Top-label means: the confidence of an example is its largest probability
// and it counts as correct when that class (the first on ties) is the label;
// n_b, acc_b and conf_b are a bin's count, accuracy and mean confidence.
// All values are fractions, not percent. Long loops run on all CPUs in
// fixed chunks reduced in a fixed order (package kernel), so results do not
// depend on GOMAXPROCS. Bootstrap gives a seeded percentile confidence
// interval for any metric.
package metrics

import (
	"math"

	"github.com/kdcal/kdcal/internal/metrics/kernel"
)

const (
	badShape = "metrics: data length does not match N×C"
	badLabel = "metrics: label outside [0, C)"
	noRows   = "metrics: no examples"
)

// DefaultBins is the number of equal-width bins used for ECE and MCE unless
// configured otherwise: 15, as in Guo et al. 2017 and gpleiss/temperature_scaling.
const DefaultBins = 15

// Summary is the standard set of metrics of one split. Fractions, not percent.
type Summary struct {
	N             int     `json:"n"`               // number of examples
	Accuracy      float64 `json:"accuracy"`        // top-1 accuracy
	NLL           float64 `json:"nll"`             // mean negative log-likelihood of the true class (nats)
	Brier         float64 `json:"brier"`           // mean over examples of Σ_k (p_k − 1[y=k])²
	ECE           float64 `json:"ece"`             // top-label ECE, Bins equal-width bins (lo, hi] (Guo et al. 2017)
	MCE           float64 `json:"mce"`             // max over non-empty equal-width bins of |acc − conf|
	RMSCE         float64 `json:"rmsce"`           // top-label RMS calibration error, the same bins
	ECEDebiasedL2 float64 `json:"ece_debiased_l2"` // debiased top-label ℓ2 calibration error (Kumar et al. 2019), the same bins
	ECEEM         float64 `json:"ece_em"`          // top-label ECE, Bins equal-mass bins
	CWECE         float64 `json:"cw_ece"`          // classwise ECE, Bins equal-width bins, averaged over classes
	Bins          int     `json:"bins"`            // number of bins of the binned metrics
}

// Softmax writes the row-wise softmax of logits (N×C) into dst and returns
// dst, allocating it when nil. It subtracts each row's maximum before
// exponentiating, so it never overflows.
//
//	p_ik = exp(z_ik − m_i) / Σ_j exp(z_ij − m_i),  m_i = max_j z_ij
func Softmax(dst, logits []float64, c int) []float64 {
	if c <= 0 || len(logits)%c != 0 {
		panic(badShape)
	}
	if dst == nil {
		dst = make([]float64, len(logits))
	}
	if len(dst) != len(logits) {
		panic(badShape)
	}
	kernel.Map(len(logits)/c, c, func(lo, hi int) struct{} {
		for i := lo; i < hi; i++ {
			softmaxRow(dst[i*c:(i+1)*c], logits[i*c:(i+1)*c])
		}
		return struct{}{}
	})
	return dst
}

// softmaxRow writes softmax(row) into out and returns the row's maximum m
// and log Σ_k exp(row_k − m), so that log p_k = row_k − m − logS.
func softmaxRow(out, row []float64) (m, logS float64) {
	m = rowMax(row)
	kernel.ExpSub(out, row, m)
	var s float64
	for _, e := range out {
		s += e
	}
	inv := 1 / s
	for k := range out {
		out[k] *= inv
	}
	return m, math.Log(s)
}

// rowMax returns max(row). Four running maxima with the builtin max (which
// compiles to branch-free code, unlike a compare-and-branch or math.Max,
// a call) keep the dependency chain short on long rows.
func rowMax(row []float64) float64 {
	m0 := row[0]
	m1, m2, m3 := m0, m0, m0
	i := 1
	for ; i+4 <= len(row); i += 4 {
		m0, m1, m2, m3 = max(m0, row[i]), max(m1, row[i+1]), max(m2, row[i+2]), max(m3, row[i+3])
	}
	for ; i < len(row); i++ {
		m0 = max(m0, row[i])
	}
	return max(max(m0, m1), max(m2, m3))
}

// LogSumExp returns log Σ_k exp(row_k), computed stably.
func LogSumExp(row []float64) float64 {
	m := math.Inf(-1)
	for _, z := range row {
		m = math.Max(m, z)
	}
	if math.IsInf(m, -1) {
		return m
	}
	var s float64
	for _, z := range row {
		s += kernel.Exp(z - m)
	}
	return m + math.Log(s)
}

// NLL returns the mean negative log-likelihood of the labels under
// softmax(logits/T) computed stably from logits:
//
//	NLL = (1/N) Σ_i [ log Σ_k exp((z_ik − m_i)/T) − (z_{i,y_i} − m_i)/T ],  m_i = max_k z_ik
//
// T = 1 gives the plain NLL (cross-entropy), in nats.
func NLL(logits []float64, labels []int, c int, t float64) float64 {
	n := checkShape(logits, labels, c)
	if !(t > 0) {
		panic("metrics: temperature must be positive")
	}
	beta := 1 / t
	parts := kernel.Map(n, c, func(lo, hi int) float64 {
		var s float64
		w := make([]float64, c)
		for i := lo; i < hi; i++ {
			row := logits[i*c : (i+1)*c]
			m := rowMax(row)
			kernel.ExpScaled(w, row, m, beta)
			var z float64
			for _, e := range w {
				z += e
			}
			s += math.Log(z) - (row[labels[i]]-m)*beta
		}
		return s
	})
	return kernel.Sum(parts) / float64(n)
}

// nllFloor is the probability below which NLLProbs and EvaluateProbs clamp
// p_{i,y_i}, so that a calibrator that outputs an exact 0 gives a large
// finite value (−log 1e-12 ≈ 27.6) instead of +Inf.
const nllFloor = 1e-12

// NLLProbs returns the mean negative log-likelihood of the labels under
// probabilities (N×C): −(1/N) Σ_i log max(p_{i,y_i}, 1e-12).
func NLLProbs(probs []float64, labels []int, c int) float64 {
	n := checkShape(probs, labels, c)
	parts := kernel.Map(n, c, func(lo, hi int) float64 {
		var s float64
		for i := lo; i < hi; i++ {
			s -= math.Log(math.Max(probs[i*c+labels[i]], nllFloor))
		}
		return s
	})
	return kernel.Sum(parts) / float64(n)
}

// Accuracy returns the fraction of rows whose argmax (first on ties) equals the label.
func Accuracy(probs []float64, labels []int, c int) float64 {
	n := checkShape(probs, labels, c)
	parts := kernel.Map(n, c, func(lo, hi int) int {
		var hit int
		for i := lo; i < hi; i++ {
			if Argmax(probs[i*c:(i+1)*c]) == labels[i] {
				hit++
			}
		}
		return hit
	})
	var hit int
	for _, h := range parts {
		hit += h
	}
	return float64(hit) / float64(n)
}

// Brier returns the multiclass Brier score (Brier 1950):
//
//	(1/N) Σ_i Σ_k (p_ik − 1[y_i = k])²
//
// It ranges over [0, 2]. (Some libraries report half of it, or only the
// top-label term; this is the original multiclass definition.)
func Brier(probs []float64, labels []int, c int) float64 {
	n := checkShape(probs, labels, c)
	parts := kernel.Map(n, c, func(lo, hi int) float64 {
		var s float64
		for i := lo; i < hi; i++ {
			s += brierRow(probs[i*c:(i+1)*c], labels[i])
		}
		return s
	})
	return kernel.Sum(parts) / float64(n)
}

func brierRow(row []float64, y int) float64 {
	var s float64
	for _, p := range row {
		s += p * p
	}
	// (p_y − 1)² = p_y² − 2p_y + 1: correct the true-class term.
	return s - 2*row[y] + 1
}

// Argmax returns the index of the largest value, the first one on ties.
func Argmax(row []float64) int {
	best, m := 0, row[0]
	for k, v := range row {
		if v > m {
			best, m = k, v
		}
	}
	return best
}

// TopLabel returns each row's confidence max_k p_ik and whether its argmax
// (first on ties) is correct.
func TopLabel(probs []float64, labels []int, c int) (conf []float64, correct []bool) {
	n := checkShape(probs, labels, c)
	conf = make([]float64, n)
	correct = make([]bool, n)
	kernel.Map(n, c, func(lo, hi int) struct{} {
		for i := lo; i < hi; i++ {
			row := probs[i*c : (i+1)*c]
			k := Argmax(row)
			conf[i] = row[k]
			correct[i] = k == labels[i]
		}
		return struct{}{}
	})
	return conf, correct
}

func checkShape(data []float64, labels []int, c int) int {
	if c <= 0 || len(data) != len(labels)*c {
		panic(badShape)
	}
	if len(labels) == 0 {
		panic(noRows)
	}
	for _, y := range labels {
		if y < 0 || y >= c {
			panic(badLabel)
		}
	}
	return len(labels)
}
