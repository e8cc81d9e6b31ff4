package stats

import (
	"math"
	"sort"

	"gonum.org/v1/gonum/stat"
)

// Ranks writes into dst the ranks 1..n of x, giving tied values the average
// of the ranks they span (the "fractional" ranking Spearman's ρ needs;
// scipy.stats.rankdata(x, method="average")), and returns dst, allocating it
// when nil.
//
// Example: x = {10, 20, 20, 30} → {1, 2.5, 2.5, 4}.
//
// Ranks panics if dst is not nil and len(dst) != len(x), or if x contains NaN.
func Ranks(dst, x []float64) []float64 {
	if dst == nil {
		dst = make([]float64, len(x))
	}
	if len(dst) != len(x) {
		panic(badDstLength)
	}
	idx := make([]int, len(x))
	for i := range idx {
		if math.IsNaN(x[i]) {
			panic("stats: NaN in Ranks input")
		}
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
// correlation of their average ranks (Spearman 1904),
//
//	ρ = cov(R(x), R(y)) / (σ_R(x) σ_R(y)),
//
// which with ties is the tie-corrected ρ that scipy.stats.spearmanr also
// returns (gonum's stat has Kendall's τ but no Spearman; the Pearson step is
// stat.Correlation).
//
// It returns NaN when fewer than 2 pairs are given or when either variable is
// constant (ρ undefined). It panics when the lengths differ or when x or y
// contains NaN.
func Spearman(x, y []float64) float64 {
	if len(x) != len(y) {
		panic(badLength)
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

const (
	badLength    = "stats: slice length mismatch"
	badDstLength = "stats: destination slice length does not match input"
)
