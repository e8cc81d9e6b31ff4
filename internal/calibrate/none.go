package calibrate

import (
	"context"
	"errors"

	"github.com/kdcal/kdcal/internal/metrics"
)

// None is the identity calibrator, softmax(z): the "before" of every
// comparison, and a way to evaluate raw logits through the same pipeline.
type None struct {
	C int `json:"classes"`
}

// Method returns "none".
func (*None) Method() string { return "none" }

// Classes returns the number of classes of the fit.
func (n *None) Classes() int { return n.C }

// Fit records C; there is nothing to fit.
func (n *None) Fit(_ context.Context, logits []float64, labels []int, c int) (Report, error) {
	checkFit(logits, labels, c)
	n.C = c
	nll := metrics.NLL(logits, labels, c, 1)
	return Report{Optimizer: "none (identity)", Converged: true, Evaluations: 1, NLLBefore: nll, NLLAfter: nll}, nil
}

// MapLogits returns a copy of logits.
func (n *None) MapLogits(logits []float64, c int) []float64 {
	checkApply("none", n.C, c, logits)
	return append([]float64(nil), logits...)
}

// Probs returns softmax(logits).
func (n *None) Probs(logits []float64, c int) []float64 {
	checkApply("none", n.C, c, logits)
	return metrics.Softmax(nil, logits, c)
}

// Validate checks C.
func (n *None) Validate() error {
	if n.C < 1 {
		return errors.New("classes must be ≥ 1")
	}
	return nil
}
