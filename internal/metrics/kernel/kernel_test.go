package kernel

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// Exp agrees with math.Exp within 2 ulp (relative 2·2⁻⁵²) over the whole
// normal range, at the fast-path boundaries and on special values.
func TestExpAccuracy(t *testing.T) {
	const maxRel = 2 * 0x1p-52
	rng := rand.New(rand.NewPCG(1, 2))
	xs := []float64{0, -0, 1, -1, 1e-300, -1e-300, math.Ln2, -math.Ln2, 0.5 * math.Ln2 / expN,
		-707.999, 708.999, -708, 709, -745, -746, 710, math.Inf(1), math.Inf(-1)}
	for range 2000000 {
		switch rng.IntN(3) {
		case 0:
			xs = append(xs, -708*rng.Float64())
		case 1:
			xs = append(xs, -10*rng.Float64())
		default:
			xs = append(xs, 709*rng.Float64())
		}
	}
	var worst float64
	for _, x := range xs {
		got, want := Exp(x), math.Exp(x)
		if want == 0 || math.IsInf(want, 0) {
			if got != want {
				t.Fatalf("Exp(%v) = %v, want %v", x, got, want)
			}
			continue
		}
		rel := math.Abs(got-want) / want
		worst = math.Max(worst, rel)
		if rel > maxRel {
			t.Fatalf("Exp(%v) = %v, math.Exp %v: relative error %.3g > %.3g", x, got, want, rel, maxRel)
		}
	}
	if !math.IsNaN(Exp(math.NaN())) {
		t.Error("Exp(NaN) is not NaN")
	}
	t.Logf("largest relative difference from math.Exp: %.3g (%.2f ulp)", worst, worst/0x1p-52)
}

func TestMapChunksInOrder(t *testing.T) {
	for _, n := range []int{0, 1, 5000, 100003} {
		got := Map(n, 3, func(lo, hi int) [2]int { return [2]int{lo, hi} })
		next := 0
		for _, r := range got {
			if r[0] != next || r[1] <= r[0] || r[1]-r[0] > ChunkRows(3) {
				t.Fatalf("n = %d: chunk %v after %d", n, r, next)
			}
			next = r[1]
		}
		if next != n {
			t.Fatalf("n = %d: chunks end at %d", n, next)
		}
	}
}

// Chunking depends only on the shape, never on GOMAXPROCS.
func TestMapIndependentOfProcs(t *testing.T) {
	fn := func(lo, hi int) int { return lo*7 + hi }
	old := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(old)
	one := Map(300000, 10, fn)
	runtime.GOMAXPROCS(8)
	if eight := Map(300000, 10, fn); !slices.Equal(one, eight) {
		t.Error("chunk results differ between GOMAXPROCS 1 and 8")
	}
}

var sink float64

func BenchmarkExp(b *testing.B) {
	xs := make([]float64, 1000)
	for i := range xs {
		xs[i] = -float64(i) / 100
	}
	b.Run("kernel", func(b *testing.B) {
		for b.Loop() {
			var s float64
			for _, x := range xs {
				s += Exp(x)
			}
			sink = s
		}
	})
	b.Run("math", func(b *testing.B) {
		for b.Loop() {
			var s float64
			for _, x := range xs {
				s += math.Exp(x)
			}
			sink = s
		}
	})
}

// ExpSub gives Exp(src[k] − m) and ExpScaled Exp((src[k] − m)·β) bit for bit, through the vector path and
// the scalar fallback (arguments ≤ −708, ≥ 709, ±Inf, NaN mixed in), on
// lengths that are not multiples of 4 and in place.
func TestExpSubMatchesExp(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	special := []float64{-708, -708.5, -800, 709, 709.5, math.Inf(-1), math.Inf(1), math.NaN(), 0, -0.0}
	for _, n := range []int{0, 1, 3, 4, 5, 100, 1003} {
		for trial := range 20 {
			src := make([]float64, n)
			for k := range src {
				src[k] = 40 * rng.NormFloat64()
				if trial%2 == 1 && rng.IntN(10) == 0 {
					src[k] = special[rng.IntN(len(special))] + 5
				}
			}
			const m = 5.0
			dst := make([]float64, n)
			ExpSub(dst, src, m)
			scaled := make([]float64, n)
			ExpScaled(scaled, src, m, 0.37)
			inPlace := slices.Clone(src)
			ExpSub(inPlace, inPlace, m)
			for k, x := range src {
				want := Exp(x - m)
				if math.Float64bits(dst[k]) != math.Float64bits(want) && !(math.IsNaN(want) && math.IsNaN(dst[k])) {
					t.Fatalf("n=%d: ExpSub[%d] of %v = %v, Exp %v", n, k, x, dst[k], want)
				}
				if math.Float64bits(inPlace[k]) != math.Float64bits(dst[k]) && !math.IsNaN(want) {
					t.Fatalf("n=%d: in place [%d] = %v, want %v", n, k, inPlace[k], dst[k])
				}
				if ws := Exp((x - m) * 0.37); math.Float64bits(scaled[k]) != math.Float64bits(ws) && !math.IsNaN(ws) {
					t.Fatalf("n=%d: ExpScaled[%d] of %v = %v, Exp %v", n, k, x, scaled[k], ws)
				}
			}
		}
	}
}

// BenchmarkExpSub times 100-element rows, the vector path against Exp in a loop.
func BenchmarkExpSub(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	src, dst := make([]float64, 100), make([]float64, 100)
	for k := range src {
		src[k] = 5 * rng.NormFloat64()
	}
	b.Run("ExpSub", func(b *testing.B) {
		for b.Loop() {
			ExpSub(dst, src, 3)
		}
	})
	b.Run("Exp", func(b *testing.B) {
		for b.Loop() {
			for k, x := range src {
				dst[k] = Exp(x - 3)
			}
		}
	})
}
