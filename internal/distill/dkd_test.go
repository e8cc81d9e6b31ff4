package distill

import (
	"math"
	"testing"
)

// TestDKDHandComputed: C = 3, y = 0, τ = 1, α = 1, β = 8, teacher logits
// (0, 0, 0): p_T = (1/3, 1/3, 1/3), b_T = (1/3, 2/3), p̂_T = (1/2, 1/2);
// student logits (ln 2, ln 2, 0): p_S = (0.4, 0.4, 0.2), b_S = (0.4, 0.6),
// p̂_S = (2/3, 1/3).
// TCKD = ⅓ ln(⅓/0.4) + ⅔ ln(⅔/0.6) = 0.00946649;
// NCKD = ½ ln(½/⅔) + ½ ln(½/⅓) = 0.05889152;
// term = 0.00946649 + 8·0.05889152 = 0.48059863 (evaluated with python3).
// The gradient is checked against finite differences by distilltest.
func TestDKDHandComputed(t *testing.T) {
	d := DKD{Alpha: 1, Beta: 8}
	zt, err := d.Targets([]float64{0, 0, 0}, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := d.Reference([]float64{math.Ln2, math.Ln2, 0}, zt, []int{0}, 3, 1)
	const tol = 1e-8
	if math.Abs(got-0.4805986341) > tol {
		t.Errorf("DKD = %.10f, want 0.4805986341", got)
	}
	// α only: TCKD alone; at τ = 2 the τ² factor multiplies a term of
	// softened distributions, so it is not 4× the τ = 1 value.
	tc, _ := DKD{Alpha: 1}.Reference([]float64{math.Ln2, math.Ln2, 0}, zt, []int{0}, 3, 1)
	if math.Abs(tc-0.0094664915) > tol {
		t.Errorf("TCKD = %.10f, want 0.0094664915", tc)
	}
}

// TestDKDAgainstTorch compares the term with mdistiller's dkd_loss
// (mdistiller/distillers/DKD.py, copied verbatim into the script) in
// torch 1.13 float64 on random logits, τ ∈ {1, 4}; tolerance 1e-9.
func TestDKDAgainstTorch(t *testing.T) {
	torchCrossCheck(t, "dkd", DKD{Alpha: 1, Beta: 8})
}
