// Package calibrate fits post-hoc calibrators on a classifier's validation
// logits and applies them to other logits. It works on stored logits only
// (row-major N×C float64 slices) and never touches a model.
//
// # Methods
//
// Every method implements Calibrator and is made by New(name, Options),
// the same constructor for all (names as in config.Calibrators):
//
//	none      identity: softmax(z)
//	temp      temperature scaling, softmax(z/T) (Guo et al. 2017): T minimises the
//	          validation NLL, found by bracketing and safeguarded Newton on log T
//	vector    vector scaling, softmax(a ⊙ z + b) (Guo et al. 2017): Newton's method with
//	          the exact 2C×2C Hessian (gonum/optimize.Newton) from a = 1/T, b = 0
//	matrix    matrix scaling, softmax(W z + b) (Guo et al. 2017), L2 penalty
//	          Options.MatrixL2 on the off-diagonal of W and on b (as Kull et al. 2019's
//	          ODIR): gonum/optimize LBFGS from W = I/T, b = 0, the gradient as two GEMMs
//	          (package dgemm, or OpenBLAS with -tags openblas)
//	hist      histogram binning of the top-label confidence (Zadrozny & Elkan 2001;
//	          Guo et al. 2017): Options.HistBins equal-width bins
//	isotonic  isotonic regression of correctness on the top-label confidence
//	          (Zadrozny & Elkan 2002), pool-adjacent-violators
//
// vector and matrix stop as scipy's L-BFGS-B does, on max |gradient| ≤ 1e-6
// or a relative decrease of the objective ≤ 1e-12 in one iteration; a fit
// that stops otherwise (iteration limit, line-search failure) reports
// Converged false. Every iterative fit takes a context and returns its
// error (wrapping context.Canceled) within one pass over the data once it
// is cancelled.
//
// # Using a fitted calibrator
//
// Probs returns calibrated probabilities for every method. The logit-map
// methods (none, temp, vector, matrix) also implement LogitMapper: their
// calibrated probabilities are softmax(MapLogits(z)), so code that needs
// calibrated logits — a distiller applying its own KD temperature τ — can
// use softmax(MapLogits(z)/τ). For temp that is softmax(z/(T·τ)): every
// calibrator's Describe().Temperature gives the T by which it divides the
// logits (temp; 0 for the others), so a distiller can record the
// effective temperature T·τ without knowing the method. hist and isotonic only recalibrate the top-label
// confidence q; their Probs return softmax(β·z) with a per-example β > 0
// chosen so that the top probability equals q — exactly, bit for bit, so
// that any reader binning the top probability (kdcal's ECE, numpy,
// sklearn) bins the calibrated confidence itself, also when it sits on a
// bin edge. Scaling the logits keeps the order of all classes, so the
// predicted class never changes (unlike
// spreading 1 − q over the other classes in proportion to their
// probabilities, which lets a runner-up overtake the top class whenever
// q < 1/2 and cost several points of accuracy on hard data), and the other
// classes keep the relative shape the model gave them — a per-example
// temperature, which is also what a distiller expects of soft targets. The
// reachable range is (1/C, 1/k] for k classes tied at the top: q ≤ 1/C
// (validation accuracy at or below chance) gives softmax(1e-9·z), uniform
// to within 1e-9 but still ordered, and q ≥ 1/k gives 1/k on each tied class.
//
// # Parameters and results
//
// Marshal/Unmarshal (and Save/Load for files) store a fitted calibrator as
// JSON: {"method": ..., "params": {...}, "fit": Report}. Result evaluates
// a fitted calibrator on a validation and an optional test split and
// returns the artifact.CalibrationResult that `kdcal calibrate` stores and
// prints.
//
// Input shapes are the caller's responsibility: Fit and Probs panic with a
// "calibrate:" prefix on length mismatches, labels outside [0, C), or
// Probs with another C than the calibrator was fitted on (check Classes()
// first when C comes from a file). Fit returns an error only when the
// optimiser produces no usable result or ctx is cancelled.
package calibrate

import (
	"context"
	"fmt"
	"strings"

	"github.com/kdcal/kdcal/internal/artifact"
	"github.com/kdcal/kdcal/internal/config"
)

