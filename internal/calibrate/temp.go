package calibrate

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/kdcal/kdcal/internal/metrics"
	"github.com/kdcal/kdcal/internal/metrics/kernel"
)

// Temperature-fit settings.
const (
	tempTolLogT = 1e-10 // stop when a step changes log T by less than this
	tempTolGrad = 1e-12 // or when |dNLL/dlog T| is below this
	tempMaxIter = 200
	tempLo      = 0.05 // initial bracket of T, expanded ×1/20 or ×20 while the minimum lies outside
	tempHi      = 20
	tempMin     = 1e-4 // hard bounds of T
	tempMax     = 1e4
)

// Temp is temperature scaling (Guo et al. 2017, "On Calibration of Modern
// Neural Networks", §4.2): probabilities softmax(z/T) with one scalar T > 0
// that minimises the validation NLL. T > 1 softens over-confident logits;
// argmax, hence accuracy, never changes.
type Temp struct {
	C int     `json:"classes"`
	T float64 `json:"temperature"`
}

// Method returns "temp".
func (*Temp) Method() string { return "temp" }

// Classes returns the number of classes of the fit.
func (t *Temp) Classes() int { return t.C }

// Temperature returns the fitted T.
func (t *Temp) Temperature() float64 { return t.T }

// Fit finds T = exp(u) minimising the mean validation NLL
//
//	F(u) = (1/N) Σ_i [ log Σ_k exp(β (z_ik − m_i)) − β (z_{i,y_i} − m_i) ],  β = e^{−u} = 1/T
//
// F is convex in β (a log-sum-exp of linear functions of β), so F(u) has
// one minimum and F'(u) = −β·dF/dβ changes sign once. With
//
//	dF/dβ = mean_i [E_p(z_i − m_i) − (z_{i,y_i} − m_i)],  d²F/dβ² = mean_i Var_p(z_i)
//
// (p = softmax(β z_i)), one pass over the data gives F, dF/du and d²F/du². The
// fit evaluates u = 0 (T = 1), brackets the root of F' starting from
// T ∈ [0.05, 20] and widening ×20 while the minimum lies outside (up to
// [1e-4, 1e4]), then runs safeguarded Newton on F' (Newton steps that stay
// inside the bracket and halve |F'| fast enough, bisection otherwise;
// Press et al., Numerical Recipes, rtsafe) until a step changes log T by
// less than 1e-10 or |F'| < 1e-12. gonum/optimize has no bracketed 1-D
// method, hence the hand-written loop; Newton needs ~5–8 passes where
// golden-section search needs ~40 to reach the same tolerance.
//
// If the minimum lies beyond a hard bound (the validation set is
// separable, so NLL keeps falling as T → 0, or the logits carry no signal,
// so it keeps falling as T → ∞), T is set to the bound, Converged is false
// and Report.Note says why.
func (t *Temp) Fit(ctx context.Context, logits []float64, labels []int, c int) (Report, error) {
	checkFit(logits, labels, c)
	f := newTempObjective(logits, labels, c)
	f.ctx = ctx
	temp, rep := f.minimise()
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("temperature fit: %w", err)
	}
	if math.IsNaN(temp) || math.IsNaN(rep.NLLAfter) {
		return rep, errors.New("temperature fit: NLL is not a number (non-finite logits?)")
	}
	t.C, t.T = c, temp
	rep.Temperature = t.T
	return rep, nil
}

// tempObjective evaluates F(u) with its derivatives.
type tempObjective struct {
	ctx   context.Context // checked before every pass; nil: never cancelled
	z     []float64
	y     []int
	c     int
	m, dy []float64 // per row: max_k z_ik and z_{i,y_i} − max, computed once
	evals int
}

func newTempObjective(z []float64, y []int, c int) *tempObjective {
	o := &tempObjective{z: z, y: y, c: c, m: make([]float64, len(y)), dy: make([]float64, len(y))}
	kernel.Map(len(y), c, func(lo, hi int) struct{} {
		for i := lo; i < hi; i++ {
			row := z[i*c : (i+1)*c]
			m := row[0]
			for _, v := range row[1:] {
				m = max(m, v)
			}
			o.m[i], o.dy[i] = m, row[y[i]]-m
		}
		return struct{}{}
	})
	return o
}

type tempStats struct{ f, d1, d2 float64 }

// eval returns F(u), dF/du and d²F/du².
// Once ctx is cancelled it returns NaN without a pass, which ends every
// loop of minimise at its next test.
func (o *tempObjective) eval(u float64) (f, g, h float64) {
	if o.ctx != nil && o.ctx.Err() != nil {
		return math.NaN(), math.NaN(), math.NaN()
	}
	o.evals++
	beta := math.Exp(-u)
	n, c := len(o.y), o.c
	parts := kernel.Map(n, c, func(lo, hi int) tempStats {
		var s tempStats
		w := make([]float64, c)
		for i := lo; i < hi; i++ {
			m, row := o.m[i], o.z[i*c:(i+1)*c]
			kernel.ExpScaled(w, row, m, beta) // w_k = exp(β (z_k − m)), 4 at a time
			var s0, s1, s2 float64
			for k, v := range row {
				d := v - m
				s0 += w[k]
				s1 += w[k] * d
				s2 += w[k] * d * d
			}
			e := s1 / s0
			s.f += math.Log(s0) - beta*o.dy[i]
			s.d1 += e - o.dy[i]
			s.d2 += max(s2/s0-e*e, 0)
		}
		return s
	})
	var tot tempStats
	for _, p := range parts {
		tot.f += p.f
		tot.d1 += p.d1
		tot.d2 += p.d2
	}
	fn := float64(n)
	f, d1, d2 := tot.f/fn, tot.d1/fn, tot.d2/fn
	// Chain rule for β = e^{−u}: dβ/du = −β.
	return f, -beta * d1, beta*beta*d2 + beta*d1
}

