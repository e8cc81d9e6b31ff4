package stats

import (
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
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
		{nil, []float64{}},
	} {
		dst := make([]float64, len(tc.x))
		got := Ranks(dst, tc.x)
		if len(got) != len(tc.want) || (len(dst) > 0 && &got[0] != &dst[0]) {
			t.Errorf("Ranks(%v) did not return dst of length %d", tc.x, len(tc.want))
			continue
		}
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
		// Ties in x: ranks (1.5,1.5,3.5,3.5) vs (1,2,3,4): centred
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

// TestBootstrapEnumerable: with 2 replicates the 4 equally likely resamples
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
		// 3 units, perfectly monotone: of the 3! = 6 permutations exactly the
		// identity and the reversal reach |ρ| = 1, so p = 2/6 = 1/3 = pmin.
		{"3 units monotone", []float64{1e4, 1e5, 1e6}, []float64{0.80, 0.81, 0.83}, 1.0 / 3, 1.0 / 3, 6},
		// 3 units, ρ = 0.5: |ρ| ≥ 0.5 holds for every permutation of 3 (ρ ∈ {±1, ±0.5}): p = 1.
		{"3 units one swap", []float64{1, 2, 3}, []float64{1, 3, 2}, 1, 1.0 / 3, 6},
		// 4 units, ρ = 1: 2 of 24 → 1/12.
		{"4 units monotone", []float64{1, 2, 3, 4}, []float64{1, 2, 3, 4}, 2.0 / 24, 2.0 / 24, 24},
		// 4 units, ρ = 1 − 6·2/60 = 0.8, i.e. |ρ| ≥ 0.8 ⇔ Σd² ≤ 2 or ≥ 18:
		// identity, 3 adjacent transpositions, the reversal and its 3
		// neighbours: 8 of 24 = 1/3 (hand-enumerated).
		{"4 units ρ = 0.8", []float64{1, 2, 3, 4}, []float64{1, 3, 2, 4}, 8.0 / 24, 2.0 / 24, 24},
	} {
		r := PermutationSpearman(rand.New(rand.NewPCG(1, 1)), tc.x, tc.y, 1000)
		if !r.Exact || r.Count != tc.count || math.Abs(r.P-tc.p) > tol || math.Abs(r.PMin-tc.pmin) > tol {
			t.Errorf("%s: %+v, want exact p = %v, pmin = %v over %d permutations", tc.name, r, tc.p, tc.pmin, tc.count)
		}
	}
	if r := PermutationSpearman(nil, []float64{1, 2, 3}, []float64{5, 5, 5}, 1000); !math.IsNaN(r.P) || !math.IsNaN(r.PMin) {
		t.Errorf("constant y: %+v, want NaN p", r)
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
		// One difference: both signs give the same |mean|: p = pmin = 1.
		{"one difference", []float64{-0.08}, 1, 1},
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

// TestSignFlipTestMonteCarloFlipsEveryValue: 64 zeros and 6 ones, m = 20000
// random patterns. |mean| reaches the observed 6/70 only when the six ones
// share a sign: probability 2/2⁶ = 1/32 (hand-computed), so p ≈ 0.031 (a
// generator that never flipped values beyond the 64th would give p = 1).
func TestSignFlipTestMonteCarloFlipsEveryValue(t *testing.T) {
	d := make([]float64, 70)
	for i := 64; i < 70; i++ {
		d[i] = 1
	}
	const m, want = 20000, 1.0 / 32
	r := SignFlipTest(rand.New(rand.NewPCG(21, 22)), d, m)
	if tol := 5 * math.Sqrt(want*(1-want)/m); r.Exact || math.Abs(r.P-want) > tol {
		t.Errorf("%+v, want Monte Carlo p = %v ± %v", r, want, tol)
	}
}

func TestAggregate(t *testing.T) {
	// Mean of {0.8, 0.9} = 0.85; sample std = √(2·0.05²/1) = 0.0707106781.
	a := Aggregate([]float64{0.8, math.NaN(), 0.9})
	if a.N != 2 || math.Abs(a.Mean-0.85) > 1e-15 || math.Abs(a.Std-0.05*math.Sqrt2) > 1e-15 {
		t.Errorf("Aggregate = %+v", a)
	}
	if a := Aggregate([]float64{0.8}); a.N != 1 || !math.IsNaN(a.Std) {
		t.Errorf("one value: %+v, want std NaN", a)
	}
	if a := Aggregate([]float64{math.NaN()}); a.N != 0 || !math.IsNaN(a.Mean) {
		t.Errorf("no value: %+v, want mean NaN", a)
	}
	if m := NaNMean([]float64{1, math.NaN(), 2}); m != 1.5 {
		t.Errorf("NaNMean = %v, want 1.5", m)
	}
}

func TestGrid(t *testing.T) {
	nan := math.NaN()
	g := Grid{{1, 2, nan}, {nan, nan, nan}, {3, nan, 5}}
	if g.Replicates() != 3 || g.ReplicatesWithData() != 3 {
		t.Errorf("replicates %d, with data %d; want 3, 3", g.Replicates(), g.ReplicatesWithData())
	}
	// idx = {0, 0, 2}: unit 0 → (1+1)/2; unit 1 → NaN; unit 2 → (3+3+5)/3.
	m := g.Means(make([]float64, 3), []int{0, 0, 2})
	if m[0] != 1 || !math.IsNaN(m[1]) || m[2] != 11.0/3 {
		t.Errorf("Means = %v, want [1 NaN 11/3]", m)
	}
	xs, ys, units := PairedMeans(g, Grid{{4, 4, 4}, {1, 1, 1}, {nan, nan, nan}}, nil)
	if len(units) != 1 || units[0] != 0 || xs[0] != 1.5 || ys[0] != 4 {
		t.Errorf("PairedMeans = %v %v %v, want unit 0 only: 1.5, 4", xs, ys, units)
	}
	if NewGrid(2, 0).Replicates() != 0 || (Grid{}).Replicates() != 0 {
		t.Error("empty grids have replicates")
	}
}

// TestJointSpearman checks JointSpearman on a grid where the bootstrap is
// enumerable: 3 units × 2 replicates, replicate 1 reverses the order of
// replicate 0 but its values are tiny, so the per-unit means follow replicate
// 0 unless a resample draws replicate 1 twice (probability ¼, ρ = −1).
func TestJointSpearman(t *testing.T) {
	params := Grid{{1, 1}, {2, 2}, {3, 3}}
	acc := Grid{{10, 0.3}, {20, 0.2}, {30, 0.1}}
	c := JointSpearman(rand.New(rand.NewPCG(0, 1)), params, acc, Resampling{Resamples: 4000, Permutations: 100, Level: 0.95})
	if c.Rho != 1 || len(c.Units) != 3 || c.Replicates != 2 || c.Missing != Complete {
		t.Fatalf("%+v; want ρ = 1 over 3 units × 2 replicates", c)
	}
	// Resamples: (0,0),(0,1),(1,0) → ρ = 1; (1,1) → ρ = −1. The 2.5% quantile
	// is −1 (P = ¼ > 2.5%), the 97.5% one is 1.
	if c.Lo != -1 || c.Hi != 1 || c.Resamples != 4000 {
		t.Errorf("CI = [%v, %v] from %d resamples, want [−1, 1] from 4000", c.Lo, c.Hi, c.Resamples)
	}
	if !c.Test.Exact || math.Abs(c.Test.P-1.0/3) > 1e-12 {
		t.Errorf("p = %+v, want exact 1/3", c.Test)
	}
}

func TestJointSpearmanMissing(t *testing.T) {
	r := Resampling{Resamples: 100, Permutations: 100, Level: 0.95}
	nan := math.NaN()
	for _, tc := range []struct {
		name    string
		x, y    Grid
		missing Missing
		rho     bool // ρ defined
		p       bool // p defined
	}{
		{"2 units", Grid{{1, 1}, {2, 2}}, Grid{{1, 2}, {3, 4}}, TooFewUnits, false, false},
		{"3 units, one without data", Grid{{1}, {2}, {3}}, Grid{{1}, {nan}, {3}}, TooFewUnits, false, false},
		{"constant y", Grid{{1, 1}, {2, 2}, {3, 3}}, Grid{{5, 5}, {5, 5}, {5, 5}}, ConstantVariable, false, false},
		{"1 replicate", Grid{{1}, {2}, {3}}, Grid{{0.1}, {0.3}, {0.2}}, TooFewReplicates, true, true},
	} {
		c := JointSpearman(rand.New(rand.NewPCG(0, 1)), tc.x, tc.y, r)
		if c.Missing != tc.missing || math.IsNaN(c.Rho) == tc.rho || math.IsNaN(c.Test.P) == tc.p || !math.IsNaN(c.Lo) || !math.IsNaN(c.Hi) {
			t.Errorf("%s: %+v; want missing %v, ρ defined %v, p defined %v, no CI", tc.name, c, tc.missing, tc.rho, tc.p)
		}
	}
}

// TestMeanCI: d = {0, NaN, 1}. A resample of the 3 positions is empty (all
// NaN, dropped) with probability (1/3)³ = 1/27, and its mean is 0 with
// probability (2/3)³ − (1/3)³ = 7/27 and 1 likewise, both above 2.5%, so
// the 95% CI is [0, 1] (hand-computed); the mean of the values is ½.
func TestMeanCI(t *testing.T) {
	r := Resampling{Resamples: 5000, Level: 0.95}
	d := MeanCI(rand.New(rand.NewPCG(3, 3)), []float64{0, math.NaN(), 1}, r)
	if d.Mean != 0.5 || d.N != 2 || d.Lo != 0 || d.Hi != 1 {
		t.Errorf("%+v, want mean ½ over 2 values, CI [0, 1]", d)
	}
	// Expected non-empty share 26/27: 5 binomial standard deviations.
	if p, tol := 26.0/27, 5*math.Sqrt(26.0/27/27/5000); math.Abs(float64(d.Resamples)/5000-p) > tol {
		t.Errorf("%d of 5000 resamples kept, want %.3f ± %.3f", d.Resamples, p, tol)
	}
	if d := MeanCI(nil, []float64{0.3, math.NaN()}, r); d.Mean != 0.3 || d.N != 1 || !math.IsNaN(d.Lo) {
		t.Errorf("one value: %+v, want mean 0.3 without CI", d)
	}
}

// TestJointMean: 2 units × 3 replicates of differences. Unit means 2 and 4
// give Δ = 3; the per-replicate averages over units (1+3)/2, (2+4)/2,
// (3+5)/2 = 2, 3, 4 are all positive, so the exact sign-flip p is 2/8 = pmin
// (hand-computed). Every joint resample keeps both units, and its Δ lies
// between the smallest (2) and largest (4) per-replicate average.
func TestJointMean(t *testing.T) {
	d := Grid{{1, 2, 3}, {3, 4, 5}}
	r := JointMean(rand.New(rand.NewPCG(4, 4)), d, Resampling{Resamples: 2000, Permutations: 1000, Level: 0.95})
	if r.Mean != 3 || r.N != 3 || r.Resamples != 2000 || !r.Test.Exact || r.Test.P != 0.25 || r.Test.PMin != 0.25 {
		t.Fatalf("%+v, want Δ = 3 over 3 replicates, exact p = pmin = 0.25", r)
	}
	if r.Lo < 2 || r.Hi > 4 || r.Lo >= r.Hi {
		t.Errorf("CI = [%v, %v], want inside [2, 4]", r.Lo, r.Hi)
	}
	// One replicate: an estimate and a sign-flip p (= 1), but no interval.
	one := JointMean(rand.New(rand.NewPCG(4, 4)), Grid{{-0.08}, {-0.1}}, Resampling{Resamples: 2000, Permutations: 1000, Level: 0.95})
	if math.Abs(one.Mean+0.09) > 1e-15 || one.N != 1 || !math.IsNaN(one.Lo) || one.Test.P != 1 {
		t.Errorf("one replicate: %+v, want Δ = −0.09, no CI, p = 1", one)
	}
}

// TestJointSpearmanDiff: y2 follows x (ρ = 1) and y1 reverses it (ρ = −1)
// in every replicate, so Δρ = 2 and every resample gives 2 (hand-computed).
func TestJointSpearmanDiff(t *testing.T) {
	x := Grid{{1, 1}, {2, 2}, {3, 3}}
	y1 := Grid{{3, 3.1}, {2, 2.1}, {1, 1.1}}
	y2 := Grid{{1, 1.1}, {2, 2.1}, {3, 3.1}}
	r := JointSpearmanDiff(rand.New(rand.NewPCG(5, 5)), x, y1, y2, Resampling{Resamples: 300, Level: 0.95})
	if r.Mean != 2 || r.Lo != 2 || r.Hi != 2 || r.Resamples != 300 || r.N != 2 || !math.IsNaN(r.Test.P) {
		t.Errorf("%+v, want Δρ = 2 with CI [2, 2] from 300 resamples", r)
	}
	two := JointSpearmanDiff(nil, x[:2], y1[:2], y2[:2], Resampling{Resamples: 300, Level: 0.95})
	if !math.IsNaN(two.Mean) {
		t.Errorf("2 units: Δρ = %v, want NaN", two.Mean)
	}
}

func TestPanics(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"Ranks dst", func() { Ranks(make([]float64, 2), []float64{1, 2, 3}) }},
		{"Ranks NaN", func() { Ranks(nil, []float64{1, math.NaN()}) }},
		{"Spearman lengths", func() { Spearman([]float64{1, 2}, []float64{1, 2, 3}) }},
		{"Bootstrap k", func() { Bootstrap(nil, 0, 10, nil) }},
		{"PercentileCI level", func() { PercentileCI([]float64{1}, 95) }},
		{"Means dst", func() { Grid{{1}, {2}}.Means(make([]float64, 1), nil) }},
		{"PairedMeans units", func() { PairedMeans(Grid{{1}}, Grid{{1}, {2}}, nil) }},
	} {
		func() {
			defer func() {
				r := recover()
				if s, ok := r.(string); !ok || !strings.HasPrefix(s, "stats: ") {
					t.Errorf("%s: recovered %v, want a panic with a \"stats: \" message", tc.name, r)
				}
			}()
			tc.f()
		}()
	}
}
