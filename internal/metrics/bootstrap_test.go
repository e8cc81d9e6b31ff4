package metrics

import (
	"math"
	"runtime"
	"testing"
)

func TestBootstrapDeterministic(t *testing.T) {
	z, y := synthetic(4, 3000, 5, 4)
	p := Softmax(nil, z, 5)
	ece, _ := NamedStatistic("ece", 15)
	old := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(old)
	a := Bootstrap(ece, p, y, 5, 200, 0.95, 7)
	runtime.GOMAXPROCS(4)
	b := Bootstrap(ece, p, y, 5, 200, 0.95, 7)
	if a != b {
		t.Errorf("same seed, different GOMAXPROCS: %+v vs %+v", a, b)
	}
	if c := Bootstrap(ece, p, y, 5, 200, 0.95, 8); c == a {
		t.Errorf("different seeds gave the same interval %+v", c)
	}
	if !(a.Lo <= a.Estimate && a.Estimate <= a.Hi) || a.Lo == a.Hi {
		t.Errorf("interval %+v does not bracket its estimate", a)
	}
}

// For accuracy (a Bernoulli mean) the percentile interval must match the
// normal approximation p ± 1.96·sqrt(p(1−p)/n): width within 15% (the
// Monte-Carlo error of 2000 resamples is a few percent) and centred on p
// within 0.2 standard errors.
func TestBootstrapAccuracyMatchesNormalApproximation(t *testing.T) {
	z, y := synthetic(5, 4000, 4, 2)
	p := Softmax(nil, z, 4)
	iv := Bootstrap(Accuracy, p, y, 4, 2000, 0.95, 1)
	acc := Accuracy(p, y, 4)
	se := math.Sqrt(acc * (1 - acc) / float64(len(y)))
	if w, want := iv.Hi-iv.Lo, 2*1.959964*se; math.Abs(w-want) > 0.15*want {
		t.Errorf("width %v, want %v ± 15%%", w, want)
	}
	if mid := (iv.Lo + iv.Hi) / 2; math.Abs(mid-acc) > 0.2*se {
		t.Errorf("centre %v, want %v ± %v", mid, acc, 0.2*se)
	}
	if iv.Estimate != acc || iv.Level != 0.95 || iv.Resamples != 2000 || iv.Seed != 1 {
		t.Errorf("interval record %+v", iv)
	}
}

func TestNamedStatistics(t *testing.T) {
	z, y := synthetic(6, 2000, 6, 4)
	p := Softmax(nil, z, 6)
	s := EvaluateProbs(p, y, 6, 10)
	want := map[string]float64{
		"accuracy": s.Accuracy, "nll": s.NLL, "brier": s.Brier, "ece": s.ECE,
		"mce": s.MCE, "ece_em": s.ECEEM, "cw_ece": s.CWECE,
	}
	for _, name := range StatisticNames {
		f, ok := NamedStatistic(name, 10)
		if !ok {
			t.Fatalf("NamedStatistic(%q) unknown", name)
		}
		if got := f(p, y, 6); math.Abs(got-want[name]) > 1e-12 {
			t.Errorf("%s = %v, Summary has %v", name, got, want[name])
		}
	}
	if _, ok := NamedStatistic("ece_15", 10); ok {
		t.Error("NamedStatistic accepted an unknown name")
	}
}
