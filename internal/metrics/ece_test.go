package metrics

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// Hand-computed cases. tol covers float64 rounding of a few sums.
const tol = 1e-12

func TestBinIndexEdges(t *testing.T) {
	up := func(x float64) float64 { return math.Nextafter(x, 2) }
	tests := []struct {
		x    float64
		m    int
		want int
	}{
		{0, 15, 0},              // 0 joins the first bin
		{1.0 / 15, 15, 0},       // on an edge: lower bin
		{up(1.0 / 15), 15, 1},   // just above an edge: upper bin
		{0.5, 15, 7},            // (7/15, 8/15]
		{14.0 / 15, 15, 13},     // on the last inner edge
		{up(14.0 / 15), 15, 14}, // just above it
		{1, 15, 14},             // exactly 1.0: last bin
		{0.3, 10, 2},            // k/M edge, (0.2, 0.3]
		{0.30000000000000004, 10, 3},
		{0.7, 10, 6},
		{1e-300, 10, 0},
		{-0.1, 10, 0}, // clamped
		{1.5, 10, 9},  // clamped
		{0.25, 1, 0},
		{1, 1, 0},
	}
	for _, tt := range tests {
		if got := BinIndex(tt.x, tt.m); got != tt.want {
			t.Errorf("BinIndex(%v, %d) = %d, want %d", tt.x, tt.m, got, tt.want)
		}
	}
}

// Every edge k/M of every M up to 64 belongs to bin k−1, the next float up to bin k.
func TestBinIndexAllEdges(t *testing.T) {
	for m := 1; m <= 64; m++ {
		for k := 1; k <= m; k++ {
			x := float64(k) / float64(m)
			if got := BinIndex(x, m); got != k-1 {
				t.Fatalf("BinIndex(%d/%d) = %d, want %d", k, m, got, k-1)
			}
			if k < m {
				if got := BinIndex(math.Nextafter(x, 2), m); got != k {
					t.Fatalf("BinIndex(next(%d/%d)) = %d, want %d", k, m, got, k)
				}
			}
		}
	}
}

// edgeProbs is a C=5 set whose top-label confidences sit on bin edges of
// M=5 bins (0,.2],(.2,.4],(.4,.6],(.6,.8],(.8,1], and exactly at 1.0:
//
//	row  conf                 bin  correct
//	0    0.2 (uniform row)    0    no (argmax is class 0 on the tie, label 1)
//	1    0.6                  2    yes
//	2    0.6000000000000001   3    yes
//	3    1.0                  4    yes
//	4    0.9                  4    no
//	5    0.8                  3    yes
//
// Bins: b0 acc 0 conf .2 (gap .2); b2 acc 1 conf .6 (gap .4); b3 acc 1 conf
// .7 (gap .3, 2 rows); b4 acc .5 conf .95 (gap .45, 2 rows).
// ECE = (.2 + .4 + 2·.3 + 2·.45)/6 = 0.35; MCE = 0.45.
func edgeProbs() ([]float64, []int) {
	p := []float64{
		0.2, 0.2, 0.2, 0.2, 0.2,
		0.6, 0.1, 0.1, 0.1, 0.1,
		0.6000000000000001, 0.1, 0.1, 0.1, 0.1,
		0, 0, 1, 0, 0,
		0.9, 0.1, 0, 0, 0,
		0.8, 0.2, 0, 0, 0,
	}
	return p, []int{1, 0, 0, 2, 1, 0}
}

func TestECEHandComputed(t *testing.T) {
	p, y := edgeProbs()
	if got := ECE(p, y, 5, 5); math.Abs(got-0.35) > tol {
		t.Errorf("ECE = %v, want 0.35", got)
	}
	if got := MCE(p, y, 5, 5); math.Abs(got-0.45) > tol {
		t.Errorf("MCE = %v, want 0.45", got)
	}
}

