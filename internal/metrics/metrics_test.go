package metrics

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// synthetic returns N×C logits z ~ scale·N(0,1) and labels drawn from
// softmax(z/scale·2): a model over-confident by a factor of about scale/2.
func synthetic(seed uint64, n, c int, scale float64) ([]float64, []int) {
	rng := rand.New(rand.NewPCG(seed, 1))
	z := make([]float64, n*c)
	y := make([]int, n)
	p := make([]float64, c)
	for i := range n {
		row := z[i*c : (i+1)*c]
		for k := range row {
			row[k] = scale * rng.NormFloat64()
		}
		for k, v := range row {
			p[k] = v * 2 / scale
		}
		Softmax(p, p, c)
		u, j := rng.Float64(), 0
		for ; j < c-1 && u >= p[j]; j++ {
			u -= p[j]
		}
		y[i] = j
	}
	return z, y
}

func TestNLLHandComputed(t *testing.T) {
	// Rows [0, 0] and [log 3, 0], both labelled 0: p = 1/2 and 3/4.
	z := []float64{0, 0, math.Log(3), 0}
	y := []int{0, 0}
	want := (math.Log(2) + math.Log(4.0/3)) / 2
	if got := NLL(z, y, 2, 1); math.Abs(got-want) > tol {
		t.Errorf("NLL = %v, want %v", got, want)
	}
	// Doubling the logits and using T = 2 gives the same distribution.
	z2 := []float64{0, 0, 2 * math.Log(3), 0}
	if got := NLL(z2, y, 2, 2); math.Abs(got-want) > tol {
		t.Errorf("NLL(2z, T=2) = %v, want %v", got, want)
	}
	// Huge logits do not overflow: p_y = 1/(1+e^-1000) ≈ 1.
	if got := NLL([]float64{1000, 0}, []int{0}, 2, 1); got != 0 {
		t.Errorf("NLL of a certain correct row = %v, want 0", got)
	}
	if got := NLL([]float64{1000, 0}, []int{1}, 2, 1); math.Abs(got-1000) > 1e-9 {
		t.Errorf("NLL of a certain wrong row = %v, want 1000", got)
	}
}

func TestBrierAccuracyHandComputed(t *testing.T) {
	// (.04+.04) + (.49+.49) + (.36+.36) = 1.78 over 3 rows.
	p := []float64{0.8, 0.2, 0.3, 0.7, 0.6, 0.4}
	y := []int{0, 0, 1}
	if got := Brier(p, y, 2); math.Abs(got-1.78/3) > tol {
		t.Errorf("Brier = %v, want %v", got, 1.78/3)
	}
	if got := Accuracy(p, y, 2); math.Abs(got-1.0/3) > tol {
		t.Errorf("Accuracy = %v, want 1/3", got)
	}
	// Ties go to the first class.
	if got := Accuracy([]float64{0.5, 0.5}, []int{1}, 2); got != 0 {
		t.Errorf("Accuracy on a tie labelled 1 = %v, want 0", got)
	}
	if got := Brier([]float64{0, 1, 0}, []int{0}, 3); got != 2 {
		t.Errorf("Brier of a certain wrong row = %v, want 2", got)
	}
}

func TestSoftmaxLogSumExp(t *testing.T) {
	z := []float64{1, 2, 3, -1000, 0, 1000}
	p := Softmax(nil, z, 3)
	e := []float64{math.Exp(-2), math.Exp(-1), 1}
	s := e[0] + e[1] + e[2]
	want := []float64{e[0] / s, e[1] / s, e[2] / s, 0, 0, 1}
	for i := range want {
		if math.Abs(p[i]-want[i]) > 1e-15 {
			t.Errorf("softmax[%d] = %v, want %v", i, p[i], want[i])
		}
	}
	if got := LogSumExp([]float64{1, 2, 3}); math.Abs(got-(3+math.Log(s))) > 1e-15 {
		t.Errorf("LogSumExp = %v", got)
	}
	if got := LogSumExp([]float64{math.Inf(-1)}); !math.IsInf(got, -1) {
		t.Errorf("LogSumExp(-Inf) = %v", got)
	}
}

