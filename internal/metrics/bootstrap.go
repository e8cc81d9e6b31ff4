package metrics

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/stat"
)

// Statistic is a metric of probabilities (N×C) and labels, such as Brier or
// a closure over ECE with a bin count. NamedStatistic returns the metrics of
// Summary in this form.
type Statistic func(probs []float64, labels []int, c int) float64

// StatisticNames lists the metrics NamedStatistic knows, by their JSON names.
var StatisticNames = []string{"accuracy", "nll", "brier", "ece", "mce", "ece_em", "cw_ece"}

// NamedStatistic returns the metric of Summary with the given JSON name as
// a Statistic of probabilities, with bins bins for the binned ones; nll is
// NLLProbs. ok is false for an unknown name.
func NamedStatistic(name string, bins int) (s Statistic, ok bool) {
	switch name {
	case "accuracy":
		return Accuracy, true
	case "nll":
		return NLLProbs, true
	case "brier":
		return Brier, true
	case "ece":
		return func(p []float64, y []int, c int) float64 { return ECE(p, y, c, bins) }, true
	case "mce":
		return func(p []float64, y []int, c int) float64 { return MCE(p, y, c, bins) }, true
	case "ece_em":
		return func(p []float64, y []int, c int) float64 {
			conf, correct := TopLabel(p, y, c)
			return ECEEqualMass(conf, correct, bins)
		}, true
	case "cw_ece":
		return func(p []float64, y []int, c int) float64 { return ClasswiseECE(p, y, c, bins) }, true
	}
	return nil, false
}

// Interval is a bootstrap confidence interval of a statistic.
type Interval struct {
	Estimate  float64 `json:"estimate"`  // the statistic on the full sample
	Lo        float64 `json:"lo"`        // lower end of the interval
	Hi        float64 `json:"hi"`        // upper end of the interval
	Level     float64 `json:"level"`     // confidence level, e.g. 0.95
	Resamples int     `json:"resamples"` // number of bootstrap resamples
	Seed      uint64  `json:"seed"`      // seed of the resampling
}

// Bootstrap returns the percentile bootstrap confidence interval (Efron &
// Tibshirani 1993, "An Introduction to the Bootstrap", §13.3) of stat on
// probabilities (N×C) and labels: it draws resamples samples of N rows with
// replacement, evaluates stat on each, and returns the empirical
// (1−level)/2 and (1+level)/2 quantiles of those values (gonum
// stat.Quantile with stat.Empirical: the smallest value with at least that
// fraction of resampled values at or below it).
//
// Resample b draws its rows from its own PCG stream (math/rand/v2,
// rand.NewPCG(seed, b)), so the interval depends only on the inputs, seed
// and resamples — not on GOMAXPROCS or scheduling; resamples run in
// parallel. It panics if resamples < 1 or level is not in (0, 1).
func Bootstrap(s Statistic, probs []float64, labels []int, c, resamples int, level float64, seed uint64) Interval {
	n := checkShape(probs, labels, c)
	if resamples < 1 {
		panic("metrics: bootstrap needs at least one resample")
	}
	if !(level > 0 && level < 1) {
		panic("metrics: confidence level must be in (0, 1)")
	}
	vals := make([]float64, resamples)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), resamples) {
		wg.Go(func() {
			p := make([]float64, n*c)
			y := make([]int, n)
			for {
				b := int(next.Add(1) - 1)
				if b >= resamples {
					return
				}
				rng := rand.New(rand.NewPCG(seed, uint64(b)))
				for i := range y {
					j := rng.IntN(n)
					copy(p[i*c:(i+1)*c], probs[j*c:(j+1)*c])
					y[i] = labels[j]
				}
				vals[b] = s(p, y, c)
			}
		})
	}
	wg.Wait()
	slices.Sort(vals)
	alpha := (1 - level) / 2
	return Interval{
		Estimate:  s(probs, labels, c),
		Lo:        stat.Quantile(alpha, stat.Empirical, vals, nil),
		Hi:        stat.Quantile(1-alpha, stat.Empirical, vals, nil),
		Level:     level,
		Resamples: resamples,
		Seed:      seed,
	}
}