func TestReliabilityHandComputed(t *testing.T) {
	p, y := edgeProbs()
	conf, correct := TopLabel(p, y, 5)
	got := Reliability(conf, correct, 5)
	want := []Bin{
		{0, 0.2, 1, 0, 0.2},
		{0.2, 0.4, 0, 0, 0},
		{0.4, 0.6, 1, 1, 0.6},
		{0.6, 0.8, 2, 1, 0.7},
		{0.8, 1, 2, 0.5, 0.95},
	}
	for b := range want {
		g, w := got[b], want[b]
		if g.Count != w.Count || g.Lo != w.Lo || g.Hi != w.Hi ||
			math.Abs(g.Accuracy-w.Accuracy) > tol || math.Abs(g.Confidence-w.Confidence) > tol {
			t.Errorf("bin %d = %+v, want %+v", b, g, w)
		}
	}
	if e := ECEFromBins(got, len(conf)); math.Abs(e-0.35) > tol {
		t.Errorf("ECEFromBins = %v, want 0.35", e)
	}
}

// RMSCE and the debiased ℓ2 error of Kumar et al. 2019, by hand, M = 2
// bins (0, .5] and (.5, 1]:
//
//	a: bin 0 {.2 ✓, .4 ✗, .3 ✗}: acc 1/3, conf .3, (acc−conf)² = 1/900,
//	   variance term (1/3)(2/3)/(3−1) = 1/9
//	   bin 1 {.6 ✓, .6 ✓, .7 ✓, .7 ✓}: acc 1, conf .65, (acc−conf)² = .1225, variance 0
//	   RMSCE² = (3·(1/900) + 4·.1225)/7
//	   debiased² = (3·(1/900 − 1/9) + 4·.1225)/7 = (−.33 + .49)/7 = .16/7 → .4/√7
//	b: bin 0 {.4 ✗} has one example: it counts in RMSCE (.16) but not in the debiased sum:
//	   RMSCE² = (.16 + 4·.1225)/5 = .13, debiased² = 4·.1225/5 = .098
//	c: bin 0 {.3 ✗, .4 ✓}: (.5−.35)² − .25/1 < 0 and bin 1 {.8 ✓, .8 ✓, .9 ✗, .6 ✓}:
//	   .025² − .75·.25/3 < 0: the debiased sum is negative and clamps to 0
func TestRMSCEAndDebiasedHandComputed(t *testing.T) {
	tests := []struct {
		name          string
		conf          []float64
		correct       []bool
		rms, debiased float64
	}{
		{"a", []float64{.2, .4, .3, .6, .6, .7, .7}, []bool{true, false, false, true, true, true, true},
			math.Sqrt((3.0/900 + 4*.1225) / 7), 0.4 / math.Sqrt(7)},
		{"b: single-example bin", []float64{.4, .6, .6, .7, .7}, []bool{false, true, true, true, true},
			math.Sqrt(.13), math.Sqrt(.098)},
		{"c: clamped at 0", []float64{.3, .4, .8, .8, .9, .6}, []bool{false, true, true, true, false, true},
			math.Sqrt((2*.15*.15 + 4*.025*.025) / 6), 0},
	}
	for _, tt := range tests {
		bins := Reliability(tt.conf, tt.correct, 2)
		if got := RMSCEFromBins(bins, len(tt.conf)); math.Abs(got-tt.rms) > tol {
			t.Errorf("%s: RMSCE = %.17g, want %.17g", tt.name, got, tt.rms)
		}
		if got := ECEDebiasedL2FromBins(bins, len(tt.conf)); math.Abs(got-tt.debiased) > tol {
			t.Errorf("%s: debiased ℓ2 = %.17g, want %.17g", tt.name, got, tt.debiased)
		}
	}
}

// On a perfectly calibrated sample (correct with probability equal to the
// confidence) the plug-in RMSCE is biased away from 0 by the bins'
// sampling noise; the debiased estimate is much closer to the true 0.
// Seeded, so the comparison is deterministic.
func TestDebiasedL2CloserToZeroWhenCalibrated(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 0))
	const n = 3000
	conf, correct := make([]float64, n), make([]bool, n)
	for i := range conf {
		conf[i] = 0.5 + 0.5*rng.Float64()
		correct[i] = rng.Float64() < conf[i]
	}
	bins := Reliability(conf, correct, 15)
	rms, deb := RMSCEFromBins(bins, n), ECEDebiasedL2FromBins(bins, n)
	if !(deb < rms/2) {
		t.Errorf("calibrated sample: debiased ℓ2 %v, RMSCE %v; want debiased < RMSCE/2", deb, rms)
	}
}

