package calibrate

import (
	"context"
	"fmt"
	"math"

	"github.com/kdcal/kdcal/internal/metrics"
)

// Hist is histogram binning of the top-label confidence (Zadrozny & Elkan
// 2001; Guo et al. 2017, §4.1): the confidence max_k softmax(z)_k is binned
// into Bins equal-width bins (lo, hi] (the convention of metrics.BinIndex),
// and the calibrated confidence of a bin is the validation accuracy of the
// examples in it. A bin with no validation example keeps its midpoint
// (lo + hi)/2: with no evidence, it stays close to the uncalibrated
// confidence rather than jumping to the overall accuracy. The full
// probability vector is built as described in the package doc.
type Hist struct {
	C     int       `json:"classes"`
	Bins  int       `json:"bins"`
	Value []float64 `json:"value"` // calibrated confidence of each bin
	Count []int     `json:"count"` // validation examples in each bin
}

// Method returns "hist".
func (*Hist) Method() string { return "hist" }

// Classes returns the number of classes of the fit.
func (h *Hist) Classes() int { return h.C }

// Fit computes each bin's validation accuracy.
func (h *Hist) Fit(_ context.Context, logits []float64, labels []int, c int) (Report, error) {
	checkFit(logits, labels, c)
	if h.Bins < 1 {
		panic("calibrate: hist needs at least 1 bin")
	}
	conf, correct := topLabel(logits, labels, c)
	rel := metrics.Reliability(conf, correct, h.Bins)
	h.C, h.Value, h.Count = c, make([]float64, h.Bins), make([]int, h.Bins)
	empty := 0
	for b, bin := range rel {
		h.Count[b] = bin.Count
		if bin.Count > 0 {
			h.Value[b] = bin.Accuracy
		} else {
			h.Value[b] = (bin.Lo + bin.Hi) / 2
			empty++
		}
	}
	rep := Report{
		Optimizer:   fmt.Sprintf("closed form: accuracy per bin, %d equal-width bins", h.Bins),
		Converged:   true,
		Evaluations: 1,
		NLLBefore:   metrics.NLL(logits, labels, c, 1),
		NLLAfter:    metrics.NLLProbs(h.Probs(logits, c), labels, c),
	}
	if empty > 0 {
		rep.Note = fmt.Sprintf("%d of %d bins had no validation example and keep their midpoint", empty, h.Bins)
	}
	return rep, nil
}

// Probs returns softmax(logits) with the top-label confidence replaced by its bin's value.
func (h *Hist) Probs(logits []float64, c int) []float64 {
	checkApply("hist", h.C, c, logits)
	bn := metrics.NewBinner(h.Bins)
	return topLabelProbs(logits, c, func(conf float64) float64 { return h.Value[bn.Index(conf)] })
}

// Validate checks shapes and that every value is a probability.
func (h *Hist) Validate() error {
	if h.C < 1 || h.Bins < 1 || len(h.Value) != h.Bins || len(h.Count) != h.Bins {
		return fmt.Errorf("need classes ≥ 1, bins ≥ 1 and %d values and counts", h.Bins)
	}
	for _, v := range h.Value {
		if !(v >= 0 && v <= 1) || math.IsNaN(v) {
			return fmt.Errorf("bin value %v is not in [0, 1]", v)
		}
	}
	return nil
}
