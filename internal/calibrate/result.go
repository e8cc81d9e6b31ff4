package calibrate

import (
	"context"
	"encoding/json"

	"github.com/kdcal/kdcal/internal/artifact"
	"github.com/kdcal/kdcal/internal/metrics"
)

// Split is one split's logits (N×C, row-major) and labels in [0, C).
type Split struct {
	Logits []float64
	Labels []int
	C      int
}

// Run makes a calibrator of the named method, fits it on val and evaluates
// it on val and, when test != nil, on test (see Result). A cancelled ctx
// stops the fit within one pass over val; the error then wraps ctx.Err().
func Run(ctx context.Context, method string, opts Options, val Split, test *Split, bins int) (Calibrator, artifact.CalibrationResult, error) {
	cal, err := New(method, opts)
	if err != nil {
		return nil, artifact.CalibrationResult{}, err
	}
	fit, err := cal.Fit(ctx, val.Logits, val.Labels, val.C)
	if err != nil {
		return nil, artifact.CalibrationResult{}, err
	}
	return cal, Result(cal, fit, val, test, bins), nil
}

// Result evaluates a fitted calibrator: every metric of metrics.Summary and
// the reliability bins (bins equal-width bins) before (softmax of the raw
// logits) and after calibration, on val and, when test != nil, on test.
// For logit-map methods the "after" NLL is computed from the mapped logits
// (exact log-softmax); for hist and isotonic from the probabilities, with
// the 1e-12 floor of metrics.EvaluateProbs.
func Result(cal Calibrator, fit Report, val Split, test *Split, bins int) artifact.CalibrationResult {
	params, err := json.Marshal(cal)
	if err != nil {
		panic("calibrate: " + err.Error()) // calibrators are plain structs of numbers
	}
	r := artifact.CalibrationResult{
		Method:    cal.Method(),
		Params:    params,
		Softening: cal.Describe().Temperature,
		Fit:       fit,
		Bins:      bins,
		Val:       evaluateSplit(cal, val, bins),
	}
	if test != nil {
		t := evaluateSplit(cal, *test, bins)
		r.Test = &t
	}
	return r
}

func evaluateSplit(cal Calibrator, s Split, bins int) artifact.SplitResult {
	var r artifact.SplitResult
	r.Before, r.ReliabilityBefore = metrics.EvaluateReliability(s.Logits, s.Labels, s.C, bins)
	if lm, ok := cal.(LogitMapper); ok {
		r.After, r.ReliabilityAfter = metrics.EvaluateReliability(lm.MapLogits(s.Logits, s.C), s.Labels, s.C, bins)
	} else {
		r.After, r.ReliabilityAfter = metrics.EvaluateProbsReliability(cal.Probs(s.Logits, s.C), s.Labels, s.C, bins)
	}
	return r
}