func TestECEEqualMassHandComputed(t *testing.T) {
	tests := []struct {
		name    string
		conf    []float64
		correct []bool
		m       int
		want    float64
	}{
		// sorted 0.6F 0.7T | 0.8T 0.9T: |1−1.3| + |2−1.7| = 0.6, /4.
		{"two bins", []float64{0.9, 0.6, 0.8, 0.7}, []bool{true, false, true, true}, 2, 0.15},
		// A tie straddles the boundary: ties keep input order.
		// 0.4F 0.5T | 0.5F 0.9T: |1−0.9| + |1−1.4| = 0.5, /4.
		{"tie, correct first", []float64{0.4, 0.5, 0.5, 0.9}, []bool{false, true, false, true}, 2, 0.125},
		// 0.4F 0.5F | 0.5T 0.9T: |0−0.9| + |2−1.4| = 1.5, /4.
		{"tie, wrong first", []float64{0.4, 0.5, 0.5, 0.9}, []bool{false, false, true, true}, 2, 0.375},
		// n < m: empty bins contribute nothing.
		{"fewer examples than bins", []float64{0.9}, []bool{true}, 15, 0.1},
		// n = 5, m = 2: bins of ⌊5/2⌋ = 2 and 3 examples. 0.3T 0.5F | 0.6T 0.7T 0.95T:
		// |1−0.8| + |3−2.25| = 0.95, /5.
		{"unequal sizes", []float64{0.95, 0.3, 0.7, 0.5, 0.6}, []bool{true, true, true, false, true}, 2, 0.19},
	}
	for _, tt := range tests {
		if got := ECEEqualMass(tt.conf, tt.correct, tt.m); math.Abs(got-tt.want) > tol {
			t.Errorf("%s: ECEEqualMass = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// C=2, M=2 bins (0,.5],(.5,1]:
//
//	class 0: p = .8 (bin 1, y=0), .3 (bin 0, y=0), .6 (bin 1, y=1):
//	         bin 0 |1−.3| = .7, bin 1 |1−1.4| = .4
//	class 1: p = .2 (bin 0), .7 (bin 1), .4 (bin 0, y=1):
//	         bin 0 |1−.6| = .4, bin 1 |0−.7| = .7
//	cw_ECE = (1.1 + 1.1) / (N=3) / (C=2) = 11/30.
func TestClasswiseECEHandComputed(t *testing.T) {
	p := []float64{0.8, 0.2, 0.3, 0.7, 0.6, 0.4}
	y := []int{0, 0, 1}
	if got := ClasswiseECE(p, y, 2, 2); math.Abs(got-11.0/30) > tol {
		t.Errorf("ClasswiseECE = %v, want 11/30", got)
	}
}

func TestBinnedMetricsPanics(t *testing.T) {
	p, y := edgeProbs()
	for name, f := range map[string]func(){
		"zero bins":        func() { ECE(p, y, 5, 0) },
		"length mismatch":  func() { ECE(p[:29], y, 5, 15) },
		"label too large":  func() { ECE(p, []int{1, 0, 0, 5, 1, 0}, 5, 15) },
		"no rows":          func() { ECE(nil, nil, 5, 15) },
		"equal mass empty": func() { ECEEqualMass(nil, nil, 15) },
		"reliability":      func() { Reliability([]float64{1}, nil, 15) },
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

// The radix sort behind ECEEqualMass orders exactly like a stable
// comparison sort, ties included.
func TestRadixOrderMatchesComparisonSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	conf := make([]float64, 20000)
	for i := range conf {
		switch i % 4 {
		case 0:
			conf[i] = float64(rng.IntN(50)) / 49 // many ties, exact 0 and 1
		case 1:
			conf[i] = rng.Float64()
		case 2:
			conf[i] = -rng.Float64() * 1e-300 // negatives and subnormals sort too
		default:
			conf[i] = math.Copysign(0, -1) // −0 ties with 0
		}
	}
	got, want := radixOrder(conf), compareOrder(conf)
	if !slices.Equal(got, want) {
		t.Fatal("radix order differs from the stable comparison order")
	}
}