// Calibrator is a post-hoc calibration method.
type Calibrator interface {
	// Method returns the registry name, e.g. "temp".
	Method() string
	// Fit fits the parameters on validation logits (N×C, row-major) and
	// labels in [0, C), replacing any earlier fit.
	Fit(ctx context.Context, logits []float64, labels []int, c int) (Report, error)
	// Probs returns the calibrated probabilities (N×C) of logits.
	Probs(logits []float64, c int) []float64
	// Classes returns the number of classes of the fit (0 before Fit).
	Classes() int
	// Validate reports whether the parameters are usable, e.g. after
	// decoding them from JSON.
	Validate() error
	// Describe says what the fitted parameters are and how much the
	// calibrator softens the logits (describe.go).
	Describe() Description
}

// LogitMapper is implemented by calibrators whose probabilities are
// softmax(MapLogits(z)): none, temp, vector and matrix.
type LogitMapper interface {
	// MapLogits returns the calibrated logits (N×C) of logits.
	MapLogits(logits []float64, c int) []float64
}

// Options configures the methods that have settings. All methods take the
// same Options so that callers never special-case one.
type Options struct {
	MatrixL2 float64 // matrix: L2 strength on the off-diagonal of W and on b (≥ 0)
	HistBins int     // hist: number of equal-width confidence bins (≥ 1)
}

// OptionsFrom returns the Options of a calibration config section.
func OptionsFrom(c config.Calibration) Options {
	return Options{MatrixL2: c.MatrixL2, HistBins: c.HistBins}
}

// Report records how a fit went. It is stored with the parameters and as
// CalibrationResult.Fit.
type Report = artifact.Fit

type method struct {
	name string
	make func(Options) Calibrator
}

// registry lists the methods in the order of config.Calibrators.
var registry = []method{
	{"none", func(Options) Calibrator { return &None{} }},
	{"temp", func(Options) Calibrator { return &Temp{} }},
	{"vector", func(Options) Calibrator { return &Vector{} }},
	{"matrix", func(o Options) Calibrator { return &Matrix{L2: o.MatrixL2} }},
	{"hist", func(o Options) Calibrator { return &Hist{Bins: o.HistBins} }},
	{"isotonic", func(Options) Calibrator { return &Isotonic{} }},
}

// Methods returns the registered method names.
func Methods() []string {
	names := make([]string, len(registry))
	for i, m := range registry {
		names[i] = m.name
	}
	return names
}

// New returns an unfitted calibrator of the named method.
func New(name string, opts Options) (Calibrator, error) {
	for _, m := range registry {
		if m.name == name {
			if opts.MatrixL2 < 0 {
				return nil, fmt.Errorf("calibrate: matrix L2 strength %v must be ≥ 0", opts.MatrixL2)
			}
			if name == "hist" && opts.HistBins < 1 {
				return nil, fmt.Errorf("calibrate: hist needs at least 1 bin, got %d", opts.HistBins)
			}
			return m.make(opts), nil
		}
	}
	return nil, fmt.Errorf("unknown calibration method %q: use one of %s", name, strings.Join(Methods(), ", "))
}

// checkFit panics unless logits (N×C) and labels match and labels are in [0, C).
func checkFit(logits []float64, labels []int, c int) int {
	if c <= 0 || len(logits) != len(labels)*c {
		panic("calibrate: logits length does not match N×C")
	}
	if len(labels) == 0 {
		panic("calibrate: no examples")
	}
	for _, y := range labels {
		if y < 0 || y >= c {
			panic("calibrate: label outside [0, C)")
		}
	}
	return len(labels)
}

// checkApply panics unless the calibrator is fitted for c classes and logits is N×C.
func checkApply(method string, fitted, c int, logits []float64) {
	if fitted == 0 {
		panic("calibrate: " + method + ": not fitted")
	}
	if c != fitted {
		panic(fmt.Sprintf("calibrate: %s: fitted on %d classes, applied to %d", method, fitted, c))
	}
	if len(logits)%c != 0 {
		panic("calibrate: logits length is not a multiple of C")
	}
}
