package metrics

import (
	"math"

	"github.com/kdcal/kdcal/internal/metrics/kernel"
)

// Evaluate computes every metric of Summary from logits (N×C) at
// temperature 1, with bins bins for ece, mce, ece_em and cw_ece. NLL comes
// from the log-softmax of the logits (exact, no clamping); the other metrics
// from softmax(logits).
func Evaluate(logits []float64, labels []int, c, bins int) Summary {
	s, _ := evaluate(logits, nil, labels, c, bins)
	return s
}

// EvaluateReliability is Evaluate plus the top-label reliability bins
// (the same bins as ece and mce).
func EvaluateReliability(logits []float64, labels []int, c, bins int) (Summary, []Bin) {
	return evaluate(logits, nil, labels, c, bins)
}

// EvaluateProbs computes every metric of Summary from probabilities (N×C).
// NLL is computed as −mean log p_{i,y_i}, with p clamped below at 1e-12 so a
// calibrator that outputs an exact 0 gives a large finite value (see NLLProbs).
func EvaluateProbs(probs []float64, labels []int, c, bins int) Summary {
	s, _ := evaluate(nil, probs, labels, c, bins)
	return s
}

// EvaluateProbsReliability is EvaluateProbs plus the top-label reliability bins.
func EvaluateProbsReliability(probs []float64, labels []int, c, bins int) (Summary, []Bin) {
	return evaluate(nil, probs, labels, c, bins)
}

// evalAcc is one chunk's share of every sum behind Summary.
type evalAcc struct {
	nll, brier float64
	hits       int
	rel        relAcc
	cw         cwAcc
}

// evaluate computes Summary in one pass over the rows (plus a sort for
// ece_em). With logits != nil it computes the probabilities itself.
func evaluate(logits, probs []float64, labels []int, c, bins int) (Summary, []Bin) {
	src := probs
	if logits != nil {
		src = logits
	}
	n := checkShape(src, labels, c)
	bn := NewBinner(bins)
	conf := make([]float64, n)
	correct := make([]bool, n)
	parts := kernel.Map(n, c, func(lo, hi int) evalAcc {
		a := evalAcc{rel: newRelAcc(bins), cw: newCWAcc(c, bins)}
		var row []float64
		if logits != nil {
			row = make([]float64, c)
		}
		for i := lo; i < hi; i++ {
			y := labels[i]
			if logits != nil {
				m, logS := softmaxRow(row, logits[i*c:(i+1)*c])
				a.nll += logS - (logits[i*c+y] - m)
			} else {
				row = probs[i*c : (i+1)*c]
				a.nll -= math.Log(math.Max(row[y], nllFloor))
			}
			k := Argmax(row)
			conf[i], correct[i] = row[k], k == y
			if correct[i] {
				a.hits++
			}
			a.brier += brierRow(row, y)
			a.rel.add(bn.Index(row[k]), row[k], correct[i])
			a.cw.addRow(row, y, bn)
		}
		return a
	})
	total := evalAcc{rel: newRelAcc(bins), cw: newCWAcc(c, bins)}
	for _, p := range parts {
		total.nll += p.nll
		total.brier += p.brier
		total.hits += p.hits
		total.rel.merge(p.rel)
		total.cw.merge(p.cw)
	}
	rel := total.rel.bins(bn)
	fn := float64(n)
	return Summary{
		N:             n,
		Accuracy:      float64(total.hits) / fn,
		NLL:           total.nll / fn,
		Brier:         total.brier / fn,
		ECE:           ECEFromBins(rel, n),
		MCE:           MCEFromBins(rel),
		RMSCE:         RMSCEFromBins(rel, n),
		ECEDebiasedL2: ECEDebiasedL2FromBins(rel, n),
		ECEEM:         ECEEqualMass(conf, correct, bins),
		CWECE:         total.cw.value(n, c),
		Bins:          bins,
	}, rel
}
