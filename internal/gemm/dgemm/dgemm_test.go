package dgemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/kdcal/kdcal/internal/testutil"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

func randSlice(rng *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	return x
}

// gemmCase runs Dgemm of this package and gonum's on the same random
// inputs (with leading dimensions padded by pad) and returns the largest
// difference relative to Σ_p |op(A)_ip op(B)_pj| + |β C_ij|, the scale of
// the rounding error.
func gemmCase(rng *rand.Rand, tA, tB blas.Transpose, m, n, k, pad int, alpha, beta float64) float64 {
	ar, ac := m, k
	if tA == blas.Trans {
		ar, ac = k, m
	}
	br, bc := k, n
	if tB == blas.Trans {
		br, bc = n, k
	}
	lda, ldb, ldc := max(ac, 1)+pad, max(bc, 1)+pad, max(n, 1)+pad
	a, b := randSlice(rng, max(ar*lda, 1)), randSlice(rng, max(br*ldb, 1))
	c := randSlice(rng, max(m*ldc, 1))
	want := slices.Clone(c)
	Implementation{}.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	gonum.Implementation{}.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, want, ldc)
	// The scale: the same product on absolute values.
	abs := func(x []float64) []float64 {
		y := make([]float64, len(x))
		for i, v := range x {
			y[i] = math.Abs(v)
		}
		return y
	}
	bound := make([]float64, len(c))
	gonum.Implementation{}.Dgemm(tA, tB, m, n, k, math.Abs(alpha), abs(a), lda, abs(b), ldb, 0, bound, ldc)
	var worst float64
	for i := range m {
		for j := range n {
			x := i*ldc + j
			if d := math.Abs(c[x]-want[x]) / (bound[x] + math.Abs(want[x]) + 1e-300); d > worst {
				worst = d
			}
		}
		// Padding between rows is never written.
		for j := n; j < ldc && i*ldc+j < len(c); j++ {
			if c[i*ldc+j] != want[i*ldc+j] {
				return math.Inf(1)
			}
		}
	}
	return worst
}

// Dgemm agrees with gonum's on random shapes (edges not multiples of the
// 6×8 tile or of kc = 256), all transposes, α, β (0 included) and padded
// leading dimensions, to 1e-14 of the scale of the sum (a k-term float64
// dot product in a different order differs by ~k·ε relative to that scale).
func TestDgemmMatchesGonum(t *testing.T) {
	testutil.Slow(t, "about 5 s: every shape, transpose and stride against gonum")
	for _, k := range []struct {
		name string
		f    func(int, []float64, int, int, []float64, int, []float64, int, float64)
	}{{Kernel, kernel}, {"go", kernelGo}} {
		t.Run(k.name, func(t *testing.T) {
			defer func(old func(int, []float64, int, int, []float64, int, []float64, int, float64)) { kernel = old }(kernel)
			kernel = k.f
			testDgemmMatchesGonum(t)
		})
	}
}

func testDgemmMatchesGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := [][3]int{{1, 1, 1}, {6, 8, 1}, {7, 9, 3}, {5, 3, 300}, {13, 17, 257}, {100, 100, 100},
		{203, 101, 99}, {100, 100, 1000}, {1, 50, 513}, {50, 1, 7}, {0, 3, 4}, {3, 0, 4}, {3, 4, 0},
		{13, 17, 4500}, {40, 30, 2049}} // the last two split k into chunks of 2048
	for _, s := range shapes {
		for _, tA := range []blas.Transpose{blas.NoTrans, blas.Trans} {
			for _, tB := range []blas.Transpose{blas.NoTrans, blas.Trans} {
				for _, ab := range [][2]float64{{1, 0}, {-0.5, 1}, {2, -1.5}, {0, 2}} {
					for _, pad := range []int{0, 3} {
						if d := gemmCase(rng, tA, tB, s[0], s[1], s[2], pad, ab[0], ab[1]); d > 1e-14 {
							t.Errorf("m,n,k=%v %c%c α=%v β=%v pad %d: relative error %.3g", s, tA, tB, ab[0], ab[1], pad, d)
						}
					}
				}
			}
		}
	}
}

// FuzzDgemm compares Dgemm with gonum's on fuzzed shapes and parameters.
func FuzzDgemm(f *testing.F) {
	f.Add(uint8(7), uint8(9), uint16(300), false, true, 1.0, 0.0, uint8(0), uint64(1))
	f.Add(uint8(1), uint8(1), uint16(1), true, false, -2.0, 1.0, uint8(2), uint64(2))
	f.Fuzz(func(t *testing.T, m, n uint8, k uint16, ta, tb bool, alpha, beta float64, pad uint8, seed uint64) {
		if math.IsNaN(alpha) || math.IsInf(alpha, 0) || math.IsNaN(beta) || math.IsInf(beta, 0) ||
			math.Abs(alpha) > 1e100 || math.Abs(beta) > 1e100 {
			return
		}
		tA, tB := blas.NoTrans, blas.NoTrans
		if ta {
			tA = blas.Trans
		}
		if tb {
			tB = blas.Trans
		}
		rng := rand.New(rand.NewPCG(seed, 3))
		if d := gemmCase(rng, tA, tB, int(m%70), int(n%70), int(k%600), int(pad%4), alpha, beta); d > 1e-13 {
			t.Errorf("m,n,k=%d,%d,%d %c%c α=%v β=%v: relative error %.3g", m%70, n%70, k%600, tA, tB, alpha, beta, d)
		}
	})
}

