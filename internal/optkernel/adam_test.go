package optkernel

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// adamState is one parameter tensor with its gradient and moments.
type adamState struct{ w, g, m, v []float32 }

func randState(rng *rand.Rand, n int) adamState {
	s := adamState{make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)}
	for i := range n {
		s.w[i] = float32(rng.NormFloat64())
		s.g[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(9)-6))) // 1e-6 … 1e2
		s.m[i] = float32(0.1 * rng.NormFloat64())
		s.v[i] = float32(math.Abs(rng.NormFloat64()) * math.Pow(10, float64(rng.IntN(9)-8)))
	}
	// Edge values: zero gradient and moments (√0 + eps), huge and tiny
	// gradients, a zero weight.
	for i, e := range []struct{ w, g, m, v float32 }{
		{0, 0, 0, 0}, {1, 0, 0, 0}, {-1, 1e30, 0, 0}, {2, 1e-30, 0, 0}, {3, -1e-20, 1e-20, 1e-38},
	} {
		if i < n {
			s.w[i], s.g[i], s.m[i], s.v[i] = e.w, e.g, e.m, e.v
		}
	}
	return s
}

func (s adamState) clone() adamState {
	return adamState{slices.Clone(s.w), slices.Clone(s.g), slices.Clone(s.m), slices.Clone(s.v)}
}

func consts(t int, lr, wd float64) *AdamConsts {
	const beta1, beta2 = 0.9, 0.999
	return &AdamConsts{B1: beta1, A1: 1 - beta1, B2: beta2, A2: 1 - beta2, Eps: 1e-8,
		Decay:    float32(1 - lr*wd),
		StepSize: float32(lr / (1 - math.Pow(beta1, float64(t)))),
		C2:       float32(math.Sqrt(1 - math.Pow(beta2, float64(t))))}
}

func sameBits(a, b []float32) int {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

// TestAdamMatchesScalar checks that Adam (the SSE2 kernel on amd64 plus the
// scalar tail) gives bit-identical weights and moments to AdamScalar, zeroes
// the gradient, and returns Σ w² to float32 rounding (relative 1e-5: the
// kernel sums in four lanes), for lengths that exercise every tail size.
func TestAdamMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 3, 4, 5, 8, 13, 64, 1001, 4099} {
		for step, c := range []*AdamConsts{consts(1, 1e-3, 0), consts(7, 0.1, 0.01), consts(1000, 1e-2, 0.5)} {
			s := randState(rng, n)
			want := s.clone()
			wantSS := AdamScalar(want.w, want.g, want.m, want.v, c)
			got := s.clone()
			gotSS := Adam(got.w, got.g, got.m, got.v, c)
			for _, x := range []struct {
				name      string
				got, want []float32
			}{{"w", got.w, want.w}, {"m", got.m, want.m}, {"v", got.v, want.v}} {
				if i := sameBits(x.got, x.want); i >= 0 {
					t.Errorf("n=%d consts %d: %s[%d] = %v, scalar %v", n, step, x.name, i, x.got[i], x.want[i])
				}
			}
			for i, g := range got.g {
				if g != 0 {
					t.Errorf("n=%d: g[%d] = %v, want 0", n, i, g)
					break
				}
			}
			if e := math.Abs(float64(gotSS-wantSS)) / float64(wantSS); e > 1e-5 {
				t.Errorf("n=%d consts %d: Σw² = %v, scalar %v", n, step, gotSS, wantSS)
			}
		}
	}
}

// TestAdamHandComputed checks one element against the update computed by
// hand in float64 (step 1, lr 0.1, no decay: m = 0.05, v = 2.5e-4, m̂ = 0.5,
// v̂ = 0.25, w = 1 − 0.1·0.5/(0.5 + 1e-8)), to float32 rounding.
func TestAdamHandComputed(t *testing.T) {
	w, g, m, v := []float32{1, 1, 1, 1, 1}, []float32{0.5, 0.5, 0.5, 0.5, 0.5}, make([]float32, 5), make([]float32, 5)
	Adam(w, g, m, v, consts(1, 0.1, 0))
	want := 1 - 0.1*0.5/(0.5+1e-8)
	for i := range w {
		if math.Abs(float64(w[i])-want) > 1e-7 {
			t.Errorf("w[%d] = %.9g, want %.9g", i, w[i], want)
		}
	}
}

// BenchmarkAdam times one update of 670k parameters (the MLP
// 784-512-512-10), SIMD kernel against the scalar loop; both include a
// copy of the gradient.
func BenchmarkAdam(b *testing.B) {
	const n = 669706
	for _, k := range []struct {
		name string
		f    func(w, g, m, v []float32, c *AdamConsts) float32
	}{{"scalar", AdamScalar}, {"simd", Adam}} {
		b.Run(k.name, func(b *testing.B) {
			s := randState(rand.New(rand.NewPCG(3, 4)), n)
			g0 := slices.Clone(s.g)
			c := consts(10, 1e-3, 0)
			for b.Loop() {
				// Refill the gradient the update zeroes: with zero gradients
				// the moments decay into subnormals, which are slow.
				copy(s.g, g0)
				k.f(s.w, s.g, s.m, s.v, c)
			}
			b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/n, "ns/param")
		})
	}
}
