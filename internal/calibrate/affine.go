package calibrate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize"

	"github.com/kdcal/kdcal/internal/metrics"
	"github.com/kdcal/kdcal/internal/metrics/kernel"
)

// Vector is vector scaling (Guo et al. 2017, §4.2): softmax(a ⊙ z + b)
// with a per-class scale a and bias b minimising the validation NLL, fitted
// by Newton's method with the exact Hessian from the temperature-scaling
// fit (see fitVector). It can change the predicted class. Bias is stored
// with mean 0 (softmax does not see a common shift).
type Vector struct {
	C     int       `json:"classes"`
	Scale []float64 `json:"scale"` // a, length C
	Bias  []float64 `json:"bias"`  // b, length C
}

// Matrix is matrix scaling (Guo et al. 2017, §4.2): softmax(W z + b) with
// a full C×C matrix W and bias b minimising
//
//	NLL(W, b) + λ (Σ_{k≠j} W_kj² + Σ_k b_k²)
//
// with L-BFGS from W = I/T, b = 0 (see fitMatrix), λ = L2
// (Options.MatrixL2). Penalising the off-diagonal and
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

// Fit fits a and b; see Vector and fitVector.
func (v *Vector) Fit(ctx context.Context, logits []float64, labels []int, c int) (Report, error) {
	checkFit(logits, labels, c)
	theta, rep, err := fitVector(ctx, logits, labels, c)
	if err != nil {
		return rep, err
	}
	v.C, v.Scale, v.Bias = c, theta[:c], theta[c:]
	return rep, nil
}

