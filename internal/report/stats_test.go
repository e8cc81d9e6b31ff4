package report

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/kdcal/kdcal/internal/config"
)

func TestRanks(t *testing.T) {
	// Hand-computed fractional ranks: ties share the mean of the ranks they span.
	for _, tc := range []struct {
		x, want []float64
	}{
		{[]float64{10, 20, 30}, []float64{1, 2, 3}},
		{[]float64{30, 10, 20}, []float64{3, 1, 2}},
		{[]float64{10, 20, 20, 30}, []float64{1, 2.5, 2.5, 4}},
		{[]float64{5, 5, 5}, []float64{2, 2, 2}},
		{[]float64{2, 1, 4, 4, 5}, []float64{2, 1, 3.5, 3.5, 5}},
		{[]float64{1, 1, 2, 2}, []float64{1.5, 1.5, 3.5, 3.5}},
	} {
		got := Ranks(nil, tc.x)
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("Ranks(%v) = %v, want %v", tc.x, got, tc.want)
				break
			}
		}
	}
}

func TestSpearman(t *testing.T) {
	const tol = 1e-12
	for _, tc := range []struct {
		name string
		x, y []float64
		want float64
	}{
		{"monotone increasing", []float64{1, 2, 3}, []float64{0.1, 0.5, 0.9}, 1},
		{"monotone decreasing, nonlinear", []float64{1e4, 1e5, 1e6, 1e7}, []float64{4, 3, 2.5, -1}, -1},
		// Ranks 1,2,3 vs 1,3,2: 1 − 6·Σd²/(n(n²−1)) = 1 − 6·2/24 = 0.5.
		{"one swap", []float64{1, 2, 3}, []float64{1, 3, 2}, 0.5},
		// Ties in y: ranks (1..5) vs (2,1,3.5,3.5,5); centred (−2,−1,0,1,2) and
		// (−1,−2,.5,.5,2): Σdxdy = 8.5, Σdx² = 10, Σdy² = 9.5, ρ = 8.5/√95.
		{"ties", []float64{1, 2, 3, 4, 5}, []float64{2, 1, 4, 4, 5}, 8.5 / math.Sqrt(95)},
		// Ties in both: ranks (1.5,1.5,3.5,3.5) vs (1,2,3,4): centred
		// (−1,−1,1,1) and (−1.5,−.5,.5,1.5): Σ = 4, √(4·5) → 4/√20.
		{"ties in x", []float64{7, 7, 9, 9}, []float64{1, 2, 3, 4}, 4 / math.Sqrt(20)},
	} {
		if got := Spearman(tc.x, tc.y); math.Abs(got-tc.want) > tol {
			t.Errorf("%s: Spearman = %.15f, want %.15f", tc.name, got, tc.want)
		}
	}
	for _, tc := range []struct{ x, y []float64 }{
		{[]float64{1}, []float64{2}},
		{[]float64{1, 2, 3}, []float64{4, 4, 4}},
	} {
		if got := Spearman(tc.x, tc.y); !math.IsNaN(got) {
			t.Errorf("Spearman(%v, %v) = %v, want NaN (undefined)", tc.x, tc.y, got)
		}
	}
}

// TestBootstrapReimplementation checks Bootstrap against a direct
// reimplementation drawing from an identically seeded generator.
func TestBootstrapReimplementation(t *testing.T) {
	x := []float64{0.81, 0.84, 0.79, 0.86}
	mean := func(idx []int) float64 {
		var s float64
		for _, j := range idx {
			s += x[j]
		}
		return s / float64(len(idx))
	}
	got := Bootstrap(rand.New(rand.NewPCG(7, 7)), len(x), 200, mean)
	rng := rand.New(rand.NewPCG(7, 7))
	var want []float64
	for range 200 {
		var s float64
		for range x {
			s += x[rng.IntN(len(x))]
		}
		want = append(want, s/float64(len(x)))
	}
	sort.Float64s(want)
	if len(got) != len(want) {
		t.Fatalf("%d values, want %d", len(got), len(want))
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 1e-15 {
			t.Fatalf("value %d = %v, want %v", i, got[i], want[i])
		}
	}
}

