package report

import (
	"math"
	"math/rand/v2"
	"sort"

	"gonum.org/v1/gonum/stat"
)

// Ranks writes into dst the ranks 1..n of x, giving tied values the average
// of the ranks they span (the "fractional" ranking Spearman's ρ needs), and
// returns dst, allocating it when nil. x must not contain NaN.
//
// Example: x = {10, 20, 20, 30} → {1, 2.5, 2.5, 4}.
func Ranks(dst, x []float64) []float64 {
	if dst == nil {
		dst = make([]float64, len(x))
	}
	if len(dst) != len(x) {
		panic("report: Ranks destination length mismatch")
	}
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return x[idx[a]] < x[idx[b]] })
	for i := 0; i < len(idx); {
		j := i + 1
		for j < len(idx) && x[idx[j]] == x[idx[i]] {
			j++
		}
		// Positions i..j-1 (0-based) hold equal values: ranks i+1..j, mean (i+1+j)/2.
		r := float64(i+1+j) / 2
		for k := i; k < j; k++ {
			dst[idx[k]] = r
		}
		i = j
	}
	return dst
}

// Spearman returns Spearman's rank correlation of x and y: the Pearson
// correlation of their average ranks (Spearman 1904; with ties this is the
// tie-corrected ρ that scipy.stats.spearmanr also returns):
//
//	ρ = cov(R(x), R(y)) / (σ_R(x) σ_R(y))
//
// It returns NaN when fewer than 2 pairs are given or when either variable is
// constant (ρ undefined). It panics when the lengths differ.
func Spearman(x, y []float64) float64 {
	if len(x) != len(y) {
		panic("report: Spearman slice length mismatch")
	}
	if len(x) < 2 {
		return math.NaN()
	}
	rx, ry := Ranks(nil, x), Ranks(nil, y)
	if constant(rx) || constant(ry) {
		return math.NaN()
	}
	return stat.Correlation(rx, ry, nil)
}

func constant(x []float64) bool {
	for _, v := range x[1:] {
		if v != x[0] {
			return false
		}
	}
	return true
}

// Bootstrap draws b resamples of the k seed indices 0..k−1 with replacement
// (the nonparametric bootstrap, Efron & Tibshirani 1993, ch. 6), evaluates
// stat on each, and returns the values sorted ascending. Resamples for which
// stat is NaN (undefined, e.g. a constant variable) are dropped, so the
// result may hold fewer than b values. Each resample is one call to
// rng.IntN(k) per index, in order, so results are reproducible from the seed.
func Bootstrap(rng *rand.Rand, k, b int, stat func(idx []int) float64) []float64 {
	if k <= 0 || b < 0 {
		panic("report: Bootstrap needs k > 0 and b ≥ 0")
	}
	idx := make([]int, k)
	out := make([]float64, 0, b)
	for range b {
		for j := range idx {
			idx[j] = rng.IntN(k)
		}
		if v := stat(idx); !math.IsNaN(v) {
			out = append(out, v)
		}
	}
	sort.Float64s(out)
	return out
}

// PercentileCI returns the percentile interval of sorted bootstrap values at
// the given level (e.g. 0.95): the empirical (1−level)/2 and (1+level)/2
// quantiles, i.e. the order statistics ⌈B·α/2⌉ and ⌈B·(1−α/2)⌉ (gonum's
// stat.Empirical). It returns NaN, NaN when sorted is empty.
func PercentileCI(sorted []float64, level float64) (lo, hi float64) {
	if len(sorted) == 0 {
		return math.NaN(), math.NaN()
	}
	a := (1 - level) / 2
	return stat.Quantile(a, stat.Empirical, sorted, nil), stat.Quantile(1-a, stat.Empirical, sorted, nil)
}

// PermResult is the outcome of a permutation test.
type PermResult struct {
	P     float64 // two-sided p-value
	PMin  float64 // smallest p-value this design could produce
	Exact bool    // all permutations were enumerated
	Count int     // permutations (exact) or random draws (Monte Carlo) used
}

// eps absorbs rounding when comparing a permuted statistic with the observed
// one, so that permutations tying the observed value count as "as extreme".
const eps = 1e-12

