package calibrate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/kdcal/kdcal/internal/metrics"
)

// Isotonic is isotonic-regression calibration of the top-label confidence
// (Zadrozny & Elkan 2002; Niculescu-Mizil & Caruana 2005): the
// non-decreasing function of the confidence closest in squared error to
// validation correctness (1 correct, 0 wrong), found with the
// pool-adjacent-violators algorithm (Ayer et al. 1955). As in scikit-learn's
// IsotonicRegression(out_of_bounds="clip"), equal confidences are pooled
// first, the fit is kept at its breakpoints X (each pooled block's lowest
// and highest confidence) with values Y, new confidences are interpolated
// linearly between breakpoints with numpy.interp's formula (so kdcal and
// sklearn give the same float64) and clipped to [X_0, X_last]. A new
// confidence inside a pooled block gets the block's value exactly. The full
// probability vector is built as described in the package doc.
//
// PAV is hand-written: gonum has no isotonic regression.
type Isotonic struct {
	C int       `json:"classes"`
	X []float64 `json:"x"` // breakpoints, ascending confidences
	Y []float64 `json:"y"` // calibrated confidence at each breakpoint, non-decreasing
}

// Method returns "isotonic".
func (*Isotonic) Method() string { return "isotonic" }

// Classes returns the number of classes of the fit.
func (s *Isotonic) Classes() int { return s.C }

// Fit runs PAV on the validation (confidence, correct) pairs.
func (s *Isotonic) Fit(_ context.Context, logits []float64, labels []int, c int) (Report, error) {
	checkFit(logits, labels, c)
	conf, correct := topLabel(logits, labels, c)
	y := make([]float64, len(correct))
	for i, ok := range correct {
		if ok {
			y[i] = 1
		}
	}
	s.C = c
	s.X, s.Y = pav(conf, y)
	return Report{
		Optimizer:   fmt.Sprintf("pool-adjacent-violators, %d breakpoints", len(s.X)),
		Converged:   true,
		Evaluations: 1,
		NLLBefore:   metrics.NLL(logits, labels, c, 1),
		NLLAfter:    metrics.NLLProbs(s.Probs(logits, c), labels, c),
	}, nil
}

// pav returns the breakpoints of the non-decreasing least-squares fit of
// y on x (equal weights).
func pav(x, y []float64) (bx, by []float64) {
	order := make([]int, len(x))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(x[a], x[b]) })
	type block struct {
		lo, hi float64 // lowest and highest x in the block
		sum, w float64 // Σ y and number of points
	}
	mean := func(b block) float64 { return b.sum / b.w }
	var st []block
	for j := 0; j < len(order); {
		// Pool the points with equal x into one weighted point first.
		b := block{lo: x[order[j]], hi: x[order[j]]}
		for ; j < len(order) && x[order[j]] == b.lo; j++ {
			b.sum, b.w = b.sum+y[order[j]], b.w+1
		}
		st = append(st, b)
		// Merge while the last two blocks violate monotonicity.
		for len(st) > 1 && mean(st[len(st)-2]) >= mean(st[len(st)-1]) {
			top := st[len(st)-1]
			st = st[:len(st)-1]
			prev := &st[len(st)-1]
			prev.hi, prev.sum, prev.w = top.hi, prev.sum+top.sum, prev.w+top.w
		}
	}
	for _, b := range st {
		bx, by = append(bx, b.lo), append(by, mean(b))
		if b.hi > b.lo {
			bx, by = append(bx, b.hi), append(by, mean(b))
		}
	}
	return bx, by
}

// at evaluates the fitted function at confidence v.
func (s *Isotonic) at(v float64) float64 {
	n := len(s.X)
	switch {
	case v <= s.X[0]:
		return s.Y[0]
	case v >= s.X[n-1]:
		return s.Y[n-1]
	}
	j, _ := slices.BinarySearch(s.X, v) // X[j-1] < v <= X[j]
	if s.X[j] == v {
		return s.Y[j]
	}
	x0, x1, y0, y1 := s.X[j-1], s.X[j], s.Y[j-1], s.Y[j]
	// numpy.interp's formula (sklearn's predict), rounded as numpy rounds
	// it: the conversion keeps the compiler from fusing it into an FMA.
	slope := (y1 - y0) / (x1 - x0)
	return float64(slope*(v-x0)) + y0
}

// Probs returns softmax(logits) with the top-label confidence replaced by
// the isotonic fit.
func (s *Isotonic) Probs(logits []float64, c int) []float64 {
	checkApply("isotonic", s.C, c, logits)
	return topLabelProbs(logits, c, s.at)
}

// Validate checks that breakpoints ascend and values are non-decreasing probabilities.
func (s *Isotonic) Validate() error {
	if s.C < 1 || len(s.X) == 0 || len(s.X) != len(s.Y) {
		return errors.New("need classes ≥ 1 and as many breakpoint values as breakpoints (≥ 1)")
	}
	for j := range s.X {
		if math.IsNaN(s.X[j]) || !(s.Y[j] >= 0 && s.Y[j] <= 1) {
			return fmt.Errorf("breakpoint %d: (%v, %v) is not a confidence and a probability", j, s.X[j], s.Y[j])
		}
		if j > 0 && (s.X[j] < s.X[j-1] || s.Y[j] < s.Y[j-1]) {
			return fmt.Errorf("breakpoint %d: x and y must be non-decreasing", j)
		}
	}
	return nil
}
