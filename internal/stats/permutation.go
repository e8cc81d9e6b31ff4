package stats

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/combin"
)

// TestResult is the outcome of a permutation or sign-flip test.
type TestResult struct {
	P     float64 // two-sided p-value
	PMin  float64 // smallest p-value this design could produce
	Exact bool    // all arrangements were enumerated
	Count int     // arrangements enumerated (exact) or random draws (Monte Carlo)
}

// eps absorbs rounding when comparing a permuted statistic with the observed
// one, so that arrangements tying the observed value count as "as extreme".
const eps = 1e-12

// PermutationSpearman tests H0: no association between x and y, by permuting
// y against x (Pitman 1937). The two-sided p-value is the share of
// permutations π with |ρ_π| ≥ |ρ_obs| − 1e-12, ρ the Spearman correlation:
//
//   - exact: all n! permutations are enumerated when n! ≤ m (with
//     combin.PermutationGenerator), p = #{π : |ρ_π| ≥ |ρ_obs|} / n!, which
//     includes the identity;
//   - Monte Carlo otherwise: m permutations drawn with rng.Shuffle, each
//     applied to the previous one, and p = (b + 1) / (m + 1) with
//     b = #{|ρ_π| ≥ |ρ_obs|} (Phipson & Smyth 2010), which is never 0.
//
// For distinct x the exact p equals scipy.stats.permutation_test(...,
// permutation_type="pairings", alternative="two-sided") with every
// permutation enumerated, because the null distribution is then symmetric.
//
// PMin is the p-value of the most extreme arrangement: for n distinct values
// exactly 2/n! (ρ = ±1), e.g. 1/3 for 3 units, so fewer than 5 units can
// never reach p < 0.05; for Monte Carlo it is 1/(m+1). P and PMin are NaN
// when ρ_obs is undefined (see Spearman) or m ≤ 0. rng is used only for
// Monte Carlo and may be nil otherwise.
//
// PermutationSpearman panics if len(x) != len(y).
func PermutationSpearman(rng *rand.Rand, x, y []float64, m int) TestResult {
	obs := Spearman(x, y)
	n := len(x)
	if math.IsNaN(obs) || m <= 0 {
		return TestResult{P: math.NaN(), PMin: math.NaN()}
	}
	rx := Ranks(nil, x)
	ry := Ranks(nil, y)
	perm := make([]float64, n)
	rho := func() float64 { return stat.Correlation(rx, perm, nil) }
	if factorialAtMost(n, m) {
		var hit, top, count int
		maxAbs := 0.0
		var all []float64
		gen := combin.NewPermutationGenerator(n, n)
		idx := make([]int, n)
		for gen.Next() {
			for i, j := range gen.Permutation(idx) {
				perm[i] = ry[j]
			}
			r := math.Abs(rho())
			all = append(all, r)
			if r >= math.Abs(obs)-eps {
				hit++
			}
			maxAbs = math.Max(maxAbs, r)
			count++
		}
		for _, r := range all {
			if r >= maxAbs-eps {
				top++
			}
		}
		return TestResult{P: float64(hit) / float64(count), PMin: float64(top) / float64(count), Exact: true, Count: count}
	}
	copy(perm, ry)
	var hit int
	for range m {
		rng.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		if math.Abs(rho()) >= math.Abs(obs)-eps {
			hit++
		}
	}
	return TestResult{P: float64(hit+1) / float64(m+1), PMin: 1 / float64(m+1), Count: m}
}

// SignFlipTest tests H0: the paired differences d are symmetric about 0,
// the paired permutation test of Fisher (1935): under H0 each difference is
// equally likely to have either sign. The statistic is |mean d|; the
// two-sided p-value is the share of sign patterns s with
// |mean(s ⊙ d)| ≥ |mean d| − 1e-12:
//
//   - exact: all 2^k patterns are enumerated when 2^k ≤ m (k non-NaN
//     differences), p = #{s : …} / 2^k;
//   - Monte Carlo otherwise: m patterns, each sign drawn by rng.IntN(2) in
//     order, and p = (b+1)/(m+1).
//
// The exact p equals scipy.stats.permutation_test((d,), np.mean,
// permutation_type="samples", alternative="two-sided") with every pattern
// enumerated. PMin is the p of the most extreme pattern: 2/2^k for the exact
// test when the |d| are not all 0 (0.25 for 3 differences), 1/(m+1) for
// Monte Carlo. NaN entries of d are ignored; P and PMin are NaN when no
// difference remains or m ≤ 0. rng is used only for Monte Carlo.
func SignFlipTest(rng *rand.Rand, d []float64, m int) TestResult {
	var x []float64
	for _, v := range d {
		if !math.IsNaN(v) {
			x = append(x, v)
		}
	}
	k := len(x)
	if k == 0 || m <= 0 {
		return TestResult{P: math.NaN(), PMin: math.NaN()}
	}
	obs := math.Abs(stat.Mean(x, nil))
	flipped := func(mask uint64) float64 {
		var s float64
		for i, v := range x {
			if mask&(1<<uint(i)) != 0 {
				v = -v
			}
			s += v
		}
		return math.Abs(s / float64(k))
	}
	if k < 63 && uint64(1)<<uint(k) <= uint64(m) {
		total := uint64(1) << uint(k)
		var hit, top int
		maxAbs := 0.0
		vals := make([]float64, 0, total)
		for mask := uint64(0); mask < total; mask++ {
			v := flipped(mask)
			vals = append(vals, v)
			maxAbs = math.Max(maxAbs, v)
			if v >= obs-eps {
				hit++
			}
		}
		for _, v := range vals {
			if v >= maxAbs-eps {
				top++
			}
		}
		return TestResult{P: float64(hit) / float64(total), PMin: float64(top) / float64(total), Exact: true, Count: int(total)}
	}
	var hit int
	for range m {
		var s float64
		for _, v := range x {
			if rng.IntN(2) == 1 {
				v = -v
			}
			s += v
		}
		if math.Abs(s/float64(k)) >= obs-eps {
			hit++
		}
	}
	return TestResult{P: float64(hit+1) / float64(m+1), PMin: 1 / float64(m+1), Count: m}
}

// factorialAtMost reports whether n! ≤ m, without overflow
// (combin.NumPermutations wraps around for n > 20).
func factorialAtMost(n, m int) bool {
	f := 1
	for i := 2; i <= n; i++ {
		if f > m/i {
			return false
		}
		f *= i
	}
	return f <= m
}
