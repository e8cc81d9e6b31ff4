package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// problem is one Sgemm call: op(A) m×k, op(B) k×n, C m×n, with padA, padB
// and padC extra columns in the leading dimensions.
type problem struct {
	tA, tB           blas.Transpose
	m, n, k          int
	alpha, beta      float32
	padA, padB, padC int
}

func (p problem) String() string {
	t := func(x blas.Transpose) string {
		if x == blas.NoTrans {
			return "N"
		}
		return "T"
	}
	return fmt.Sprintf("%s%s/%dx%dx%d/a%g/b%g/pad%d,%d,%d", t(p.tA), t(p.tB), p.m, p.n, p.k, p.alpha, p.beta, p.padA, p.padB, p.padC)
}

// operands holds the inputs of a problem. C's entries outside the m×n
// window (the padding of each row) hold sentinel, which Sgemm must keep.
type operands struct {
	a, b, c       []float32
	lda, ldb, ldc int
}

const sentinel = -7777.25

// dims returns the stored rows and columns of op(X) (r×cols) for trans.
func dims(trans blas.Transpose, r, cols int) (int, int) {
	if trans == blas.NoTrans {
		return r, cols
	}
	return cols, r
}

// newOperands fills A and B with draw() and C with draw(), or with NaN when
// beta = 0, so that a read of C under beta = 0 shows up in the result.
func newOperands(p problem, draw func() float32) operands {
	ar, ac := dims(p.tA, p.m, p.k)
	br, bc := dims(p.tB, p.k, p.n)
	o := operands{lda: max(1, ac+p.padA), ldb: max(1, bc+p.padB), ldc: max(1, p.n+p.padC)}
	o.a = make([]float32, max(0, (ar-1)*o.lda+ac))
	o.b = make([]float32, max(0, (br-1)*o.ldb+bc))
	o.c = make([]float32, max(0, (p.m-1)*o.ldc+p.n))
	for i := range o.a {
		o.a[i] = draw()
	}
	for i := range o.b {
		o.b[i] = draw()
	}
	for i := range o.c {
		switch {
		case i%o.ldc >= p.n:
			o.c[i] = sentinel
		case p.beta == 0:
			o.c[i] = float32(math.NaN())
		default:
			o.c[i] = draw()
		}
	}
	return o
}

func (o operands) opA(p problem, i, l int) float64 {
	if p.tA == blas.NoTrans {
		return float64(o.a[i*o.lda+l])
	}
	return float64(o.a[l*o.lda+i])
}

func (o operands) opB(p problem, l, j int) float64 {
	if p.tB == blas.NoTrans {
		return float64(o.b[l*o.ldb+j])
	}
	return float64(o.b[j*o.ldb+l])
}

// reference returns alpha·op(A)·op(B) + beta·C in float64 (C not used when
// beta = 0) and, per entry, S = |alpha|·(|op(A)|·|op(B)|) + |beta·C|, the
// scale of the rounding-error bound.
func (o operands) reference(p problem) (want, scale []float64) {
	// op(A) by rows and op(B) by columns, in float64, so the dots are contiguous.
	at, bt := make([]float64, p.m*p.k), make([]float64, p.n*p.k)
	for i := range p.m {
		for l := range p.k {
			at[i*p.k+l] = o.opA(p, i, l)
		}
	}
	for j := range p.n {
		for l := range p.k {
			bt[j*p.k+l] = o.opB(p, l, j)
		}
	}
	want, scale = make([]float64, p.m*p.n), make([]float64, p.m*p.n)
	for i := range p.m {
		ar := at[i*p.k : (i+1)*p.k]
		for j := range p.n {
			br := bt[j*p.k : (j+1)*p.k]
			var s, abs float64
			for l, x := range ar {
				x *= br[l]
				s, abs = s+x, abs+math.Abs(x)
			}
			w, sc := float64(p.alpha)*s, math.Abs(float64(p.alpha))*abs
			if p.beta != 0 {
				bc := float64(p.beta) * float64(o.c[i*o.ldc+j])
				w, sc = w+bc, sc+math.Abs(bc)
			}
			want[i*p.n+j], scale[i*p.n+j] = w, sc
		}
	}
	return want, scale
}

// tolerance is the bound on |Ĉ − C| for a float32 GEMM of depth k relative
// to S: (k+2)·ε with ε = 2⁻²³, twice the unit roundoff u (Higham §3.5: a sum
// of k products is within (k−1)·u·S to first order, plus the roundings of
// alpha and beta). The factor 2 covers the extra alpha rounding and the
// accumulation into C of each depth block.
func tolerance(k int) float64 { return float64(k+2) * 0x1p-23 }

