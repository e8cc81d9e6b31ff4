package fused

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// specials are inputs where float semantics differ most easily.
var specials = []float32{0, float32(math.Copysign(0, -1)), float32(math.NaN()), float32(math.Inf(1)),
	float32(math.Inf(-1)), 1e-40, -1e-40, 3.4e38, -3.4e38, 1, -1}

// f32s returns n values: mostly N(0,1), with a special value every 7th.
func f32s(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
		if rng.IntN(7) == 0 {
			v[i] = specials[rng.IntN(len(specials))]
		}
	}
	return v
}

// bitsEqual compares float32 slices bit by bit (NaN payloads included).
func bitsEqual(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

func sameF64(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || (a != a && b != b)
}

// TestElementwiseSIMDMatchesScalar checks every assembly kernel against the
// portable loop bit for bit, for lengths around the 4-float steps and
// with NaN, ±0, ±Inf, subnormal and huge inputs. (Without assembly, with
// -tags purego or off amd64, both sides are the portable loop.)
func TestElementwiseSIMDMatchesScalar(t *testing.T) {
	if !haveSIMD {
		t.Log("no SIMD kernels in this build: comparing the portable loop with itself")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	both := func(f func()) {
		useSIMD = haveSIMD
		f()
		useSIMD = false
		f()
		useSIMD = haveSIMD
	}
	for _, n := range []int{0, 1, 3, 4, 5, 8, 13, 64, 1031} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			a, sc, g, y, xh := f32s(rng, n), f32s(rng, n), f32s(rng, n), f32s(rng, n), f32s(rng, n)
			for i := range y {
				y[i] = relu(y[i]) // gateSums reads ReLU outputs
			}
			c := [4]float32{0.3, 1.7, -0.9, 0.2}

			var outA, outH [2][]float32
			var sc2 []float32
			for _, withSC := range []bool{false, true} {
				k := 0
				both(func() {
					aa, hh := slices.Clone(a), make([]float32, n)
					sc2 = nil
					if withSC {
						sc2 = sc
					}
					normAct(aa, hh, sc2, c[0], c[1], c[2], c[3])
					outA[k], outH[k] = aa, hh
					k++
				})
				if !bitsEqual(outA[0], outA[1]) || !bitsEqual(outH[0], outH[1]) {
					t.Errorf("normAct (shortcut %v): SIMD and scalar differ", withSC)
				}
			}

			var d [2][]float32
			var s [2][2]float64
			k := 0
			both(func() {
				dd := make([]float32, n)
				s[k][0], s[k][1] = gateSums(dd, g, y, xh)
				d[k] = dd
				k++
			})
			if !bitsEqual(d[0], d[1]) || !sameF64(s[0][0], s[1][0]) || !sameF64(s[0][1], s[1][1]) {
				t.Errorf("gateSums: SIMD %v, scalar %v", s[0], s[1])
			}

			k = 0
			both(func() {
				s[k][0], s[k][1] = sums(a)
				k++
			})
			if !sameF64(s[0][0], s[1][0]) || !sameF64(s[0][1], s[1][1]) {
				t.Errorf("sums: SIMD %v, scalar %v", s[0], s[1])
			}

			k = 0
			both(func() {
				dd := slices.Clone(g)
				bnApply(dd, xh, c[0], c[1], c[2])
				d[k] = dd
				k++
			})
			if !bitsEqual(d[0], d[1]) {
				t.Error("bnApply: SIMD and scalar differ")
			}
		})
	}
}

// TestElementwiseHandComputed pins the semantics on a few values worked out
// by hand: ReLU keeps NaN and −0, the gate passes only where y > 0.
func TestElementwiseHandComputed(t *testing.T) {
	nan := float32(math.NaN())
	negZero := float32(math.Copysign(0, -1))
	// x̂ = (a−1)·2, h = relu(3·x̂ − 1): a = 1.5 → x̂ 1, h 2; a = 0 → x̂ −2, h 0;
	// a = NaN → NaN, NaN; a = 1 → x̂ 0, h relu(−1) = 0; then a tail value.
	a := []float32{1.5, 0, nan, 1, 1.25}
	h := make([]float32, len(a))
	normAct(a, h, nil, 1, 2, 3, -1)
	wantA := []float32{1, -2, nan, 0, 0.5}
	wantH := []float32{2, 0, nan, 0, 0.5}
	if !bitsEqual(a[:2], wantA[:2]) || a[2] == a[2] || !bitsEqual(a[3:], wantA[3:]) ||
		!bitsEqual(h[:2], wantH[:2]) || h[2] == h[2] || !bitsEqual(h[3:], wantH[3:]) {
		t.Errorf("normAct: x̂ %v h %v, want %v %v", a, h, wantA, wantH)
	}
	if r := relu(negZero); math.Float32bits(r) != math.Float32bits(negZero) {
		t.Errorf("relu(−0) = %v, want −0", r)
	}
	// d = g where y > 0: y = 2, 0, −0, NaN, +Inf.
	g := []float32{1, 2, 3, 4, 5}
	y := []float32{2, 0, negZero, nan, float32(math.Inf(1))}
	xh := []float32{0.5, 1, 1, 1, 2}
	d := make([]float32, 5)
	sd, sdx := gateSums(d, g, y, xh)
	if !bitsEqual(d, []float32{1, 0, 0, 0, 5}) || sd != 6 || sdx != 10.5 {
		t.Errorf("gateSums: d %v, Σd %v, Σd·x̂ %v; want [1 0 0 0 5], 6, 10.5", d, sd, sdx)
	}
	if s1, s2 := sums([]float32{1, 2, 3, 4, 5}); s1 != 15 || s2 != 55 {
		t.Errorf("sums = %v, %v; want 15, 55", s1, s2)
	}
	dd := []float32{1, 2, 3, 4, 5}
	bnApply(dd, []float32{1, 1, 1, 1, 2}, 2, 1, 0.5) // 2·((d−1) − 0.5·x̂)
	if !bitsEqual(dd, []float32{-1, 1, 3, 5, 6}) {
		t.Errorf("bnApply = %v, want [-1 1 3 5 6]", dd)
	}
}
