package calibrate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"codeberg.org/sbinet/npyio"
	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize"

	"github.com/kdcal/kdcal/internal/npyfile"
	"github.com/kdcal/kdcal/internal/testutil"
)

// The analytic gradients of vector and matrix scaling (with the L2
// penalty) match central finite differences at random parameters.
// Tolerance 1e-6 relative: central differences are accurate to ~1e-8 here.
func TestAffineGradients(t *testing.T) {
	z, y := sample(10, 200, 4)
	rng := rand.New(rand.NewPCG(11, 0))
	for _, tt := range []struct {
		name string
		am   affineMap
		l2   float64
	}{
		{"vector", affineMap{c: 4}, 0},
		{"matrix", affineMap{c: 4, full: true}, 0},
		{"matrix l2", affineMap{c: 4, full: true}, 0.05},
	} {
		theta := make([]float64, tt.am.dim())
		for j := range theta {
			theta[j] = rng.NormFloat64()
		}
		o := newAffineObjective(tt.am, z, y, tt.l2)
		obj := func(x []float64) float64 { return o.fg(x, make([]float64, len(x))) }
		grad := make([]float64, len(theta))
		o.fg(theta, grad)
		num := fd.Gradient(nil, obj, theta, &fd.Settings{Formula: fd.Central})
		for j := range grad {
			if math.Abs(grad[j]-num[j]) > 1e-6*math.Max(1, math.Abs(num[j])) {
				t.Errorf("%s: ∂/∂θ_%d = %v, finite difference %v", tt.name, j, grad[j], num[j])
			}
		}
	}
}

// The analytic Hessian of vector scaling matches central differences of
// the analytic gradient (tolerance 1e-6 absolute on entries of order 1).
func TestVectorHessian(t *testing.T) {
	const c = 5
	z, y := sample(14, 300, c)
	rng := rand.New(rand.NewPCG(15, 0))
	o := newAffineObjective(affineMap{c: c}, z, y, 0)
	theta := make([]float64, 2*c)
	for j := range theta {
		theta[j] = 1 + 0.3*rng.NormFloat64()
	}
	h := mat.NewSymDense(2*c, nil)
	o.vectorHess(h, theta)
	num := mat.NewDense(2*c, 2*c, nil)
	fd.Jacobian(num, func(g, x []float64) { o.fg(x, g) }, theta, &fd.JacobianSettings{Formula: fd.Central})
	for i := range 2 * c {
		for j := range 2 * c {
			if d := math.Abs(h.At(i, j) - num.At(i, j)); d > 1e-6 {
				t.Errorf("H[%d][%d] = %v, finite difference of the gradient %v", i, j, h.At(i, j), num.At(i, j))
			}
		}
	}
}

// The penalty leaves the diagonal of W free: λ (Σ_{k≠j} W_kj² + Σ b_k²).
func TestMatrixPenalty(t *testing.T) {
	am := affineMap{c: 2, full: true}
	theta := []float64{5, 1, 2, 7, 3, 4} // W = [[5 1] [2 7]], b = [3 4]
	g := make([]float64, 6)
	if got, want := am.penalty(theta, g, 0.5), 0.5*(1+4+9+16); got != want {
		t.Errorf("penalty = %v, want %v", got, want)
	}
	if want := []float64{0, 1, 2, 0, 3, 4}; !equal(g, want) {
		t.Errorf("penalty gradient = %v, want %v", g, want)
	}
}