// run calls impl.Sgemm on a copy of o.c followed in memory by a guard
// region of sentinels (a write past the end of C would land there) and
// returns the copy.
func (o operands) run(t testing.TB, impl blas.Float32Level3, p problem) []float32 {
	t.Helper()
	const guard = 64
	buf := make([]float32, len(o.c)+guard)
	copy(buf, o.c)
	for i := len(o.c); i < len(buf); i++ {
		buf[i] = sentinel
	}
	c := buf[:len(o.c):len(o.c)]
	impl.Sgemm(p.tA, p.tB, p.m, p.n, p.k, p.alpha, o.a, o.lda, o.b, o.ldb, p.beta, c, o.ldc)
	for i, v := range buf[len(o.c):] {
		if v != sentinel {
			t.Fatalf("%v: the %d-th float past the end of C changed to %g", p, i, v)
		}
	}
	return c
}

// check compares got against the float64 reference within
// tolerance(k)·factor·S and checks that C's padding kept its sentinel.
func (o operands) check(t testing.TB, p problem, name string, got []float32, factor float64) {
	t.Helper()
	want, scale := o.reference(p)
	o.checkAgainst(t, p, name, got, want, scale, factor)
}

// checkAgainst is check with the reference already computed.
func (o operands) checkAgainst(t testing.TB, p problem, name string, got []float32, want, scale []float64, factor float64) {
	t.Helper()
	for i, g := range got {
		if i%o.ldc >= p.n && g != sentinel {
			t.Fatalf("%s %v: C[%d,%d] outside the %dx%d window changed to %g", name, p, i/o.ldc, i%o.ldc, p.m, p.n, g)
		}
	}
	tol, bad := factor*tolerance(p.k), 0
	for i := range p.m {
		for j := range p.n {
			g, w, s := got[i*o.ldc+j], want[i*p.n+j], scale[i*p.n+j]
			if d := math.Abs(float64(g) - w); !(d <= tol*s) {
				if bad++; bad <= 3 {
					t.Errorf("%s %v: C[%d,%d] = %g, want %g (|diff| %.3g > %.3g)", name, p, i, j, g, w, d, tol*s)
				}
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%s %v: %d of %d entries out of tolerance", name, p, bad, p.m*p.n)
	}
}

var transposes = []blas.Transpose{blas.NoTrans, blas.Trans}

// shapes: degenerate sizes, every m mod 6 (the kernel's 2-, 4- and 6-row
// variants) with and without n mod 16, primes around the 6×16 tile, and the GEMMs of
// kdcal's training (MLP 784-512-512-10 at batch 128, the medium CNN's
// conv stages per chunk and its dense layer).
var shapes = [][3]int{ // m, n, k
	{1, 1, 1}, {1, 1, 0}, {3, 4, 0}, {1, 17, 1}, {7, 1, 5}, {2, 3, 4},
	{5, 15, 3}, {6, 16, 1}, {6, 16, 4}, {6, 16, 7}, {7, 17, 9}, {12, 32, 5},
	{3, 16, 2}, {4, 16, 3}, {9, 32, 20}, {11, 48, 7}, {17, 64, 6}, // m mod 6 = 3, 4, 3, 5, 5 with full columns
	{13, 31, 37}, {37, 41, 43}, {97, 101, 103},
	{128, 10, 512}, {16, 1568, 9}, {16, 9, 196}, {32, 196, 144}, {144, 196, 32},
	{128, 512, 784},
}

func TestSgemmAgainstReference(t *testing.T) {
	requireKernel(t)
	rng := rand.New(rand.NewPCG(1, 2))
	draw := func() float32 { return float32(rng.NormFloat64()) }
	scalars := [][2]float32{{1, 0}, {1, 1}, {-0.75, 2.5}, {2, -1}, {0, 0.5}, {0, 1}}
	for _, s := range shapes {
		for _, tA := range transposes {
			for _, tB := range transposes {
				for i, ab := range scalars {
					p := problem{tA: tA, tB: tB, m: s[0], n: s[1], k: s[2], alpha: ab[0], beta: ab[1]}
					if i%2 == 1 {
						p.padA, p.padB, p.padC = 3, 1, 5
					}
					if s[0]*s[1]*s[2] > 1e6 && (i > 1 || tA != tB) {
						continue // the large shape: NN and TT, two (alpha, beta) pairs
					}
					o := newOperands(p, draw)
					want, scale := o.reference(p)
					got := o.run(t, Implementation{}, p)
					o.checkAgainst(t, p, "gemm", got, want, scale, 1)
					// gonum is within the same bound of the exact result, so
					// the two are within twice of each other: compare too.
					o.checkAgainst(t, p, "gonum", o.run(t, gonum.Implementation{}, p), want, scale, 1)
					o.compare(t, p, got, o.run(t, gonum.Implementation{}, p), scale)
				}
			}
		}
	}
}

// compare checks |got − gonum| ≤ 2·tolerance(k)·S.
func (o operands) compare(t testing.TB, p problem, got, ref []float32, scale []float64) {
	t.Helper()
	tol := 2 * tolerance(p.k)
	for i := range p.m {
		for j := range p.n {
			g, r := got[i*o.ldc+j], ref[i*o.ldc+j]
			if d := math.Abs(float64(g) - float64(r)); !(d <= tol*scale[i*p.n+j]) {
				t.Fatalf("%v: C[%d,%d] = %g, gonum %g (|diff| %.3g)", p, i, j, g, r, d)
			}
		}
	}
}

// With small integers every product and partial sum is an integer below
// 2²⁴, so any summation order is exact: the result must equal gonum's
// exactly (up to the sign of zero), in every transpose case, across block
// boundaries.
func TestSgemmExactOnIntegers(t *testing.T) {
	requireKernel(t)
	rng := rand.New(rand.NewPCG(3, 4))
	draw := func() float32 { return float32(rng.IntN(7) - 3) }
	for _, s := range [][3]int{{1, 1, 1}, {5, 7, 3}, {6, 16, 300}, {29, 47, 531}, {150, 70, 20}} {
		for _, tA := range transposes {
			for _, tB := range transposes {
				for _, ab := range [][2]float32{{1, 0}, {2, 1}, {-1, -3}} {
					p := problem{tA: tA, tB: tB, m: s[0], n: s[1], k: s[2], alpha: ab[0], beta: ab[1], padC: 2}
					o := newOperands(p, draw)
					got, ref := o.run(t, Implementation{}, p), o.run(t, gonum.Implementation{}, p)
					for i := range got {
						if got[i] != ref[i] {
							t.Fatalf("%v: c[%d] = %g, gonum %g (want exact)", p, i, got[i], ref[i])
						}
					}
				}
			}
		}
	}
}

// withBlocks runs f with the cache blocks shrunk to kc, mc, nc.
func withBlocks(t *testing.T, k, m, n int, f func()) {
	t.Helper()
	k0, m0, n0 := kc, mc, nc
	kc, mc, nc = k, m, n
	defer func() { kc, mc, nc = k0, m0, n0 }()
	f()
}

// Small cache blocks put several depth, row and column blocks (and their
// edges) into small problems, so that every loop of the driver and the
// beta' = 1 accumulation of later depth blocks are exercised, also when
// n < 16 < m swaps the roles (40×9 and 70×3 run as Cᵀ with several blocks).
func TestSgemmSmallBlocks(t *testing.T) {
	requireKernel(t)
	rng := rand.New(rand.NewPCG(5, 6))
	draw := func() float32 { return float32(rng.NormFloat64()) }
	withBlocks(t, 5, 12, 32, func() {
		for _, s := range [][3]int{{13, 33, 11}, {25, 70, 21}, {6, 16, 5}, {7, 48, 16}, {40, 9, 13}, {70, 3, 17}} {
			for _, tA := range transposes {
				for _, tB := range transposes {
					for _, beta := range []float32{0, 1, -0.5} {
						p := problem{tA: tA, tB: tB, m: s[0], n: s[1], k: s[2], alpha: 1.5, beta: beta, padA: 2, padB: 3, padC: 1}
						o := newOperands(p, draw)
						o.check(t, p, "gemm", o.run(t, Implementation{}, p), 1)
					}
				}
			}
		}
	})
}

// Invalid arguments panic with gonum's messages.
func TestSgemmPanicsAsGonum(t *testing.T) {
	a, b, c := make([]float32, 12), make([]float32, 12), make([]float32, 12)
	cases := []struct {
		name          string
		tA, tB        blas.Transpose
		m, n, k       int
		lda, ldb, ldc int
		a, b, c       []float32
	}{
		{"transpose", 'x', blas.NoTrans, 2, 2, 2, 2, 2, 2, a, b, c},
		{"m<0", blas.NoTrans, blas.NoTrans, -1, 2, 2, 2, 2, 2, a, b, c},
		{"k<0", blas.NoTrans, blas.NoTrans, 2, 2, -1, 2, 2, 2, a, b, c},
		{"lda", blas.NoTrans, blas.NoTrans, 2, 2, 3, 2, 2, 2, a, b, c},
		{"lda trans", blas.Trans, blas.NoTrans, 3, 2, 2, 2, 2, 2, a, b, c},
		{"ldb", blas.NoTrans, blas.NoTrans, 2, 3, 2, 2, 2, 3, a, b, c},
		{"ldc", blas.NoTrans, blas.NoTrans, 2, 3, 2, 2, 3, 2, a, b, c},
		{"short a", blas.NoTrans, blas.NoTrans, 4, 2, 4, 4, 2, 2, a, b, c},
		{"short b", blas.NoTrans, blas.Trans, 2, 4, 4, 4, 4, 4, a, b, c},
		{"short c", blas.NoTrans, blas.NoTrans, 2, 2, 2, 2, 2, 2, a, b, c[:3]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			call := func(impl blas.Float32Level3) (msg any) {
				defer func() { msg = recover() }()
				impl.Sgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, 1, tc.a, tc.lda, tc.b, tc.ldb, 0, tc.c, tc.ldc)
				return nil
			}
			got, want := call(Implementation{}), call(gonum.Implementation{})
			if want == nil || got != want {
				t.Fatalf("panic %v, gonum's %v", got, want)
			}
		})
	}
}