// TestBootstrapEnumerable: with 2 seeds the 4 equally likely resamples
// (0,0), (0,1), (1,0), (1,1) give means 0, ½, ½, 1 for x = {0, 1}, so the
// resampled mean is 0, ½, 1 with probabilities ¼, ½, ¼.
func TestBootstrapEnumerable(t *testing.T) {
	x := []float64{0, 1}
	const b = 40000
	got := Bootstrap(rand.New(rand.NewPCG(1, 2)), 2, b, func(idx []int) float64 { return (x[idx[0]] + x[idx[1]]) / 2 })
	count := map[float64]int{}
	for _, v := range got {
		count[v]++
	}
	for v, p := range map[float64]float64{0: 0.25, 0.5: 0.5, 1: 0.25} {
		// 5 binomial standard deviations: a false failure has probability < 1e-6.
		tol := 5 * math.Sqrt(p*(1-p)/b)
		if f := float64(count[v]) / b; math.Abs(f-p) > tol {
			t.Errorf("P(mean = %v) = %.4f, want %.2f ± %.4f", v, f, p, tol)
		}
	}
	if lo, hi := PercentileCI(got, 0.95); lo != 0 || hi != 1 {
		t.Errorf("95%% CI = [%v, %v], want [0, 1]", lo, hi)
	}
	// NaN statistics are dropped.
	if n := len(Bootstrap(rand.New(rand.NewPCG(1, 2)), 2, 100, func([]int) float64 { return math.NaN() })); n != 0 {
		t.Errorf("%d values kept from an all-NaN statistic", n)
	}
}

func TestPercentileCI(t *testing.T) {
	// 1..100: the empirical 2.5% quantile is the ⌈2.5⌉ = 3rd order statistic,
	// the 97.5% one the ⌈97.5⌉ = 98th (hand-computed).
	x := make([]float64, 100)
	for i := range x {
		x[i] = float64(i + 1)
	}
	if lo, hi := PercentileCI(x, 0.95); lo != 3 || hi != 98 {
		t.Errorf("CI = [%v, %v], want [3, 98]", lo, hi)
	}
	if lo, hi := PercentileCI(nil, 0.95); !math.IsNaN(lo) || !math.IsNaN(hi) {
		t.Errorf("CI of nothing = [%v, %v], want NaN", lo, hi)
	}
}

func TestPermutationSpearmanExact(t *testing.T) {
	const tol = 1e-12
	for _, tc := range []struct {
		name    string
		x, y    []float64
		p, pmin float64
		count   int
	}{
		// 3 sizes, perfectly monotone: of the 3! = 6 permutations exactly the
		// identity and the reversal reach |ρ| = 1, so p = 2/6 = 1/3 = pmin.
		{"3 sizes monotone", []float64{1e4, 1e5, 1e6}, []float64{0.80, 0.81, 0.83}, 1.0 / 3, 1.0 / 3, 6},
		// 3 sizes, ρ = 0.5: |ρ| ≥ 0.5 holds for every permutation of 3 (ρ ∈ {±1, ±0.5}): p = 1.
		{"3 sizes one swap", []float64{1, 2, 3}, []float64{1, 3, 2}, 1, 1.0 / 3, 6},
		// 4 sizes, ρ = 1: 2 of 24 → 1/12.
		{"4 sizes monotone", []float64{1, 2, 3, 4}, []float64{1, 2, 3, 4}, 2.0 / 24, 2.0 / 24, 24},
		// 4 sizes, ρ = 1 − 6·2/60 = 0.8, i.e. |ρ| ≥ 0.8 ⇔ Σd² ≤ 2 or ≥ 18:
		// identity, 3 adjacent transpositions, the reversal and its 3
		// neighbours: 8 of 24 = 1/3 (hand-enumerated).
		{"4 sizes ρ = 0.8", []float64{1, 2, 3, 4}, []float64{1, 3, 2, 4}, 8.0 / 24, 2.0 / 24, 24},
	} {
		r := PermutationSpearman(rand.New(rand.NewPCG(1, 1)), tc.x, tc.y, 1000)
		if !r.Exact || r.Count != tc.count || math.Abs(r.P-tc.p) > tol || math.Abs(r.PMin-tc.pmin) > tol {
			t.Errorf("%s: %+v, want exact p = %v, pmin = %v over %d permutations", tc.name, r, tc.p, tc.pmin, tc.count)
		}
	}
}

