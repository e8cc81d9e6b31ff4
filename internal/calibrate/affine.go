package calibrate

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/optimize"

	"github.com/kdcal/kdcal/internal/metrics"
	"github.com/kdcal/kdcal/internal/metrics/kernel"
)

// Vector is vector scaling (Guo et al. 2017, §4.2): softmax(a ⊙ z + b)
// with a per-class scale a and bias b, starting from a = 1, b = 0 and
// minimising the validation NLL with gonum/optimize's LBFGS (analytic
// gradient). It can change the predicted class.
type Vector struct {
	C     int       `json:"classes"`
	Scale []float64 `json:"scale"` // a, length C
	Bias  []float64 `json:"bias"`  // b, length C
}

// Matrix is matrix scaling (Guo et al. 2017, §4.2): softmax(W z + b) with
// a full C×C matrix W and bias b, starting from W = I, b = 0 and minimising
//
//	NLL(W, b) + λ (Σ_{k≠j} W_kj² + Σ_k b_k²)
//
// with LBFGS, λ = L2 (Options.MatrixL2). Penalising the off-diagonal and
// the bias but not the diagonal shrinks matrix scaling towards vector-like
// maps, as Kull et al. 2019's ODIR; with C² + C parameters it overfits
// small validation sets without it.
type Matrix struct {
	C      int         `json:"classes"`
	L2     float64     `json:"l2"`
	Weight [][]float64 `json:"weight"` // W, C rows of C
	Bias   []float64   `json:"bias"`   // b, length C
}

// Method returns "vector".
func (*Vector) Method() string { return "vector" }

// Method returns "matrix".
func (*Matrix) Method() string { return "matrix" }

// Classes returns the number of classes of the fit.
func (v *Vector) Classes() int { return v.C }

// Classes returns the number of classes of the fit.
func (m *Matrix) Classes() int { return m.C }

// Fit fits a and b; see Vector.
func (v *Vector) Fit(logits []float64, labels []int, c int) (Report, error) {
	checkFit(logits, labels, c)
	theta := make([]float64, 2*c)
	for k := range c {
		theta[k] = 1
	}
	theta, rep, err := fitAffine(affineMap{c: c}, logits, labels, theta, 0)
	if err != nil {
		return rep, err
	}
	v.C, v.Scale, v.Bias = c, theta[:c], theta[c:]
	return rep, nil
}

// Fit fits W and b; see Matrix.
func (m *Matrix) Fit(logits []float64, labels []int, c int) (Report, error) {
	checkFit(logits, labels, c)
	if m.L2 < 0 || math.IsNaN(m.L2) {
		panic("calibrate: matrix L2 strength must be ≥ 0")
	}
	theta := make([]float64, c*c+c)
	for k := range c {
		theta[k*c+k] = 1
	}
	theta, rep, err := fitAffine(affineMap{c: c, full: true}, logits, labels, theta, m.L2)
	if err != nil {
		return rep, err
	}
	m.C, m.Weight, m.Bias = c, make([][]float64, c), theta[c*c:]
	for k := range c {
		m.Weight[k] = theta[k*c : (k+1)*c]
	}
	return rep, nil
}

func (v *Vector) theta() []float64 { return slices.Concat(v.Scale, v.Bias) }

func (m *Matrix) theta() []float64 {
	theta := make([]float64, 0, m.C*m.C+m.C)
	for _, row := range m.Weight {
		theta = append(theta, row...)
	}
	return append(theta, m.Bias...)
}

// MapLogits returns a ⊙ z + b for every row.
func (v *Vector) MapLogits(logits []float64, c int) []float64 {
	checkApply("vector", v.C, c, logits)
	return affineMap{c: c}.mapAll(v.theta(), logits)
}

// MapLogits returns W z + b for every row.
func (m *Matrix) MapLogits(logits []float64, c int) []float64 {
	checkApply("matrix", m.C, c, logits)
	return affineMap{c: c, full: true}.mapAll(m.theta(), logits)
}

// Probs returns softmax(a ⊙ z + b).
func (v *Vector) Probs(logits []float64, c int) []float64 {
	z := v.MapLogits(logits, c)
	return metrics.Softmax(z, z, c)
}

// Probs returns softmax(W z + b).
func (m *Matrix) Probs(logits []float64, c int) []float64 {
	z := m.MapLogits(logits, c)
	return metrics.Softmax(z, z, c)
}

// Validate checks shapes and finiteness.
func (v *Vector) Validate() error {
	if v.C < 1 || len(v.Scale) != v.C || len(v.Bias) != v.C {
		return fmt.Errorf("need classes ≥ 1 and %d scales and biases, got %d and %d", v.C, len(v.Scale), len(v.Bias))
	}
	return finite(v.theta())
}

// Validate checks shapes and finiteness.
func (m *Matrix) Validate() error {
	if m.C < 1 || len(m.Weight) != m.C || len(m.Bias) != m.C {
		return fmt.Errorf("need classes ≥ 1, %d weight rows and %d biases", m.C, m.C)
	}
	for _, row := range m.Weight {
		if len(row) != m.C {
			return fmt.Errorf("weight row of length %d, want %d", len(row), m.C)
		}
	}
	return finite(m.theta())
}

func finite(xs []float64) error {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return errors.New("parameters must be finite")
		}
	}
	return nil
}

// affineMap is z ↦ a ⊙ z + b (vector; θ = [a, b]) or z ↦ W z + b (full;
// θ = [W row-major, b]).
type affineMap struct {
	c    int
	full bool
}

func (am affineMap) dim() int {
	if am.full {
		return am.c*am.c + am.c
	}
	return 2 * am.c
}