// alpha = 0 or k = 0 scales C by beta and reads neither A nor B (NaN there
// stays out), as in the reference BLAS.
func TestSgemmAlphaZeroSkipsAB(t *testing.T) {
	nan := float32(math.NaN())
	a, b := []float32{nan, nan, nan, nan}, []float32{nan, nan, nan, nan}
	for _, tc := range []struct {
		alpha, beta float32
		k           int
		want        float32
	}{{0, 2, 2, 6}, {0, 0, 2, 0}, {1, 0.5, 0, 1.5}, {1, 0, 0, 0}} {
		c := []float32{3, 3, 3, 3}
		if tc.beta == 0 {
			c = []float32{nan, nan, nan, nan}
		}
		Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, 2, 2, tc.k, tc.alpha, a, 2, b, 2, tc.beta, c, 2)
		for i, v := range c {
			if v != tc.want {
				t.Fatalf("alpha %g beta %g k %d: c[%d] = %g, want %g", tc.alpha, tc.beta, tc.k, i, v, tc.want)
			}
		}
	}
}

func TestKernelName(t *testing.T) {
	want := "gonum"
	if haveKernel {
		want = "avx2-fma-6x16"
	}
	if Kernel() != want {
		t.Fatalf("Kernel() = %q, want %q", Kernel(), want)
	}
}

