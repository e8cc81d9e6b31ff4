package calibrate

import (
	"context"
	"fmt"
	"testing"

	"github.com/kdcal/kdcal/internal/testutil"
)

// benchData returns the logits and labels of one benchmark shape: read
// from $KDCAL_BENCH_DIR/{logits,labels}_<N>x<C>.npy when set (written by
// scripts/bench_calib.py, so Go and numpy fit the same arrays), else
// sampled here with logits over-confident by 2.5.
func benchData(b *testing.B, n, c int) ([]float64, []int) {
	if z, y, ok := testutil.BenchArrays(b, n, c); ok {
		return z, y
	}
	z, y := sample(99, n, c)
	return scaled(z, 2.5), y
}

// BenchmarkCalibTempFit times a whole temperature fit (bracketing +
// safeguarded Newton to |Δ log T| < 1e-10) on 10⁶×10 and 10⁴×100 logits.
func BenchmarkCalibTempFit(b *testing.B) {
	for _, s := range []struct{ n, c int }{{1000000, 10}, {10000, 100}} {
		b.Run(fmt.Sprintf("%dx%d", s.n, s.c), func(b *testing.B) {
			z, y := benchData(b, s.n, s.c)
			var rep Report
			for b.Loop() {
				var cal Temp
				rep, _ = cal.Fit(context.Background(), z, y, s.c)
			}
			b.ReportMetric(float64(rep.Evaluations), "passes")
		})
	}
}

// BenchmarkCalibAffineFit times whole vector and matrix scaling fits
// (matrix with L2 strength 1e-3) on 10⁴×100 logits and on the nearly
// separable 5000×100 logits of scripts/bench_calib.py (with
// KDCAL_BENCH_DIR; otherwise both shapes are sampled here). It logs each
// fit's outcome with the objective to 17 digits, which bench_calib.py
// compares with scipy's optimum.
func BenchmarkCalibAffineFit(b *testing.B) {
	for _, s := range []struct{ n, c int }{{10000, 100}, {5000, 100}} {
		for _, m := range []string{"vector", "matrix"} {
			b.Run(fmt.Sprintf("%s/%dx%d", m, s.n, s.c), func(b *testing.B) {
				z, y := benchData(b, s.n, s.c)
				var rep Report
				cpu0 := testutil.CPUTime()
				for b.Loop() {
					cal, err := New(m, Options{MatrixL2: 1e-3})
					if err != nil {
						b.Fatal(err)
					}
					if rep, err = cal.Fit(context.Background(), z, y, s.c); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(testutil.CPUTime()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
				b.ReportMetric(float64(rep.Iterations), "iters")
				b.ReportMetric(float64(rep.Evaluations), "passes")
				obj := rep.NLLAfter
				if rep.Objective != 0 {
					obj = rep.Objective
				}
				b.Logf("fit %s/%dx%d: converged %v status %s iterations %d passes %d objective %.17g gradient %.3e blas %s",
					m, s.n, s.c, rep.Converged, rep.Status, rep.Iterations, rep.Evaluations, obj, rep.Gradient, BLAS)
			})
		}
	}
}