// Evaluate's fused single pass must agree with the separate functions.
func TestEvaluateMatchesParts(t *testing.T) {
	const eps = 1e-12
	z, y := synthetic(1, 9000, 7, 4) // 2 chunks at C = 7
	p := Softmax(nil, z, 7)
	conf, correct := TopLabel(p, y, 7)
	want := Summary{
		N:        len(y),
		Accuracy: Accuracy(p, y, 7),
		NLL:      NLL(z, y, 7, 1),
		Brier:    Brier(p, y, 7),
		ECE:      ECE(p, y, 7, 15),
		MCE:      MCE(p, y, 7, 15),
		ECEEM:    ECEEqualMass(conf, correct, 15),
		CWECE:    ClasswiseECE(p, y, 7, 15),
		RMSCE:    RMSCE(p, y, 7, 15),
		Bins:     15,
	}
	want.ECEDebiasedL2 = ECEDebiasedL2(p, y, 7, 15)
	got, rel := EvaluateReliability(z, y, 7, 15)
	compareSummary(t, "Evaluate", got, want, eps)
	if e := ECEFromBins(rel, len(y)); math.Abs(e-want.ECE) > eps {
		t.Errorf("ECE of returned bins = %v, want %v", e, want.ECE)
	}
	want.NLL = NLLProbs(p, y, 7)
	compareSummary(t, "EvaluateProbs", EvaluateProbs(p, y, 7, 15), want, eps)
	if math.Abs(want.NLL-NLL(z, y, 7, 1)) > 1e-9 {
		t.Errorf("NLLProbs = %v, NLL = %v", want.NLL, NLL(z, y, 7, 1))
	}
}

func compareSummary(t *testing.T, name string, got, want Summary, eps float64) {
	t.Helper()
	if got.N != want.N || got.Bins != want.Bins {
		t.Errorf("%s: N, Bins = %d, %d, want %d, %d", name, got.N, got.Bins, want.N, want.Bins)
	}
	for _, f := range []struct {
		name      string
		got, want float64
	}{
		{"accuracy", got.Accuracy, want.Accuracy}, {"nll", got.NLL, want.NLL}, {"brier", got.Brier, want.Brier},
		{"ece", got.ECE, want.ECE}, {"mce", got.MCE, want.MCE}, {"ece_em", got.ECEEM, want.ECEEM},
		{"cw_ece", got.CWECE, want.CWECE}, {"rmsce", got.RMSCE, want.RMSCE},
		{"ece_debiased_l2", got.ECEDebiasedL2, want.ECEDebiasedL2},
	} {
		if math.Abs(f.got-f.want) > eps {
			t.Errorf("%s: %s = %.17g, want %.17g", name, f.name, f.got, f.want)
		}
	}
}

// Results are bit-identical whatever the number of CPUs.
func TestDeterministicAcrossGOMAXPROCS(t *testing.T) {
	z, y := synthetic(2, 40000, 10, 3)
	old := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(old)
	one := Evaluate(z, y, 10, 15)
	nllOne := NLL(z, y, 10, 1.7)
	runtime.GOMAXPROCS(4)
	if four := Evaluate(z, y, 10, 15); four != one {
		t.Errorf("GOMAXPROCS 4: %+v\nGOMAXPROCS 1: %+v", four, one)
	}
	if nll := NLL(z, y, 10, 1.7); nll != nllOne {
		t.Errorf("NLL differs across GOMAXPROCS: %v vs %v", nll, nllOne)
	}
}

// A perfectly calibrated sampler has small calibration errors, an
// over-confident one large ones: a sanity check that the metrics move the
// right way (the hand-computed tests pin the exact values).
func TestCalibrationErrorsDirection(t *testing.T) {
	z, y := synthetic(3, 50000, 10, 2) // scale 2: labels ~ softmax(z), calibrated
	cal := Evaluate(z, y, 10, 15)
	z4, y4 := synthetic(3, 50000, 10, 6) // labels ~ softmax(z/3): over-confident
	over := Evaluate(z4, y4, 10, 15)
	if cal.ECE > 0.01 || cal.CWECE > 0.01 || cal.ECEEM > 0.01 {
		t.Errorf("calibrated sampler: ece %v, cw_ece %v, ece_em %v, want < 0.01", cal.ECE, cal.CWECE, cal.ECEEM)
	}
	if over.ECE < 0.1 {
		t.Errorf("over-confident sampler: ece %v, want > 0.1", over.ECE)
	}
}

func TestEvaluatePanicsOnBadInput(t *testing.T) {
	for name, f := range map[string]func(){
		"label":       func() { Evaluate([]float64{0, 1}, []int{2}, 2, 15) },
		"shape":       func() { Evaluate([]float64{0, 1, 2}, []int{0}, 2, 15) },
		"empty":       func() { Evaluate(nil, nil, 2, 15) },
		"temperature": func() { NLL([]float64{0, 1}, []int{0}, 2, 0) },
		"softmax dst": func() { Softmax(make([]float64, 1), []float64{0, 1}, 2) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
