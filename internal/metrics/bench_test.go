package metrics

import (
	"fmt"
	"testing"

	"github.com/kdcal/kdcal/internal/testutil"
)

// benchShapes are the sizes of issue #4: 10⁶ examples × 10 classes and
// 10⁴ × 100. scripts/bench_calib.sh times numpy on the same arrays.
var benchShapes = []struct{ n, c int }{{1000000, 10}, {10000, 100}}

// benchData returns logits and labels of one shape: read from
// $KDCAL_BENCH_DIR/{logits,labels}_<N>x<C>.npy when set (so Go and numpy
// time the same arrays), else generated.
func benchData(b *testing.B, n, c int) ([]float64, []int) {
	if z, y, ok := testutil.BenchArrays(b, n, c); ok {
		return z, y
	}
	return synthetic(99, n, c, 5)
}

func benchEach(b *testing.B, fn func(b *testing.B, z, p []float64, y []int, c int)) {
	for _, s := range benchShapes {
		b.Run(fmt.Sprintf("%dx%d", s.n, s.c), func(b *testing.B) {
			z, y := benchData(b, s.n, s.c)
			p := Softmax(nil, z, s.c)
			b.ResetTimer()
			fn(b, z, p, y, s.c)
		})
	}
}

var sink float64

// BenchmarkCalibECE: top-label ECE (15 equal-width bins) from probabilities.
func BenchmarkCalibECE(b *testing.B) {
	benchEach(b, func(b *testing.B, _, p []float64, y []int, c int) {
		for b.Loop() {
			sink = ECE(p, y, c, 15)
		}
	})
}

// BenchmarkCalibNLL: NLL from logits (stable log-softmax).
func BenchmarkCalibNLL(b *testing.B) {
	benchEach(b, func(b *testing.B, z, _ []float64, y []int, c int) {
		for b.Loop() {
			sink = NLL(z, y, c, 1)
		}
	})
}

// BenchmarkCalibBrier: multiclass Brier score from probabilities.
func BenchmarkCalibBrier(b *testing.B) {
	benchEach(b, func(b *testing.B, _, p []float64, y []int, c int) {
		for b.Loop() {
			sink = Brier(p, y, c)
		}
	})
}

// BenchmarkCalibEvaluate: every metric of Summary from logits (softmax,
// accuracy, nll, brier, ece, mce, ece_em, cw_ece).
func BenchmarkCalibEvaluate(b *testing.B) {
	benchEach(b, func(b *testing.B, z, _ []float64, y []int, c int) {
		for b.Loop() {
			sink = Evaluate(z, y, c, 15).ECE
		}
	})
}