// Fit fits W and b; see Matrix and fitMatrix.
func (m *Matrix) Fit(ctx context.Context, logits []float64, labels []int, c int) (Report, error) {
	checkFit(logits, labels, c)
	if m.L2 < 0 || math.IsNaN(m.L2) {
		panic("calibrate: matrix L2 strength must be ≥ 0")
	}
	theta, rep, err := fitMatrix(ctx, logits, labels, c, m.L2)
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

// penalty adds λ (Σ_{k≠j} W_kj² + Σ b_k²) to grad's gradient and returns it.
func (am affineMap) penalty(theta, grad []float64, l2 float64) float64 {
	if l2 == 0 || !am.full {
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

// Settings of the vector and matrix fits. The stopping rule is that of
// scipy.optimize.minimize(method="L-BFGS-B"): stop when max_j |∂f/∂θ_j| ≤
// gtol (pgtol; no bounds, so the projected gradient is the gradient) or
// when an iteration lowers f by at most ftol·max(|f_k|, |f_{k+1}|, 1)
// (factr·eps). ftol is 1e-12 rather than scipy's default 2.2e-9 so that
// the gradient test decides in practice and f ends within about 1e-12 of
// its minimum; scripts/bench_calib.py runs scipy with the same two numbers.
const (
	affineGTol    = 1e-6
	affineFTol    = 1e-12
	newtonMaxIter = 200   // vector: Newton converges quadratically, in 5–30 iterations
	lbfgsMaxIter  = 15000 // matrix: scipy's default maxiter
	lbfgsStore    = 10    // matrix: L-BFGS memory, scipy's default maxcor
)

// scipyRule is scipy's L-BFGS-B stopping rule as a gonum Converger,
// checked at every major iteration: GradientThreshold when
// gradNorm(∇f) ≤ gtol, FunctionConvergence when
// (f_k − f_{k+1}) ≤ ftol · max(|f_k|, |f_{k+1}|, 1).
type scipyRule struct {
	gtol, ftol float64
	gradNorm   func(g []float64) float64 // max |∂f/∂θ_j| over all parameters θ
	prev       float64
	first      bool
}

func (r *scipyRule) Init(int) { r.first = true }

func (r *scipyRule) Converged(loc *optimize.Location) optimize.Status {
	f, prev, first := loc.F, r.prev, r.first
	r.prev, r.first = f, false
	switch {
	case r.gradNorm(loc.Gradient) <= r.gtol:
		return optimize.GradientThreshold
	case !first && prev-f <= r.ftol*max(math.Abs(prev), math.Abs(f), 1):
		return optimize.FunctionConvergence
	}
	return optimize.NotTerminated
}

// maxNorm returns max_j |g_j|.
func maxNorm(g []float64) float64 { return floats.Norm(g, math.Inf(1)) }

// fitVector minimises the vector-scaling NLL with Newton's method
// (gonum/optimize.Newton: exact Hessian, modified Cholesky, line search),
// starting from a = 1/T, b = 0 with T the temperature-scaling fit, which
// costs a few passes and lands near the optimum's overall scale. Vector
// scaling has only 2C parameters, so the exact 2C×2C Hessian (one Dsyrk per
// iteration) is cheap and Newton needs a handful of iterations where
// L-BFGS needs hundreds or thousands on over-confident, nearly separable
// logits.
//
// softmax(a ⊙ z + b) does not change when the same constant is added to
// every b_k, so the Hessian is singular along (0, 1) and a Cholesky-based
// Newton step would be damped into gradient descent. The fit therefore
// holds b_{C−1} at 0 (2C − 1 free parameters) and shifts b to mean 0 at the
// end, which changes no probability.
func fitVector(ctx context.Context, z []float64, y []int, c int) ([]float64, Report, error) {
	o := newAffineObjective(affineMap{c: c}, z, y, 0)
	d := 2 * c
	theta := make([]float64, d)
	full := func(x []float64) []float64 { // θ with b_{C−1} = 0
		copy(theta, x)
		theta[d-1] = 0
		return theta
	}
	h := mat.NewSymDense(d, nil)
	p := fitProblem{
		dim: d - 1,
		fg: func(x, g []float64) float64 {
			gf := make([]float64, d)
			f := o.fg(full(x), gf)
			copy(g, gf)
			return f
		},
		hess: func(hr *mat.SymDense, x []float64) {
			o.vectorHess(h, full(x))
			hr.CopySym(h.SliceSym(0, d-1))
		},
		// Σ_k ∂f/∂b_k = 0, so the fixed bias's derivative is minus the
		// sum of the others: the stopping rule sees all 2C derivatives.
		gradNorm: func(g []float64) float64 {
			return max(maxNorm(g), math.Abs(floats.Sum(g[c:])))
		},
	}
	x0 := make([]float64, d-1)
	start := "a = 1, b = 0"
	var t Temp
	trep, err := t.Fit(ctx, z, y, c)
	if err != nil {
		return nil, Report{}, err
	}
	scale := 1.0
	if trep.Converged {
		scale = 1 / t.T
		start = fmt.Sprintf("a = 1/T = %.6g (temperature fit, %d passes), b = 0", scale, trep.Evaluations)
	}
	for k := range c {
		x0[k] = scale
	}
	x, rep, err := minimise(ctx, p, x0, &optimize.Newton{}, "vector", start,
		fmt.Sprintf("gonum/optimize Newton (exact Hessian, modified Cholesky, bisection line search), at most %d iterations", newtonMaxIter), newtonMaxIter)
	if err != nil {
		return nil, rep, err
	}
	theta = slices.Clone(full(x))
	b := theta[c:]
	mean := floats.Sum(b) / float64(c)
	for k := range b {
		b[k] -= mean
	}
	rep.NLLBefore = metrics.NLL(z, y, c, 1) // the identity map
	rep.NLLAfter, rep.Objective = rep.Objective, 0
	return theta, rep, nil
}

// fitMatrix minimises the penalised matrix-scaling NLL with gonum's
// L-BFGS with memory 10 and a Moré–Thuente line search with sufficient
// decrease 1e-3 and curvature 0.9 (scipy's L-BFGS-B: maxcor 10 and dcsrch
// with those constants), starting from temperature
// scaling, W = I/T, b = 0: the fit costs a few cheap passes (no GEMM) and
// puts the diagonal at the overall scale of the optimum, which saves about
// a third of the iterations from W = I on over-confident logits. (Starting
// from the vector-scaling fit W = diag(a), b = b_vector saves nothing on
// 10⁴×100 logits and doubles the iterations on nearly separable ones: its
// unpenalised bias is far from the penalised optimum's.)
func fitMatrix(ctx context.Context, z []float64, y []int, c int, l2 float64) ([]float64, Report, error) {
	am := affineMap{c: c, full: true}
	o := newAffineObjective(am, z, y, l2)
	theta0 := identity(am)
	start := "W = I, b = 0"
	var t Temp
	trep, err := t.Fit(ctx, z, y, c)
	if err != nil {
		return nil, Report{}, err
	}
	if trep.Converged {
		for k := range c {
			theta0[k*c+k] = 1 / t.T
		}
		start = fmt.Sprintf("W = I/T, T = %.6g (temperature fit, %d passes), b = 0", t.T, trep.Evaluations)
	}
	p := fitProblem{dim: am.dim(), fg: o.fg, gradNorm: maxNorm}
	method := &optimize.LBFGS{Store: lbfgsStore, Linesearcher: &optimize.MoreThuente{DecreaseFactor: 1e-3, CurvatureFactor: 0.9}}
	theta, rep, err := minimise(ctx, p, theta0, method, "matrix", start,
		fmt.Sprintf("gonum/optimize LBFGS (memory %d, Moré–Thuente line search), analytic gradient (two GEMMs, %s BLAS), at most %d iterations",
			lbfgsStore, BLAS, lbfgsMaxIter), lbfgsMaxIter)
	if err != nil {
		return nil, rep, err
	}
	rep.NLLBefore = metrics.NLL(z, y, c, 1) // the identity map
	rep.NLLAfter = rep.Objective - am.penalty(theta, make([]float64, am.dim()), l2)
	if l2 == 0 {
		rep.Objective = 0 // the same as nll_after
	}
	return theta, rep, nil
}

// fitProblem is what minimise needs of an objective: its dimension, value
// and gradient, and (for Newton) its Hessian.
type fitProblem struct {
	dim      int
	fg       func(x, grad []float64) float64
	hess     func(h *mat.SymDense, x []float64)
	gradNorm func(grad []float64) float64 // max |∂f/∂θ_j| over all the map's parameters
}

// minimise runs method on p from x0 and fills the Report's optimiser
// fields, with the objective at the solution in Objective (the caller
// fills the NLLs). It returns
// ctx.Err() (wrapped) when ctx is cancelled during the fit: gonum checks
// Problem.Status before every evaluation.
func minimise(ctx context.Context, p fitProblem, x0 []float64, method optimize.Method, name, start, optimizer string, maxIter int) ([]float64, Report, error) {
	rep := Report{
		Optimizer: optimizer,
		Criterion: fmt.Sprintf("max |gradient| ≤ %g or relative objective decrease ≤ %g in an iteration (scipy L-BFGS-B's gtol and ftol)", affineGTol, affineFTol),
		Start:     start,
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
		lastX, lastG = append(lastX[:0], x...), slices.Grow(lastG[:0], p.dim)[:p.dim]
		lastF = p.fg(x, lastG)
	}
	problem := optimize.Problem{
		Func: func(x []float64) float64 { eval(x); return lastF },
		Grad: func(g, x []float64) { eval(x); copy(g, lastG) },
		Status: func() (optimize.Status, error) {
			if err := ctx.Err(); err != nil {
				return optimize.Failure, err
			}
			return optimize.NotTerminated, nil
		},
	}
	if p.hess != nil {
		problem.Hess = func(h *mat.SymDense, x []float64) { evals++; p.hess(h, x) }
	}
	settings := &optimize.Settings{
		Converger:       &scipyRule{gtol: affineGTol, ftol: affineFTol, gradNorm: p.gradNorm},
		MajorIterations: maxIter,
	}
	res, err := optimize.Minimize(problem, x0, settings, method)
	if cerr := ctx.Err(); cerr != nil {
		return nil, rep, fmt.Errorf("%s fit: %w", name, cerr)
	}
	if res == nil || math.IsNaN(res.F) || math.IsInf(res.F, 0) {
		return nil, rep, fmt.Errorf("%s fit failed: %v", name, err)
	}
	rep.Iterations, rep.Evaluations, rep.Status = res.MajorIterations, evals, res.Status.String()
	// MethodConverge: the method's own test, |gradient| < 1e-12.
	rep.Converged = res.Status == optimize.GradientThreshold || res.Status == optimize.FunctionConvergence ||
		res.Status == optimize.MethodConverge
	if err != nil {
		// The line search could not improve on the last point at float64
		// precision: usable, but record it.
		rep.Note = err.Error()
	}
	eval(res.X)
	rep.Gradient, rep.Objective = p.gradNorm(lastG), lastF
	return res.X, rep, nil
}

// identity returns θ of the identity map (a = 1 or W = I, b = 0).
func identity(am affineMap) []float64 {
	theta := make([]float64, am.dim())
	for k := range am.c {
		if am.full {
			theta[k*am.c+k] = 1
		} else {
			theta[k] = 1
		}
	}
	return theta
}

func (am affineMap) name() string {
	if am.full {
		return "matrix"
	}
	return "vector"
}