// pinnedHighNote explains why the validation NLL still decreases at the
// largest temperature: either the logits are on a scale so large that even
// z/T_max is one-hot (a within-row range above 20·T_max: the runner-up's
// probability is below e^−20 there), or they carry almost no information
// about the labels.
func (o *tempObjective) pinnedHighNote() string {
	spread := 0.0
	for i := range o.y {
		lo := o.m[i]
		for _, v := range o.z[i*o.c : (i+1)*o.c] {
			lo = math.Min(lo, v)
		}
		spread = math.Max(spread, o.m[i]-lo)
	}
	if spread > 20*tempMax {
		return fmt.Sprintf("validation NLL still decreases at T = %g because the logits are too large: a row spans "+
			"%.3g, so even z/%g is one-hot and wrong predictions cost almost infinite NLL; scale the logits down "+
			"(are they logits, and in float64 range of a model's output?); T is pinned at that bound", tempMax, spread, tempMax)
	}
	return fmt.Sprintf("validation NLL still decreases at T = %g (the logits carry almost no "+
		"information about the labels: are they aligned?); T is pinned at that bound", tempMax)
}

// minimise returns the fitted T and the report.
func (o *tempObjective) minimise() (float64, Report) {
	rep := Report{
		Optimizer: "bracketing + safeguarded Newton on log T (rtsafe)",
		Criterion: fmt.Sprintf("|Δ log T| < %g or |dNLL/dlog T| < %g", tempTolLogT, tempTolGrad),
	}
	x := 0.0
	f, g, h := o.eval(x)
	rep.NLLBefore = f
	finish := func(temp, f, g float64, converged bool) (float64, Report) {
		rep.NLLAfter, rep.Gradient, rep.Converged, rep.Evaluations = f, math.Abs(g), converged, o.evals
		if converged {
			rep.Status = "converged"
		}
		return temp, rep
	}
	if math.Abs(g) < tempTolGrad {
		return finish(1, f, g, true)
	}
	// Bracket the sign change of g: g(a) < 0 < g(b).
	a, b := x, x
	if g > 0 { // NLL falls as T falls: the minimum is below T = 1
		bound, step := math.Log(tempMin), math.Log(tempHi)
		for next := math.Log(tempLo); ; next = math.Max(next-step, bound) {
			fa, ga, _ := o.eval(next)
			if ga < 0 { // strictly: g underflows to 0 on separable data
				a = next
				break
			}
			b = next
			if next == bound {
				rep.Note = fmt.Sprintf("validation NLL still decreases at T = %g (every validation example is "+
					"classified correctly with a margin?); T is pinned at that bound", tempMin)
				return finish(tempMin, fa, ga, false)
			}
		}
	} else {
		bound, step := math.Log(tempMax), math.Log(tempHi)
		for next := math.Log(tempHi); ; next = math.Min(next+step, bound) {
			fb, gb, _ := o.eval(next)
			if gb > 0 {
				b = next
				break
			}
			a = next
			if next == bound {
				rep.Note = o.pinnedHighNote()
				return finish(tempMax, fb, gb, false)
			}
		}
	}
	// The current point x = 0 is one end of the bracket; rtsafe from there.
	dxOld, dx := b-a, b-a
	for rep.Iterations = 1; rep.Iterations <= tempMaxIter; rep.Iterations++ {
		newton := x - g/h
		if !(h > 0) || !(a < newton && newton < b) || math.Abs(2*g) > math.Abs(dxOld*h) {
			dxOld, dx = dx, (b-a)/2
			newton = a + dx
		} else {
			dxOld, dx = dx, newton-x
		}
		step := newton - x
		x = newton
		f, g, h = o.eval(x)
		if math.Abs(g) < tempTolGrad || math.Abs(step) < tempTolLogT || b-a < tempTolLogT {
			return finish(math.Exp(x), f, g, true)
		}
		if g < 0 {
			a = x
		} else {
			b = x
		}
	}
	rep.Iterations = tempMaxIter
	rep.Status = "iteration limit"
	return finish(math.Exp(x), f, g, false)
}

// MapLogits returns logits / T.
func (t *Temp) MapLogits(logits []float64, c int) []float64 {
	checkApply("temp", t.C, c, logits)
	out := make([]float64, len(logits))
	for i, z := range logits {
		out[i] = z / t.T
	}
	return out
}

// Probs returns softmax(logits / T).
func (t *Temp) Probs(logits []float64, c int) []float64 {
	z := t.MapLogits(logits, c)
	return metrics.Softmax(z, z, c)
}

// Validate checks that T is positive and finite.
func (t *Temp) Validate() error {
	if t.C < 1 {
		return errors.New("classes must be ≥ 1")
	}
	if !(t.T > 0) || math.IsInf(t.T, 0) {
		return fmt.Errorf("temperature %v must be positive and finite", t.T)
	}
	return nil
}
