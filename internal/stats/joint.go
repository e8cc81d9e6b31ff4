package stats

import (
	"math"
	"math/rand/v2"
)

// MinUnits is the fewest units a correlation is computed on: with 2 units
// Spearman's ρ is ±1 whatever the data.
const MinUnits = 3

// Resampling configures the joint procedures.
type Resampling struct {
	Resamples    int     // bootstrap resamples B; 0 gives no interval
	Permutations int     // permutation (or sign-flip) budget m of the tests; 0 gives no p-value
	Level        float64 // confidence level of the percentile interval, e.g. 0.95
}

// Missing says why a procedure left a value NaN.
type Missing int

const (
	// Complete: every value that the Resampling asks for was computed.
	Complete Missing = iota
	// TooFewUnits: fewer than MinUnits units have data in both grids (ρ, CI and p are NaN).
	TooFewUnits
	// ConstantVariable: ρ is undefined because one variable is constant across units (ρ, CI and p are NaN).
	ConstantVariable
	// TooFewReplicates: fewer than 2 replicates have data, so there is
	// nothing to resample (the interval is NaN; estimates and p remain).
	TooFewReplicates
)

// Corr is the result of JointSpearman.
type Corr struct {
	Rho        float64 // Spearman ρ of the per-unit means over all replicates
	Lo, Hi     float64 // percentile bootstrap interval (replicates resampled jointly)
	Test       TestResult
	X, Y       []float64 // the per-unit means ρ is computed on
	Units      []int     // their unit indices
	Replicates int       // replicates of the grids
	Resamples  int       // bootstrap resamples in which ρ was defined
	Missing    Missing
}

// JointSpearman computes Spearman's ρ between the per-unit means of x and y
// over all replicates (units where either mean is NaN are left out), its
// percentile bootstrap interval and its permutation p-value:
//
//   - interval: r.Resamples resamples of the replicates drawn jointly for
//     every unit of x and y (Bootstrap, PercentileCI at r.Level); a resample
//     in which a unit loses its mean in x or y is dropped;
//   - p: PermutationSpearman of the per-unit means with r.Permutations.
//
// The draws come from rng in that order: the bootstrap, then (Monte Carlo
// only) the permutations. ρ needs MinUnits units and the interval 2
// replicates with data in y; Missing says what was not computable.
//
// JointSpearman panics if x and y have different numbers of units.
func JointSpearman(rng *rand.Rand, x, y Grid, r Resampling) Corr {
	xm, ym, units := PairedMeans(x, y, nil)
	nan := math.NaN()
	c := Corr{Rho: nan, Lo: nan, Hi: nan, Test: TestResult{P: nan, PMin: nan}, X: xm, Y: ym, Units: units,
		Replicates: x.Replicates()}
	if len(xm) < MinUnits {
		c.Missing = TooFewUnits
		return c
	}
	c.Rho = Spearman(xm, ym)
	if math.IsNaN(c.Rho) {
		c.Missing = ConstantVariable
		return c
	}
	if r.Resamples > 0 && y.ReplicatesWithData() < 2 {
		c.Missing = TooFewReplicates
	} else if r.Resamples > 0 {
		bs := Bootstrap(rng, c.Replicates, r.Resamples, func(idx []int) float64 {
			bx, by, _ := PairedMeans(x, y, idx)
			if len(bx) != len(xm) {
				return math.NaN()
			}
			return Spearman(bx, by)
		})
		c.Lo, c.Hi = PercentileCI(bs, r.Level)
		c.Resamples = len(bs)
	}
	c.Test = PermutationSpearman(rng, xm, ym, r.Permutations)
	return c
}

// Diff is the result of MeanCI, JointMean and JointSpearmanDiff.
type Diff struct {
	Mean      float64    // the estimate
	Lo, Hi    float64    // percentile bootstrap interval
	Test      TestResult // sign-flip test (JointMean only; NaN otherwise)
	N         int        // values (MeanCI), replicates with data (JointMean) or replicates (JointSpearmanDiff)
	Resamples int        // bootstrap resamples in which the statistic was defined
}

func nanDiff() Diff {
	nan := math.NaN()
	return Diff{Mean: nan, Lo: nan, Hi: nan, Test: TestResult{P: nan, PMin: nan}}
}