// PermutationSpearman tests H0: no association between x and y, by permuting
// y against x (Pitman 1937). The two-sided p-value is the share of
// permutations with |ρ_π| ≥ |ρ_obs|:
//
//   - exact: all n! permutations are enumerated when n! ≤ m;
//     p = #{π : |ρ_π| ≥ |ρ_obs|} / n!, which includes the identity.
//   - Monte Carlo otherwise: m random permutations drawn with rng and
//     p = (b + 1) / (m + 1), b = #{|ρ_π| ≥ |ρ_obs|} (Phipson & Smyth 2010),
//     which never returns 0.
//
// PMin is the p-value of the most extreme arrangement: for n distinct values
// exactly 2/n! (ρ = ±1), e.g. 1/3 for 3 sizes, so a study with ≤ 4 sizes can
// never reach p < 0.05. P is NaN when ρ_obs is undefined or m = 0.
func PermutationSpearman(rng *rand.Rand, x, y []float64, m int) PermResult {
	obs := Spearman(x, y)
	n := len(x)
	if math.IsNaN(obs) || m <= 0 {
		return PermResult{P: math.NaN(), PMin: math.NaN()}
	}
	rx := Ranks(nil, x)
	ry := Ranks(nil, y)
	perm := make([]float64, n)
	rho := func() float64 { return stat.Correlation(rx, perm, nil) }
	if f := factorial(n); f > 0 && f <= m {
		var hit, top, count int
		maxAbs := 0.0
		var all []float64
		permutations(ry, perm, func() {
			r := math.Abs(rho())
			all = append(all, r)
			if r >= math.Abs(obs)-eps {
				hit++
			}
			maxAbs = math.Max(maxAbs, r)
			count++
		})
		for _, r := range all {
			if r >= maxAbs-eps {
				top++
			}
		}
		return PermResult{P: float64(hit) / float64(count), PMin: float64(top) / float64(count), Exact: true, Count: count}
	}
	copy(perm, ry)
	var hit int
	for range m {
		rng.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		if math.Abs(rho()) >= math.Abs(obs)-eps {
			hit++
		}
	}
	return PermResult{P: float64(hit+1) / float64(m+1), PMin: 1 / float64(m+1), Count: m}
}

// SignFlipTest tests H0: the paired differences d are symmetric about 0
// (the paired permutation test of Fisher 1935): under H0 each seed's
// difference is equally likely to have either sign. The statistic is |mean d|;
// with k differences all 2^k sign patterns are enumerated when 2^k ≤ m, else
// m random patterns are drawn and p = (b+1)/(m+1). PMin is 2/2^k for the
// exact test (e.g. 0.25 for 3 seeds). NaN entries of d are ignored.
func SignFlipTest(rng *rand.Rand, d []float64, m int) PermResult {
	var x []float64
	for _, v := range d {
		if !math.IsNaN(v) {
			x = append(x, v)
		}
	}
	k := len(x)
	if k == 0 || m <= 0 {
		return PermResult{P: math.NaN(), PMin: math.NaN()}
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
		return PermResult{P: float64(hit) / float64(total), PMin: float64(top) / float64(total), Exact: true, Count: int(total)}
	}
	var hit int
	for range m {
		var mask uint64
		for i := 0; i < k && i < 64; i++ {
			if rng.IntN(2) == 1 {
				mask |= 1 << uint(i)
			}
		}
		if flipped(mask) >= obs-eps {
			hit++
		}
	}
	return PermResult{P: float64(hit+1) / float64(m+1), PMin: 1 / float64(m+1), Count: m}
}

// factorial returns n!, or 0 when it exceeds the int range.
func factorial(n int) int {
	f := 1
	for i := 2; i <= n; i++ {
		if f > math.MaxInt/i {
			return 0
		}
		f *= i
	}
	return f
}

// permutations calls visit once for every permutation of src, written into
// dst (Heap's algorithm, Heap 1963; iterative form).
func permutations(src, dst []float64, visit func()) {
	copy(dst, src)
	n := len(dst)
	c := make([]int, n)
	visit()
	for i := 1; i < n; {
		if c[i] < i {
			if i%2 == 0 {
				dst[0], dst[i] = dst[i], dst[0]
			} else {
				dst[c[i]], dst[i] = dst[i], dst[c[i]]
			}
			visit()
			c[i]++
			i = 1
		} else {
			c[i] = 0
			i++
		}
	}
}

// meanOf returns the mean of the non-NaN values, or NaN when there are none.
func meanOf(x []float64) float64 {
	var s float64
	var n int
	for _, v := range x {
		if !math.IsNaN(v) {
			s += v
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return s / float64(n)
}

// Agg summarises one quantity over seeds.
type Agg struct {
	Mean float64 // mean over the seeds that have a value (NaN when none)
	Std  float64 // sample standard deviation (n−1 denominator; NaN when n < 2)
	N    int     // number of seeds with a value
}

// aggregate returns the mean, sample standard deviation and count of the
// non-NaN values of x.
func aggregate(x []float64) Agg {
	var v []float64
	for _, e := range x {
		if !math.IsNaN(e) {
			v = append(v, e)
		}
	}
	a := Agg{Mean: math.NaN(), Std: math.NaN(), N: len(v)}
	if len(v) > 0 {
		a.Mean = stat.Mean(v, nil)
	}
	if len(v) > 1 {
		a.Std = stat.StdDev(v, nil)
	}
	return a
}