// A strong L2 penalty pulls matrix scaling back to (nearly) a diagonal map
// with no bias.
func TestMatrixL2Shrinks(t *testing.T) {
	z, y := sample(12, 3000, 3)
	z = scaled(z, 2)
	weak, strong := &Matrix{L2: 0}, &Matrix{L2: 10}
	if _, err := weak.Fit(context.Background(), z, y, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := strong.Fit(context.Background(), z, y, 3); err != nil {
		t.Fatal(err)
	}
	off := func(m *Matrix) float64 {
		var s float64
		for k := range 3 {
			for j := range 3 {
				if k != j {
					s += m.Weight[k][j] * m.Weight[k][j]
				}
			}
			s += m.Bias[k] * m.Bias[k]
		}
		return s
	}
	if !(off(strong) < 1e-3 && off(strong) < off(weak)) {
		t.Errorf("off-diagonal + bias energy: λ=10 %v, λ=0 %v", off(strong), off(weak))
	}
	// The diagonal still does temperature-like scaling: ≈ 1/2 on logits ×2.
	for k := range 3 {
		if d := strong.Weight[k][k]; math.Abs(d-0.5) > 0.1 {
			t.Errorf("W[%d][%d] = %v, want ≈ 0.5", k, k, d)
		}
	}
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-15 {
			return false
		}
	}
	return true
}

// A cancelled context stops the iterative fits: already cancelled, they
// return context.Canceled before a full fit; cancelled ~100 ms into a long
// fit on 20000×100 logits (seconds of work), they return it promptly. The
// 5 s bound only guards against a fit that ignores the context (a whole
// matrix fit here takes far longer on this hardware).
func TestFitCancelled(t *testing.T) {
	z, y := sample(16, 20000, 100)
	z = scaled(z, 3)
	for _, name := range []string{"temp", "vector", "matrix"} {
		t.Run(name, func(t *testing.T) {
			cal, _ := New(name, Options{MatrixL2: 1e-3})
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := cal.Fit(ctx, z, y, 100); !errors.Is(err, context.Canceled) {
				t.Errorf("already cancelled: err = %v, want context.Canceled", err)
			}
			if name == "temp" {
				return // a whole temperature fit is a few passes: nothing to interrupt
			}
			ctx, cancel = context.WithCancel(context.Background())
			defer cancel()
			time.AfterFunc(100*time.Millisecond, cancel)
			start := time.Now()
			_, err := cal.Fit(ctx, z, y, 100)
			if took := time.Since(start); !errors.Is(err, context.Canceled) || took > 5*time.Second {
				t.Errorf("cancelled after 100 ms: err = %v after %v, want context.Canceled within 5 s", err, took)
			}
		})
	}
}

// scipyRule stops on the gradient first, then on a small relative decrease
// of f, never on the first point's f (there is no decrease yet).
func TestScipyRule(t *testing.T) {
	r := &scipyRule{gtol: 1e-6, ftol: 1e-12, gradNorm: maxNorm}
	r.Init(2)
	for i, tt := range []struct {
		f    float64
		g    []float64
		want optimize.Status
	}{
		{10, []float64{1, -3}, optimize.NotTerminated},
		{10, []float64{1, -3}, optimize.FunctionConvergence}, // no decrease
	} {
		if got := r.Converged(&optimize.Location{F: tt.f, Gradient: tt.g}); got != tt.want {
			t.Errorf("step %d: %v, want %v", i, got, tt.want)
		}
	}
	r.Init(2)
	for i, tt := range []struct {
		f    float64
		g    []float64
		want optimize.Status
	}{
		{2, []float64{0.1, 0}, optimize.NotTerminated},
		{1.5, []float64{0.01, 0}, optimize.NotTerminated},
		{1.5 - 2e-12, []float64{0.01, 0}, optimize.NotTerminated},       // decrease 2e-12 > 1e-12·1.5
		{1.5 - 3e-12, []float64{0.01, 0}, optimize.FunctionConvergence}, // decrease 1e-12 ≤ 1e-12·1.5
	} {
		if got := r.Converged(&optimize.Location{F: tt.f, Gradient: tt.g}); got != tt.want {
			t.Errorf("sequence 2, step %d: %v, want %v", i, got, tt.want)
		}
	}
	if got := r.Converged(&optimize.Location{F: 0, Gradient: []float64{1e-6, -1e-6}}); got != optimize.GradientThreshold {
		t.Errorf("|g| = 1e-6: %v, want GradientThreshold (≤ gtol, as scipy)", got)
	}
}