// Dsyrk fills the requested triangle of C like gonum's and leaves the other untouched.
func TestDsyrkMatchesGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, s := range [][2]int{{1, 1}, {7, 300}, {200, 1000}, {33, 5}} {
		n, k := s[0], s[1]
		for _, tr := range []blas.Transpose{blas.NoTrans, blas.Trans} {
			for _, ul := range []blas.Uplo{blas.Upper, blas.Lower} {
				lda := k
				rows := n
				if tr == blas.Trans {
					lda, rows = n, k
				}
				a := randSlice(rng, rows*lda)
				c := randSlice(rng, n*n)
				want := slices.Clone(c)
				Implementation{}.Dsyrk(ul, tr, n, k, -0.7, a, lda, 0.5, c, n)
				gonum.Implementation{}.Dsyrk(ul, tr, n, k, -0.7, a, lda, 0.5, want, n)
				for i := range n {
					for j := range n {
						inTri := (ul == blas.Upper && j >= i) || (ul == blas.Lower && j <= i)
						d := math.Abs(c[i*n+j] - want[i*n+j])
						if (inTri && d > 1e-12*float64(k)) || (!inTri && d != 0) {
							t.Fatalf("n=%d k=%d %c %c: C[%d][%d] = %v, gonum %v", n, k, tr, ul, i, j, c[i*n+j], want[i*n+j])
						}
					}
				}
			}
		}
	}
}

// The result does not depend on GOMAXPROCS, bit for bit.
func TestDgemmDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, s := range [][3]int{{1000, 100, 100}, {100, 100, 3000}} {
		m, n, k := s[0], s[1], s[2]
		a, b := randSlice(rng, m*k), randSlice(rng, k*n)
		run := func(procs int) []float64 {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			c := make([]float64, m*n)
			Implementation{}.Dgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a, k, b, n, 0, c, n)
			return c
		}
		if one, four := run(1), run(4); !slices.Equal(one, four) {
			t.Errorf("%v: GOMAXPROCS 1 and 4 differ", s)
		}
	}
}

// The assembly micro-kernel agrees with the Go one (when the CPU has
// AVX2+FMA), with A read row-major, transposed, and B with padded rows.
func TestKernelsAgree(t *testing.T) {
	if Kernel == "go" {
		t.Skip("no assembly micro-kernel on this CPU")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, kb := range []int{1, 2, 7, 256} {
		for _, st := range [][3]int{{1, mr, nr}, {kb + 3, 1, nr + 5}, {1, mr + 2, 11}} { // rsa, csa, rsb
			rsa, csa, rsb := st[0], st[1], st[2]
			a, b := randSlice(rng, (mr-1)*rsa+(kb-1)*csa+1), randSlice(rng, (kb-1)*rsb+nr)
			for _, ldc := range []int{nr, 11} {
				c := randSlice(rng, (mr-1)*ldc+nr)
				want := slices.Clone(c)
				kernel(kb, a, rsa, csa, b, rsb, c, ldc, 0.75)
				kernelGo(kb, a, rsa, csa, b, rsb, want, ldc, 0.75)
				for i := range c {
					if math.Abs(c[i]-want[i]) > 1e-13*float64(kb) {
						t.Fatalf("kb=%d strides %v ldc=%d: c[%d] = %v, Go kernel %v", kb, st, ldc, i, c[i], want[i])
					}
				}
			}
		}
	}
}

// BenchmarkDgemm times the two products of a matrix-scaling pass on
// 10⁴×100 logits, this package against gonum's; GFLOP/s = 2mnk/wall time,
// GFLOP/cpu-s = 2mnk/CPU time of all threads (the steadier figure on a
// loaded machine; with GOMAXPROCS 1 the two agree on an idle one).
func BenchmarkDgemm(b *testing.B) {
	const n, c = 10000, 100
	rng := rand.New(rand.NewPCG(9, 10))
	z, w, s := randSlice(rng, n*c), randSlice(rng, c*c), randSlice(rng, n*c)
	for _, impl := range []struct {
		name string
		f    blas.Float64
	}{{"kdcal-" + Kernel, Implementation{}}, {"gonum", gonum.Implementation{}}} {
		for _, op := range []struct {
			name string
			run  func()
		}{
			{"ZWt", func() { impl.f.Dgemm(blas.NoTrans, blas.Trans, n, c, c, 1, z, c, w, c, 1, s, c) }},
			{"GtZ", func() { impl.f.Dgemm(blas.Trans, blas.NoTrans, c, c, n, 1, s, c, z, c, 0, w, c) }},
		} {
			b.Run(fmt.Sprintf("%s/%s", op.name, impl.name), func(b *testing.B) {
				cpu0 := testutil.CPUTime()
				for b.Loop() {
					op.run()
				}
				cpu := (testutil.CPUTime() - cpu0).Seconds()
				b.ReportMetric(2*float64(n)*c*c*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				b.ReportMetric(2*float64(n)*c*c*float64(b.N)/cpu/1e9, "GFLOP/cpu-s")
			})
		}
	}
}
