// Package metrics computes accuracy, proper scoring rules and calibration
// errors of classifiers from logits or probabilities. It has no I/O and no
// training dependency: it works on plain row-major slices, N examples × C
// classes. Length mismatches are programmer errors and panic with a
// "metrics:" prefix; labels outside [0, C) panic too (validate input first).
//
// Every reported number names its variant in its JSON key (see Summary).
package metrics

import (
	"math"
)

const (
	badShape = "metrics: data length does not match N×C"
	badLabel = "metrics: label outside [0, C)"
)

// DefaultBins is the number of equal-width bins used for ECE and MCE unless
// configured otherwise: 15, as in Guo et al. 2017 and gpleiss/temperature_scaling.
const DefaultBins = 15

// Summary is the standard set of metrics of one split. Fractions, not percent.
type Summary struct {
	N        int     `json:"n"`        // number of examples
	Accuracy float64 `json:"accuracy"` // top-1 accuracy
	NLL      float64 `json:"nll"`      // mean negative log-likelihood of the true class (nats)
	Brier    float64 `json:"brier"`    // mean over examples of Σ_k (p_k − 1[y=k])²
	ECE      float64 `json:"ece"`      // top-label ECE, Bins equal-width bins (lo, hi] (Guo et al. 2017)
	MCE      float64 `json:"mce"`      // max over non-empty equal-width bins of |acc − conf|
	ECEEM    float64 `json:"ece_em"`   // top-label ECE, Bins equal-mass bins
	CWECE    float64 `json:"cw_ece"`   // classwise ECE, Bins equal-width bins, averaged over classes
	Bins     int     `json:"bins"`     // number of bins of the binned metrics
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
	for i := 0; i < len(logits); i += c {
		row, out := logits[i:i+c], dst[i:i+c]
		m := row[0]
		for _, z := range row[1:] {
			m = math.Max(m, z)
		}
		var s float64
		for k, z := range row {
			out[k] = math.Exp(z - m)
			s += out[k]
		}
		for k := range out {
			out[k] /= s
		}
	}
	return dst
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
		s += math.Exp(z - m)
	}
	return m + math.Log(s)
}

// NLL returns the mean negative log-likelihood of the labels under
// softmax(logits/T) computed stably from logits:
//
//	NLL = (1/N) Σ_i [ logsumexp(z_i/T) − z_{i,y_i}/T ]
//
// T = 1 gives the plain NLL.
func NLL(logits []float64, labels []int, c int, t float64) float64 {
	n := checkShape(logits, labels, c)
	scaled := make([]float64, c)
	var s float64
	for i := 0; i < n; i++ {
		row := logits[i*c : (i+1)*c]
		for k, z := range row {
			scaled[k] = z / t
		}
		s += LogSumExp(scaled) - scaled[labels[i]]
	}
	return s / float64(n)
}

// Accuracy returns the fraction of rows whose argmax (first on ties) equals the label.
func Accuracy(probs []float64, labels []int, c int) float64 {
	n := checkShape(probs, labels, c)
	var hit int
	for i := 0; i < n; i++ {
		if Argmax(probs[i*c:(i+1)*c]) == labels[i] {
			hit++
		}
	}
	return float64(hit) / float64(n)
}

// Brier returns the multiclass Brier score (Brier 1950):
//
//	(1/N) Σ_i Σ_k (p_ik − 1[y_i = k])²
//
// It ranges over [0, 2].
func Brier(probs []float64, labels []int, c int) float64 {
	n := checkShape(probs, labels, c)
	var s float64
	for i := 0; i < n; i++ {
		for k, p := range probs[i*c : (i+1)*c] {
			d := p
			if k == labels[i] {
				d = p - 1
			}
			s += d * d
		}
	}
	return s / float64(n)
}

// Argmax returns the index of the largest value, the first one on ties.
func Argmax(row []float64) int {
	best := 0
	for k, v := range row {
		if v > row[best] {
			best = k
		}
	}
	return best
}

// TopLabel returns each row's confidence max_k p_ik and whether its argmax is correct.
func TopLabel(probs []float64, labels []int, c int) (conf []float64, correct []bool) {
	n := checkShape(probs, labels, c)
	conf = make([]float64, n)
	correct = make([]bool, n)
	for i := 0; i < n; i++ {
		row := probs[i*c : (i+1)*c]
		k := Argmax(row)
		conf[i] = row[k]
		correct[i] = k == labels[i]
	}
	return conf, correct
}

// Evaluate computes every metric of Summary from logits (N×C) at temperature 1.
func Evaluate(logits []float64, labels []int, c, bins int) Summary {
	probs := Softmax(nil, logits, c)
	s := EvaluateProbs(probs, labels, c, bins)
	s.NLL = NLL(logits, labels, c, 1)
	return s
}

// EvaluateProbs computes every metric of Summary from probabilities (N×C).
// NLL is computed as −mean log p_{i,y_i}, with p clamped below at 1e-12 so a
// calibrator that outputs an exact 0 gives a large finite value.
func EvaluateProbs(probs []float64, labels []int, c, bins int) Summary {
	n := checkShape(probs, labels, c)
	conf, correct := TopLabel(probs, labels, c)
	rel := Reliability(conf, correct, bins)
	var nll float64
	for i := 0; i < n; i++ {
		nll -= math.Log(math.Max(probs[i*c+labels[i]], 1e-12))
	}
	return Summary{
		N:        n,
		Accuracy: Accuracy(probs, labels, c),
		NLL:      nll / float64(n),
		Brier:    Brier(probs, labels, c),
		ECE:      ECEFromBins(rel, n),
		MCE:      MCEFromBins(rel),
		ECEEM:    ECEEqualMass(conf, correct, bins),
		CWECE:    ClasswiseECE(probs, labels, c, bins),
		Bins:     bins,
	}
}

func checkShape(data []float64, labels []int, c int) int {
	if c <= 0 || len(data) != len(labels)*c {
		panic(badShape)
	}
	for _, y := range labels {
		if y < 0 || y >= c {
			panic(badLabel)
		}
	}
	return len(labels)
}