func TestPermutationSpearmanMonteCarlo(t *testing.T) {
	// 8 units: 8! = 40320 > 500 permutations, so Monte Carlo with
	// p = (b+1)/(m+1). For a perfectly monotone pair b counts random
	// permutations with |ρ| = 1: (b+1)/(m+1) ≥ 1/501, and P(b > 0) is tiny.
	x := []float64{1, 2, 3, 4, 5, 6, 7, 8}
	r := PermutationSpearman(rand.New(rand.NewPCG(3, 4)), x, x, 500)
	if r.Exact || r.Count != 500 || math.Abs(r.P-1.0/501) > 1e-12 || math.Abs(r.PMin-1.0/501) > 1e-12 {
		t.Errorf("%+v, want Monte Carlo p = pmin = 1/501", r)
	}
	// Unrelated values (ρ = 1/7): the exact p over all 8! = 40320
	// permutations is 30322/40320, from a brute-force numpy reference
	// (np.corrcoef of average ranks over itertools.permutations); the Monte
	// Carlo p must be near it.
	y := []float64{3, 8, 1, 5, 2, 7, 6, 4}
	exact := PermutationSpearman(nil, x, y, 50000)
	if !exact.Exact || exact.Count != 40320 || math.Abs(exact.P-30322.0/40320) > 1e-12 {
		t.Fatalf("exact: %+v, want p = 30322/40320 over 40320 permutations", exact)
	}
	mc := PermutationSpearman(rand.New(rand.NewPCG(5, 6)), x, y, 20000)
	// 5 binomial standard deviations.
	if tol := 5 * math.Sqrt(exact.P*(1-exact.P)/20000); math.Abs(mc.P-exact.P) > tol {
		t.Errorf("Monte Carlo p = %v, exact %v (tolerance %v)", mc.P, exact.P, tol)
	}
}

func TestSignFlipTest(t *testing.T) {
	const tol = 1e-12
	for _, tc := range []struct {
		name    string
		d       []float64
		p, pmin float64
	}{
		// All three positive: only "all +" and "all −" reach |mean| = 2: 2/8.
		{"all positive", []float64{1, 2, 3}, 0.25, 0.25},
		// d = {1, −1, 2}: |mean| over the 8 sign patterns is
		// 4/3, 0, 2/3, 2/3, 2/3, 2/3, 0, 4/3; ≥ 2/3 in 6 → 0.75 (hand-enumerated).
		{"mixed", []float64{1, -1, 2}, 0.75, 0.25},
		// NaN (a missing pair) is ignored: same as {1, 2}: 2/4.
		{"missing pair", []float64{1, math.NaN(), 2}, 0.5, 0.5},
	} {
		r := SignFlipTest(nil, tc.d, 1000)
		if !r.Exact || math.Abs(r.P-tc.p) > tol || math.Abs(r.PMin-tc.pmin) > tol {
			t.Errorf("%s: %+v, want exact p = %v, pmin = %v", tc.name, r, tc.p, tc.pmin)
		}
	}
	if r := SignFlipTest(nil, []float64{math.NaN()}, 1000); !math.IsNaN(r.P) {
		t.Errorf("no pairs: p = %v, want NaN", r.P)
	}
}

func TestAggregate(t *testing.T) {
	// Mean of {0.8, 0.9} = 0.85; sample std = √(2·0.05²/1) = 0.0707106781.
	a := aggregate([]float64{0.8, math.NaN(), 0.9})
	if a.N != 2 || math.Abs(a.Mean-0.85) > 1e-15 || math.Abs(a.Std-0.05*math.Sqrt2) > 1e-15 {
		t.Errorf("aggregate = %+v", a)
	}
	if a := aggregate([]float64{0.8}); a.N != 1 || !math.IsNaN(a.Std) {
		t.Errorf("one value: %+v, want std NaN", a)
	}
}

// TestCorrelateJointBootstrap checks correlate on a grid where the
// bootstrap is enumerable: 3 sizes × 2 seeds, seed 1 reverses the order of
// seed 0 except that its values are tiny, so per-size means follow seed 0
// unless a resample draws seed 1 twice (probability ¼, ρ = −1).
func TestCorrelateJointBootstrap(t *testing.T) {
	params := Grid{Units: []string{"s", "m", "l"}, V: [][]float64{{1, 1}, {2, 2}, {3, 3}}}
	acc := Grid{Units: []string{"s", "m", "l"}, V: [][]float64{{10, 0.3}, {20, 0.2}, {30, 0.1}}}
	c := correlate(cfgReport(4000, 100), "test", "x", "y", "unit", params, acc)
	if c.Rho != 1 || c.N != 3 || c.Seeds != 2 {
		t.Fatalf("ρ = %v, n = %d × %d; want 1, 3 × 2", c.Rho, c.N, c.Seeds)
	}
	// Resamples: (0,0),(0,1),(1,0) → ρ = 1; (1,1) → ρ = −1. The 2.5% quantile
	// is −1 (P = ¼ > 2.5%), the 97.5% one is 1.
	if c.CI[0] != -1 || c.CI[1] != 1 || c.Resamples != 4000 {
		t.Errorf("CI = %v from %d resamples, want [−1, 1] from 4000", c.CI, c.Resamples)
	}
	if !c.PExact || math.Abs(float64(c.P)-1.0/3) > 1e-12 {
		t.Errorf("p = %v (exact %v), want exact 1/3", c.P, c.PExact)
	}
}

func cfgReport(bootstrap, permutations int) config.Report {
	return config.Report{Bootstrap: bootstrap, Permutations: permutations, Seed: 0}
}
