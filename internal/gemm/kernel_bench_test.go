//go:build amd64 && !purego

package gemm

import (
	"testing"

	"github.com/kdcal/kdcal/internal/testutil"
)

// BenchmarkKernel6x16 times the micro-kernel alone on packed panels that
// stay in L1 (kc = 256): the ceiling of the blocked GEMM, to compare with
// BenchmarkFMAPeak.
func BenchmarkKernel6x16(b *testing.B) {
	if !haveKernel {
		b.Skip("no AVX2+FMA")
	}
	const k = 256
	a, bp, c := make([]float32, 6*k), make([]float32, 16*k), make([]float32, 6*16)
	for i := range a {
		a[i] = 1e-3
	}
	for i := range bp {
		bp[i] = 1e-3
	}
	cpu0 := testutil.CPUTime().Seconds()
	for b.Loop() {
		kernel6x16(k, &a[0], &bp[0], &c[0], 16, 1, 1, 6)
	}
	flops := 2 * 6 * 16 * k * float64(b.N)
	b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu := testutil.CPUTime().Seconds() - cpu0; cpu > 0 {
		b.ReportMetric(flops/cpu/1e9, "cpu-GFLOP/s")
	}
}
