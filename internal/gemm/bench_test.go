package gemm_test

import (
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/kdcal/kdcal/internal/gemm"
	"github.com/kdcal/kdcal/internal/testutil"
)

// benchImpls are the Sgemm implementations BenchmarkSgemm compares;
// bench_openblas_test.go adds OpenBLAS under -tags openblas.
var benchImpls = []struct {
	name string
	impl blas.Float32Level3
}{
	{"gemm-" + gemm.Kernel(), gemm.Implementation{}},
	{"gonum", gonum.Implementation{}},
}

const (
	nt = blas.NoTrans
	tr = blas.Trans
)

// benchShapes are the GEMMs of one training step of the models of
// BenchmarkTrainStep (internal/train) at batch 128: the MLP 784-512-512-10
// (internal/fused.Dense: forward x·w, dw = xᵀ·dy, dx = dy·wᵀ) and the medium
// CNN (internal/fused.Stage, per chunk of images: forward W·col, dW = dPre·colᵀ,
// dCol = Wᵀ·dPre; then its 1568→128 dense layer).
var benchShapes = []struct {
	name    string
	tA, tB  blas.Transpose
	m, n, k int
}{
	{"mlp-fwd-128x784x512", nt, nt, 128, 512, 784},
	{"mlp-fwd-128x512x512", nt, nt, 128, 512, 512},
	{"mlp-dw-784x128x512", tr, nt, 784, 512, 128},
	{"mlp-dx-128x512x512", nt, tr, 128, 512, 512},
	{"mlp-out-128x512x10", nt, nt, 128, 10, 512},
	{"conv1-fwd-16x9x1568", nt, nt, 16, 1568, 9},
	{"conv1-dw-16x1568x9", nt, tr, 16, 9, 1568},
	{"conv2-fwd-32x144x196", nt, nt, 32, 196, 144},
	{"conv2-dw-32x196x144", nt, tr, 32, 144, 196},
	{"conv2-dcol-144x32x196", tr, nt, 144, 196, 32},
	{"cnn-fc-fwd-128x1568x128", nt, nt, 128, 128, 1568},
}

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

// BenchmarkSgemm reports GFLOP/s (2·m·n·k per call) of each implementation
// on each shape, one goroutine, operands reused (in cache as in training),
// per wall-clock and per CPU second. Compare with BenchmarkFMAPeak,
// measured in the same run; run with -cpu 1.
func BenchmarkSgemm(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, s := range benchShapes {
		a, bm, c := randSlice(rng, s.m*s.k), randSlice(rng, s.k*s.n), make([]float32, s.m*s.n)
		lda, ldb := s.k, s.n
		if s.tA == tr {
			lda = s.m
		}
		if s.tB == tr {
			ldb = s.k
		}
		for _, im := range benchImpls {
			b.Run(s.name+"/"+im.name, func(b *testing.B) {
				cpu0 := testutil.CPUTime().Seconds()
				for b.Loop() {
					im.impl.Sgemm(s.tA, s.tB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, c, s.n)
				}
				reportFlops(b, 2*float64(s.m*s.n*s.k)*float64(b.N), testutil.CPUTime().Seconds()-cpu0)
			})
		}
	}
}

// BenchmarkFMAPeak measures the core's float32 FMA throughput with a
// register-only loop of 12 independent 8-wide FMAs: the ceiling for
// BenchmarkSgemm's GFLOP/s.
func BenchmarkFMAPeak(b *testing.B) {
	if gemm.FMAPeak(1) == 0 {
		b.Skip("no AVX2+FMA on this CPU/build")
	}
	var flops float64
	cpu0 := testutil.CPUTime().Seconds()
	for b.Loop() {
		flops += gemm.FMAPeak(1 << 20)
	}
	reportFlops(b, flops, testutil.CPUTime().Seconds()-cpu0)
}

// reportFlops reports GFLOP/s per wall-clock second and, when the CPU
// clock is available, per CPU second of the process (cpu-GFLOP/s).
func reportFlops(b *testing.B, flops, cpuSec float64) {
	b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpuSec > 0 {
		b.ReportMetric(flops/cpuSec/1e9, "cpu-GFLOP/s")
	}
}
