package calibrate

import (
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
				rep, _ = cal.Fit(z, y, s.c)
			}
			b.ReportMetric(float64(rep.Evaluations), "passes")
		})
	}
}
