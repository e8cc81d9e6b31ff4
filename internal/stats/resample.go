package stats

import (
	"math"
	"math/rand/v2"
	"sort"

	"gonum.org/v1/gonum/stat"
)

// Bootstrap draws b resamples of the k replicate indices 0..k−1 with
// replacement (the nonparametric bootstrap, Efron & Tibshirani 1993, ch. 6),
// evaluates statistic on each, and returns the values sorted ascending.
// Resamples for which statistic is NaN (undefined, e.g. a constant variable
// or a unit without data) are dropped, so the result may hold fewer than b
// values. Each resample draws rng.IntN(k) once per index, in order, so the
// result is reproducible from the generator's seed. The idx slice passed to
// statistic is reused between calls.
//
// Bootstrap panics if k ≤ 0 or b < 0.
func Bootstrap(rng *rand.Rand, k, b int, statistic func(idx []int) float64) []float64 {
	if k <= 0 || b < 0 {
		panic("stats: Bootstrap needs k > 0 and b ≥ 0")
	}
	idx := make([]int, k)
	out := make([]float64, 0, b)
	for range b {
		for j := range idx {
			idx[j] = rng.IntN(k)
		}
		if v := statistic(idx); !math.IsNaN(v) {
			out = append(out, v)
		}
	}
	sort.Float64s(out)
	return out
}

// PercentileCI returns the percentile interval of sorted bootstrap values at
// the given level (e.g. 0.95; Efron & Tibshirani 1993, ch. 13): the
// empirical (1−level)/2 and (1+level)/2 quantiles, i.e. the order statistics
// ⌈B·α/2⌉ and ⌈B·(1−α/2)⌉ with α = 1 − level (gonum's stat.Quantile with
// stat.Empirical; numpy.quantile with method="inverted_cdf"). It returns
// NaN, NaN when sorted is empty.
//
// PercentileCI panics if sorted is not sorted ascending or level is not in (0, 1).
func PercentileCI(sorted []float64, level float64) (lo, hi float64) {
	if !(level > 0 && level < 1) {
		panic("stats: PercentileCI level outside (0, 1)")
	}
	if len(sorted) == 0 {
		return math.NaN(), math.NaN()
	}
	a := (1 - level) / 2
	return stat.Quantile(a, stat.Empirical, sorted, nil), stat.Quantile(1-a, stat.Empirical, sorted, nil)
}