// apply writes the map of one row into out.
func (am affineMap) apply(theta, row, out []float64) {
	c := am.c
	if !am.full {
		for k := range c {
			out[k] = theta[k]*row[k] + theta[c+k]
		}
		return
	}
	bias := theta[c*c:]
	for k := range c {
		w := theta[k*c : (k+1)*c]
		s := bias[k]
		for j, z := range row {
			s += w[j] * z
		}
		out[k] = s
	}
}

func (am affineMap) mapAll(theta, logits []float64) []float64 {
	c := am.c
	out := make([]float64, len(logits))
	kernel.Map(len(logits)/c, c, func(lo, hi int) struct{} {
		for i := lo; i < hi; i++ {
			am.apply(theta, logits[i*c:(i+1)*c], out[i*c:(i+1)*c])
		}
		return struct{}{}
	})
	return out
}

type affinePart struct {
	f    float64
	grad []float64
}

// nllGrad returns the mean NLL of softmax(map(z)) and writes its gradient
// with respect to θ into grad. With G_ik = p_ik − 1[k = y_i]:
//
//	vector: ∂/∂a_k = mean_i G_ik z_ik,  ∂/∂b_k = mean_i G_ik
//	matrix: ∂/∂W_kj = mean_i G_ik z_ij, ∂/∂b_k = mean_i G_ik
func (am affineMap) nllGrad(theta, grad, z []float64, y []int) float64 {
	c, d := am.c, am.dim()
	parts := kernel.Map(len(y), c, func(lo, hi int) affinePart {
		p := affinePart{grad: make([]float64, d)}
		out := make([]float64, c)
		gb := p.grad[d-c:]
		for i := lo; i < hi; i++ {
			row := z[i*c : (i+1)*c]
			am.apply(theta, row, out)
			m := out[0]
			for _, v := range out[1:] {
				m = max(m, v)
			}
			dy := out[y[i]] - m
			var s float64
			for k, v := range out {
				out[k] = kernel.Exp(v - m)
				s += out[k]
			}
			p.f += math.Log(s) - dy
			inv := 1 / s
			for k := range out {
				g := out[k] * inv
				if k == y[i] {
					g--
				}
				gb[k] += g
				if am.full {
					gw := p.grad[k*c : (k+1)*c]
					for j, zj := range row {
						gw[j] += g * zj
					}
				} else {
					p.grad[k] += g * row[k]
				}
			}
		}
		return p
	})
	clear(grad)
	var f float64
	for _, p := range parts {
		f += p.f
		for j, g := range p.grad {
			grad[j] += g
		}
	}
	n := float64(len(y))
	for j := range grad {
		grad[j] /= n
	}
	return f / n
}

// penalty adds λ (Σ_{k≠j} W_kj² + Σ b_k²) to f and its gradient to grad.
func (am affineMap) penalty(theta, grad []float64, l2 float64) float64 {
	if l2 == 0 {
		return 0
	}
	c := am.c
	var r float64
	for j, t := range theta {
		if j < c*c && j/c == j%c {
			continue // diagonal of W
		}
		r += t * t
		grad[j] += 2 * l2 * t
	}
	return l2 * r
}

// fitAffine minimises NLL + penalty over θ from theta0 with LBFGS.
func fitAffine(am affineMap, z []float64, y []int, theta0 []float64, l2 float64) ([]float64, Report, error) {
	const gradTol = 1e-6 // max-norm of the gradient of a mean NLL: f is then within ~1e-12 of its minimum
	d := am.dim()
	rep := Report{
		Optimizer: "gonum/optimize LBFGS, analytic gradient",
		Criterion: fmt.Sprintf("max |gradient| < %g, or objective change < 1e-13 for 20 iterations, at most 2000 iterations", gradTol),
	}
	// gonum calls Func and Grad separately at the same x; one pass gives both.
	var lastX, lastG []float64
	var lastF float64
	evals := 0
	eval := func(x []float64) {
		if lastX != nil && slices.Equal(x, lastX) {
			return
		}
		evals++
		lastX, lastG = append(lastX[:0], x...), make([]float64, d)
		lastF = am.nllGrad(x, lastG, z, y) + am.penalty(x, lastG, l2)
	}
	problem := optimize.Problem{
		Func: func(x []float64) float64 { eval(x); return lastF },
		Grad: func(g, x []float64) { eval(x); copy(g, lastG) },
	}
	scratch := make([]float64, d)
	rep.NLLBefore = am.nllGrad(theta0, scratch, z, y)
	settings := &optimize.Settings{
		GradientThreshold: gradTol,
		Converger:         &optimize.FunctionConverge{Absolute: 1e-13, Relative: 1e-13, Iterations: 20},
		MajorIterations:   2000,
	}
	res, err := optimize.Minimize(problem, theta0, settings, &optimize.LBFGS{})
	if res == nil || math.IsNaN(res.F) || math.IsInf(res.F, 0) {
		return nil, rep, fmt.Errorf("%s fit failed: %v", am.name(), err)
	}
	theta := res.X
	rep.Iterations, rep.Evaluations, rep.Status = res.MajorIterations, evals+1, res.Status.String()
	rep.Converged = res.Status == optimize.GradientThreshold || res.Status == optimize.FunctionConvergence
	if err != nil {
		// LBFGS stops like this when the line search cannot improve on the
		// last point at float64 precision: usable, but record it.
		rep.Note = err.Error()
	}
	rep.NLLAfter = am.nllGrad(theta, scratch, z, y)
	if l2 > 0 {
		rep.Objective = rep.NLLAfter + am.penalty(theta, scratch, l2)
	}
	eval(theta)
	rep.Gradient = 0
	for _, g := range lastG {
		rep.Gradient = math.Max(rep.Gradient, math.Abs(g))
	}
	return theta, rep, nil
}

func (am affineMap) name() string {
	if am.full {
		return "matrix"
	}
	return "vector"
}