// FuzzSgemm checks random problems (shape, transposes, alpha, beta, leading
// dimensions, data) against the float64 reference, C's padding and the
// memory past C. When blocks is odd the cache blocks shrink (kc 2–17,
// mc 6–24, nc 16 or 32), so that small problems cross block boundaries.
func FuzzSgemm(f *testing.F) {
	f.Add(uint8(1), uint8(1), uint8(1), false, false, uint8(0), uint8(0), uint8(0), uint8(0), uint64(1))
	f.Add(uint8(7), uint8(17), uint8(9), true, false, uint8(1), uint8(2), uint8(3), uint8(0), uint64(2))
	f.Add(uint8(13), uint8(33), uint8(0), false, true, uint8(2), uint8(1), uint8(5), uint8(1), uint64(3))
	f.Add(uint8(64), uint8(70), uint8(200), true, true, uint8(3), uint8(3), uint8(7), uint8(0), uint64(4))
	f.Add(uint8(40), uint8(9), uint8(23), false, true, uint8(4), uint8(5), uint8(2), uint8(0x6b), uint64(5))
	scalars := []float32{1, 0, -1, 0.5, 2.25, -3}
	f.Fuzz(func(t *testing.T, m, n, k uint8, aT, bT bool, ai, bi, pad, blocks uint8, seed uint64) {
		requireKernel(t)
		p := problem{m: int(m % 80), n: int(n % 80), k: int(k), alpha: scalars[int(ai)%len(scalars)],
			beta: scalars[int(bi)%len(scalars)], padA: int(pad % 3), padB: int(pad / 3 % 3), padC: int(pad / 9 % 3)}
		p.tA, p.tB = blas.NoTrans, blas.NoTrans
		if aT {
			p.tA = blas.Trans
		}
		if bT {
			p.tB = blas.Trans
		}
		rng := rand.New(rand.NewPCG(seed, 9))
		o := newOperands(p, func() float32 { return float32(rng.NormFloat64()) })
		if blocks%2 == 0 {
			o.check(t, p, "gemm", o.run(t, Implementation{}, p), 1)
			return
		}
		k0, m0, n0 := kc, mc, nc
		defer func() { kc, mc, nc = k0, m0, n0 }()
		kc, mc, nc = 2+int(blocks>>1)%16, 6*(1+int(blocks>>5)%4), 16*(1+int(blocks>>7))
		o.check(t, p, "gemm", o.run(t, Implementation{}, p), 1)
	})
}

func requireKernel(t testing.TB) {
	t.Helper()
	if !haveKernel {
		t.Skip("no AVX2+FMA kernel on this CPU/build: Sgemm is gonum's")
	}
}
