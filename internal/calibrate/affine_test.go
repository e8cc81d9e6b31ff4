package calibrate

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
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
		obj := func(x []float64) float64 {
			g := make([]float64, len(x))
			return tt.am.nllGrad(x, g, z, y) + tt.am.penalty(x, g, tt.l2)
		}
		grad := make([]float64, len(theta))
		tt.am.nllGrad(theta, grad, z, y)
		tt.am.penalty(theta, grad, tt.l2)
		num := fd.Gradient(nil, obj, theta, &fd.Settings{Formula: fd.Central})
		for j := range grad {
			if math.Abs(grad[j]-num[j]) > 1e-6*math.Max(1, math.Abs(num[j])) {
				t.Errorf("%s: ∂/∂θ_%d = %v, finite difference %v", tt.name, j, grad[j], num[j])
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
	if _, err := weak.Fit(z, y, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := strong.Fit(z, y, 3); err != nil {
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