// MeanCI returns the mean of the non-NaN values of d (NaNMean) with its
// percentile bootstrap interval: r.Resamples resamples of the len(d)
// positions (Bootstrap), each giving the mean of its non-NaN values. The
// interval needs at least 2 non-NaN values and r.Resamples > 0.
func MeanCI(rng *rand.Rand, d []float64, r Resampling) Diff {
	out := nanDiff()
	out.Mean, out.N = NaNMean(d), Aggregate(d).N
	if out.N < 2 || r.Resamples == 0 {
		return out
	}
	bs := Bootstrap(rng, len(d), r.Resamples, func(idx []int) float64 {
		var s float64
		var n int
		for _, j := range idx {
			if !math.IsNaN(d[j]) {
				s += d[j]
				n++
			}
		}
		if n == 0 {
			return math.NaN()
		}
		return s / float64(n)
	})
	out.Lo, out.Hi = PercentileCI(bs, r.Level)
	out.Resamples = len(bs)
	return out
}

// JointMean returns the mean over units of the per-unit means of d over
// replicates,
//
//	Δ = (1/U) Σ_u mean_j d[u][j]   (NaN values skipped),
//
// with a percentile bootstrap interval (replicates resampled jointly across
// units; a resample in which a unit loses all its values is dropped) and the
// sign-flip test (SignFlipTest) on the per-replicate averages over units,
// a_j = NaNMean_u d[u][j]. N counts the replicates with some value. The
// draws come from rng in that order: the bootstrap, then (Monte Carlo only)
// the sign flips. The interval needs 2 replicates with data.
func JointMean(rng *rand.Rand, d Grid, r Resampling) Diff {
	k := d.Replicates()
	statistic := func(idx []int) float64 {
		m := d.Means(nil, idx)
		for _, v := range m {
			if math.IsNaN(v) {
				return math.NaN() // a unit lost all its values in this resample
			}
		}
		return NaNMean(m)
	}
	perRep := make([]float64, k)
	n := 0
	col := make([]float64, len(d))
	for j := range perRep {
		for u := range d {
			col[u] = d[u][j]
		}
		perRep[j] = NaNMean(col)
		if !math.IsNaN(perRep[j]) {
			n++
		}
	}
	out := nanDiff()
	out.Mean, out.N = NaNMean(d.Means(nil, nil)), n
	if n == 0 {
		return out
	}
	if r.Resamples > 0 && n >= 2 {
		bs := Bootstrap(rng, k, r.Resamples, statistic)
		out.Lo, out.Hi = PercentileCI(bs, r.Level)
		out.Resamples = len(bs)
	}
	out.Test = SignFlipTest(rng, perRep, r.Permutations)
	return out
}

// JointSpearmanDiff returns Δρ = ρ(x, y2) − ρ(x, y1), Spearman's ρ of the
// per-unit means over replicates (as in JointSpearman), with a percentile
// bootstrap interval: replicates are resampled jointly for x, y1 and y2, and
// a resample in which a unit loses its mean in either pair, or in which
// either ρ is undefined, is dropped. Δρ needs MinUnits units with data in
// both pairs; the interval needs 2 replicates with data in y1 and in y2. N
// is the number of replicates. Test is NaN: there is no permutation test of Δρ.
//
// JointSpearmanDiff panics if the grids have different numbers of units.
func JointSpearmanDiff(rng *rand.Rand, x, y1, y2 Grid, r Resampling) Diff {
	diff := func(idx []int) float64 {
		x1, v1, _ := PairedMeans(x, y1, idx)
		x2, v2, _ := PairedMeans(x, y2, idx)
		if len(x1) < MinUnits || len(x2) < MinUnits {
			return math.NaN()
		}
		return Spearman(x2, v2) - Spearman(x1, v1)
	}
	x1, _, _ := PairedMeans(x, y1, nil)
	x2, _, _ := PairedMeans(x, y2, nil)
	k := x.Replicates()
	out := nanDiff()
	out.Mean, out.N = diff(nil), k
	if math.IsNaN(out.Mean) || r.Resamples == 0 || y1.ReplicatesWithData() < 2 || y2.ReplicatesWithData() < 2 {
		return out
	}
	bs := Bootstrap(rng, k, r.Resamples, func(idx []int) float64 {
		b1, _, _ := PairedMeans(x, y1, idx)
		b2, _, _ := PairedMeans(x, y2, idx)
		if len(b1) != len(x1) || len(b2) != len(x2) {
			return math.NaN()
		}
		return diff(idx)
	})
	out.Lo, out.Hi = PercentileCI(bs, r.Level)
	out.Resamples = len(bs)
	return out
}
