package distill

import (
	"math"
	"testing"
)

// TestMSEHandComputed: s = (1, 2), z = (0, 4), N = 1, C = 2:
// term = ((1−0)² + (2−4)²)/2 = 2.5; ∂/∂s = 2(s − z)/2 = (1, −2).
// τ is ignored: the same at τ = 4. The calibrated arm's target for temp is
// z/T (CalibratedLogits): with T = 2, z = (0, 2) and the term is (1 + 0)/2 = 0.5.
func TestMSEHandComputed(t *testing.T) {
	for _, tau := range []float64{1, 4} {
		z, err := MSE{}.Targets([]float64{0, 4}, 2, tau)
		if err != nil {
			t.Fatal(err)
		}
		got, grad := MSE{}.Reference([]float64{1, 2}, z, []int{0}, 2, tau)
		if got != 2.5 || grad[0] != 1 || grad[1] != -2 {
			t.Errorf("τ=%v: MSE = %v, grad %v; want 2.5, [1 -2]", tau, got, grad)
		}
	}
	zc, err := CalibratedLogits([]float64{0, 4}, 2, halve{})
	if err != nil {
		t.Fatal(err)
	}
	z, _ := MSE{}.Targets(zc, 2, 4)
	if got, _ := (MSE{}).Reference([]float64{1, 2}, z, []int{0}, 2, 4); math.Abs(got-0.5) > 1e-15 {
		t.Errorf("MSE against t/2 = %v, want 0.5", got)
	}
	if e := (MSE{}).EffectiveTemperature(4, 2); e != 2 {
		t.Errorf("effective temperature %v, want T_cal = 2", e)
	}
}

// halve is temperature scaling with T = 2.
type halve struct{}

func (halve) MapLogits(z []float64, _ int) []float64 {
	out := make([]float64, len(z))
	for i, v := range z {
		out[i] = v / 2
	}
	return out
}

// TestMSEAgainstTorch compares the term with torch.nn.functional.mse_loss
// (Kim et al. 2021's code) in torch 1.13 float64; tolerance 1e-9.
func TestMSEAgainstTorch(t *testing.T) {
	torchCrossCheck(t, "mse", MSE{})
}
