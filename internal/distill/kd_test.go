package distill

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
)

// TestLossHandComputed: one example, two classes, s = (0, 0), y = 0,
// p_T = (0.8, 0.2), τ = 2, ceW = 0.5, kdW = 0.5.
// softmax(s) = softmax(s/2) = (0.5, 0.5): CE = log 2 = 0.693147;
// KL = 0.8·log(0.8/0.5) + 0.2·log(0.2/0.5) = 0.376003 − 0.183258 = 0.192745;
// loss = 0.5·0.693147 + 0.5·4·0.192745 = 0.346574 + 0.385490 = 0.732064.
func TestLossHandComputed(t *testing.T) {
	loss, grad := KDLoss([]float64{0, 0}, []float32{0.8, 0.2}, []int{0}, 2, 2, 0.5, 0.5)
	const tol = 1e-6 // p_T is float32
	if math.Abs(loss-0.732064) > tol {
		t.Errorf("loss = %.6f, want 0.732064", loss)
	}
	// ∂/∂s_0 = 0.5·(0.5 − 1) + 0.5·2·(0.5 − 0.8) = −0.25 − 0.3 = −0.55; ∂/∂s_1 = +0.55.
	if math.Abs(grad[0]+0.55) > tol || math.Abs(grad[1]-0.55) > tol {
		t.Errorf("grad = %v, want [-0.55 0.55]", grad)
	}
}

// TestLossGradientFD checks the analytic gradient against central finite
// differences (gonum/diff/fd) on random logits; tolerance 1e-6.
func TestLossGradientFD(t *testing.T) {
	s := []float64{0.3, -1.2, 2.0, 0.5, 0.1, -0.4, 1.5, 1.5, -2}
	teacher := []float64{2, 0, -1, 0.5, 0.5, 3, -1, 1, 0}
	labels := []int{2, 1, 0}
	for _, tau := range []float64{1, 4} {
		p, err := Targets(teacher, 3, tau, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, grad := KDLoss(s, p, labels, 3, tau, 0.1, 0.9)
		num := fd.Gradient(nil, func(x []float64) float64 {
			l, _ := KDLoss(x, p, labels, 3, tau, 0.1, 0.9)
			return l
		}, s, &fd.Settings{Formula: fd.Central})
		for i := range grad {
			if math.Abs(grad[i]-num[i]) > 1e-6 {
				t.Errorf("τ=%v: ∂L/∂s[%d] = %.8f, finite differences %.8f", tau, i, grad[i], num[i])
			}
		}
	}
}

// TestTargetsTendToUniform: as τ grows, softmax(t/τ) → uniform.
func TestTargetsTendToUniform(t *testing.T) {
	logits := []float64{8, 1, -3, 0}
	prevMax := 1.0
	for _, tau := range []float64{1, 2, 4, 16, 1e6} {
		p, _ := Targets(logits, 4, tau, nil)
		m := 0.0
		for _, v := range p {
			m = math.Max(m, float64(v))
		}
		if m > prevMax {
			t.Errorf("τ=%v: max prob %v grew", tau, m)
		}
		prevMax = m
	}
	if math.Abs(prevMax-0.25) > 1e-5 {
		t.Errorf("τ=1e6: max prob %v, want 0.25", prevMax)
	}
}

type tempCal struct{ T float64 }

func (c tempCal) MapLogits(z []float64, _ int) []float64 {
	out := make([]float64, len(z))
	for i, v := range z {
		out[i] = v / c.T
	}
	return out
}

type probCal struct{ p []float64 }

func (c probCal) Probs([]float64, int) []float64 { return c.p }

// TestCalibratedTargets: temperature scaling by T then KD at τ equals raw KD
// at τ·T (the effective temperature), and probability calibrators enter as log p.
func TestCalibratedTargets(t *testing.T) {
	z := []float64{3, 1, -2, 0.5, 0.4, 0.1}
	cal, _ := Targets(z, 3, 4, tempCal{T: 1.5})
	eff, _ := Targets(z, 3, 6, nil)
	for i := range cal {
		if math.Abs(float64(cal[i]-eff[i])) > 1e-7 {
			t.Fatalf("softmax((t/1.5)/4) != softmax(t/6): %v vs %v", cal, eff)
		}
	}
	p := []float64{0.7, 0.2, 0.1, 0.5, 0.5, 0}
	got, _ := Targets(z, 3, 1, probCal{p: p})
	for i := range p {
		if math.Abs(float64(got[i])-p[i]) > 1e-6 {
			t.Errorf("τ=1 with a probability calibrator: target %v, want its probabilities %v", got, p)
			break
		}
	}
	if _, err := Targets(z, 3, 0, nil); err == nil {
		t.Error("τ=0 accepted")
	}
}

func TestFormula(t *testing.T) {
	got := Formula(Hinton{}, 0.1, 0.9, 4, "t/1.83")
	want := "loss = 0.1·CE(y, s) + 0.9·4²·KL(softmax(t/1.83/4) ‖ softmax(s/4))"
	if got != want {
		t.Errorf("Formula = %q\nwant        %q", got, want)
	}
}