// Vector and matrix scaling reach scipy's optimum of the same objective
// (testdata/crosscheck_affine.py: numpy objective, L-BFGS-B to max
// |gradient| ≤ 1e-10): kdcal's objective is at most 1e-9 above it (its
// own stopping rule, max |gradient| ≤ 1e-6, leaves it within ~1e-11 on
// this well-conditioned problem) and the reported gradient is the max-norm
// over all parameters of the objective at the returned map.
func TestAffineReachScipyOptimum(t *testing.T) {
	testutil.Slow(t, "about 3 s: scipy L-BFGS-B to 1e-10")
	testutil.RequirePython(t, "numpy", "scipy")
	const c, l2 = 8, 1e-3
	z, y := sample(18, 3000, c)
	z = scaled(z, 2.5)
	dir := t.TempDir()
	lp, yp := filepath.Join(dir, "logits.npy"), filepath.Join(dir, "labels.npy")
	var b bytes.Buffer
	if err := npyio.Write(&b, mat.NewDense(len(y), c, z)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lp, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := npyfile.WriteInt64(yp, y); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(testutil.Python, "testdata/crosscheck_affine.py", lp, yp, fmt.Sprint(l2)).Output()
	if err != nil {
		t.Fatalf("crosscheck_affine.py: %v", err)
	}
	var ref map[string]float64
	if err := json.Unmarshal(out, &ref); err != nil {
		t.Fatal(err)
	}
	for _, cal := range []Calibrator{&Vector{}, &Matrix{L2: l2}} {
		rep, err := cal.Fit(context.Background(), z, y, c)
		if err != nil {
			t.Fatal(err)
		}
		am, theta := affineMap{c: c}, []float64(nil)
		switch v := cal.(type) {
		case *Vector:
			theta = v.theta()
		case *Matrix:
			am.full, theta = true, v.theta()
		}
		o := newAffineObjective(am, z, y, l2)
		g := make([]float64, len(theta))
		f := o.fg(theta, g)
		if gap := f - ref[cal.Method()]; !rep.Converged || gap > 1e-9 || gap < -1e-12 {
			t.Errorf("%s: converged %v, objective %.15g, scipy's optimum %.15g (gap %.2g)", cal.Method(), rep.Converged, f, ref[cal.Method()], gap)
		}
		if gn := maxNorm(g); gn > affineGTol || math.Abs(gn-rep.Gradient) > 1e-12 {
			t.Errorf("%s: max |gradient| at the result %.3g, reported %.3g", cal.Method(), gn, rep.Gradient)
		}
		t.Logf("%s: %d iterations, objective − scipy's optimum = %.2g, max |gradient| %.2g", cal.Method(), rep.Iterations, f-ref[cal.Method()], rep.Gradient)
	}
}

// Vector and matrix fits give the same parameters, bit for bit, whatever
// GOMAXPROCS (kernel.Map and dgemm sum in fixed orders).
func TestAffineFitsDeterministicAcrossGOMAXPROCS(t *testing.T) {
	z, y := sample(19, 5000, 20)
	z = scaled(z, 2)
	for _, name := range []string{"vector", "matrix"} {
		fit := func(procs int) []float64 {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			cal, _ := New(name, Options{MatrixL2: 1e-3})
			if _, err := cal.Fit(context.Background(), z, y, 20); err != nil {
				t.Fatal(err)
			}
			if v, ok := cal.(*Vector); ok {
				return v.theta()
			}
			return cal.(*Matrix).theta()
		}
		if one, three := fit(1), fit(3); !slices.Equal(one, three) {
			t.Errorf("%s: parameters differ between GOMAXPROCS 1 and 3", name)
		}
	}
}
