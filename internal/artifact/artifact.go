// Package artifact holds the schema of the calibration artifacts the store
// keeps: what calibrate produces and runstore, the report and the commands
// read, so that the calibrator library does not depend on the on-disk
// store. It imports only metrics.
package artifact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"

	"github.com/kdcal/kdcal/internal/metrics"
)

// Fit records how a calibrator's fit went. It is stored with the
// parameters (params.json) and as CalibrationResult.Fit (metrics.json).
type Fit struct {
	Optimizer   string  `json:"optimizer"`             // algorithm, e.g. "bracketing + safeguarded Newton on log T"
	Criterion   string  `json:"criterion,omitempty"`   // stopping rule with its tolerances
	Start       string  `json:"start,omitempty"`       // starting point of an iterative fit, e.g. a warm start
	Iterations  int     `json:"iterations"`            // optimiser iterations (0 for closed-form fits)
	Evaluations int     `json:"evaluations"`           // passes over the validation set
	Converged   bool    `json:"converged"`             // the stopping rule was met (closed-form fits: true)
	Status      string  `json:"status,omitempty"`      // optimiser status, e.g. gonum's GradientThreshold
	Gradient    float64 `json:"gradient"`              // final |gradient| (max-norm) of the objective, 0 if none
	NLLBefore   float64 `json:"nll_before"`            // validation NLL of the raw logits
	NLLAfter    float64 `json:"nll_after"`             // validation NLL after calibration
	Objective   float64 `json:"objective,omitempty"`   // final objective when it differs from nll_after (L2 penalty)
	Note        string  `json:"note,omitempty"`        // anything the user should know, e.g. a bound was hit
	Temperature float64 `json:"temperature,omitempty"` // temp: the fitted T
}

// SplitResult holds one split's metrics before and after calibration.
type SplitResult struct {
	Before            metrics.Summary `json:"before"`
	After             metrics.Summary `json:"after"`
	ReliabilityBefore []metrics.Bin   `json:"reliability_before"`
	ReliabilityAfter  []metrics.Bin   `json:"reliability_after"`
}

// CalibrationResult is metrics.json of a calibration step, and the object
// `kdcal calibrate --json` prints for anyone's logits.
type CalibrationResult struct {
	Method string `json:"method"`
	// Params are the fitted calibrator's parameters, as in params.json
	// (calibrate.Unmarshal decodes them into the calibrator), e.g.
	// {"classes": 10, "temperature": 1.83} for temp.
	Params json.RawMessage `json:"params"`
	// Softening is the temperature by which the calibrator divides every
	// logit (calibrate.Description.Temperature), 0 when it is no single
	// division. Not stored: it is the calibrator's to say, and Temperature
	// reads it back from Params for stored results.
	Softening float64      `json:"-"`
	Fit       Fit          `json:"fit"`
	Bins      int          `json:"bins"` // bins of ece/mce/cw_ece/reliability
	Val       SplitResult  `json:"val"`
	Test      *SplitResult `json:"test,omitempty"`
}

// Temperature returns the calibrator's softening temperature, NaN when it
// has none: Softening when set, else the "temperature" parameter that
// calibrators dividing logits by one temperature store (calibrate.Temp).
func (r *CalibrationResult) Temperature() float64 {
	if r.Softening > 0 {
		return r.Softening
	}
	var p struct {
		Temperature *float64 `json:"temperature"`
	}
	if json.Unmarshal(r.Params, &p) == nil && p.Temperature != nil && *p.Temperature > 0 {
		return *p.Temperature
	}
	return math.NaN()
}

// MarshalJSON writes the result with the keys of params and fit in sorted
// order, as metrics.json has always been written (it held them as JSON
// objects), so that a result's bytes do not depend on field order.
func (r CalibrationResult) MarshalJSON() ([]byte, error) {
	params, err := sortedObject(r.Params)
	if err != nil {
		return nil, fmt.Errorf("calibration result params: %w", err)
	}
	fb, err := marshal(r.Fit)
	if err != nil {
		return nil, err
	}
	fit, err := sortedObject(fb)
	if err != nil {
		return nil, err
	}
	return marshal(struct {
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
		Fit    json.RawMessage `json:"fit,omitempty"`
		Bins   int             `json:"bins"`
		Val    SplitResult     `json:"val"`
		Test   *SplitResult    `json:"test,omitempty"`
	}{r.Method, params, fit, r.Bins, r.Val, r.Test})
}

// sortedObject re-encodes a JSON object with its keys sorted.
func sortedObject(b json.RawMessage) (json.RawMessage, error) {
	if len(b) == 0 {
		return json.RawMessage("null"), nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return marshal(m)
}

// marshal is json.Marshal without HTML escaping: "<" in a fit criterion stays readable.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
