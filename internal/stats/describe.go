package stats

import (
	"math"

	"gonum.org/v1/gonum/stat"
)

// Agg summarises one quantity over replicates.
type Agg struct {
	Mean float64 // mean of the non-NaN values (NaN when there are none)
	Std  float64 // sample standard deviation, n − 1 denominator (NaN when n < 2)
	N    int     // number of non-NaN values
}

// Aggregate returns the mean, sample standard deviation
//
//	s = √( Σ (x_i − x̄)² / (n − 1) )
//
// and count of the non-NaN values of x (stat.Mean and stat.StdDev over them;
// numpy.nanmean and numpy.nanstd(ddof=1)).
func Aggregate(x []float64) Agg {
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

// NaNMean returns Σ x_i / n over the n non-NaN values of x, summed in
// order, or NaN when there are none (numpy.nanmean).
func NaNMean(x []float64) float64 {
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
