package fused

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// withChunkElems runs f with chunkElems set to n.
func withChunkElems(n int, f func()) {
	old := chunkElems
	chunkElems = n
	defer func() { chunkElems = old }()
	f()
}

// naiveCol returns the column-matrix entry of im2col's definition.
func naiveCol(g conv, x []float64, xl layout, i, c, kh, kw, oh, ow int) float64 {
	ih, iw := oh*g.s+kh-1, ow*g.s+kw-1
	if ih < 0 || ih >= g.h || iw < 0 || iw >= g.w {
		return 0
	}
	return x[i*xl.sn+c*xl.sc+ih*g.w+iw]
}

// TestIm2col checks im2col against its definition for every chunking (whole
// images, several images, bands of one and of several rows), strides 1 and
// 2, even and odd planes and both layouts, and col2im as its adjoint:
// ⟨im2col(x), y⟩ = ⟨x, col2im(y)⟩ (exact up to rounding, tolerance 1e-12
// relative).
func TestIm2col(t *testing.T) {
	geoms := []struct{ n, c, h, w, s int }{
		{3, 2, 5, 6, 1}, {2, 3, 7, 5, 2}, {2, 1, 8, 8, 2}, {4, 2, 1, 3, 1}, {1, 1, 2, 1, 2},
	}
	for gi, gg := range geoms {
		for _, elems := range []int{1, 20, 60, 1 << 20} {
			for _, lay := range []string{"nchw", "cnhw"} {
				t.Run(fmt.Sprintf("%v/elems=%d/%s", gg, elems, lay), func(t *testing.T) {
					withChunkElems(elems, func() { testIm2col(t, gg.n, gg.c, gg.h, gg.w, gg.s, lay, uint64(gi)) })
				})
			}
		}
	}
}

func testIm2col(t *testing.T, n, c, h, w, s int, lay string, seed uint64) {
	g := newConv(n, c, h, w, 1, s)
	xl := nchw(c, g.p())
	if lay == "cnhw" {
		xl = cnhw(n, g.p())
	}
	rng := rand.New(rand.NewPCG(seed, 5))
	x := normal(rng, n*c*g.p())
	covered := make([]int, n*g.q())
	var lhs, rhs float64
	dx := make([]float64, len(x))
	for _, ch := range g.chunks {
		j0, j := g.cols(ch)
		for jj := j0; jj < j0+j; jj++ {
			covered[jj]++
		}
		col := make([]float64, g.k()*j)
		im2col(g, x, xl, col, ch)
		y := normal(rng, len(col))
		bw := (ch.r1 - ch.r0) * g.wo
		for ci := 0; ci < c; ci++ {
			for kh := 0; kh < 3; kh++ {
				for kw := 0; kw < 3; kw++ {
					r := (ci*3+kh)*3 + kw
					for i := 0; i < ch.nb; i++ {
						for oh := ch.r0; oh < ch.r1; oh++ {
							for ow := 0; ow < g.wo; ow++ {
								at := r*j + i*bw + (oh-ch.r0)*g.wo + ow
								want := naiveCol(g, x, xl, ch.n0+i, ci, kh, kw, oh, ow)
								if col[at] != want {
									t.Fatalf("chunk %+v: col[%d][img %d, %d, %d] = %v, want %v", ch, r, ch.n0+i, oh, ow, col[at], want)
								}
								lhs += col[at] * y[at]
							}
						}
					}
				}
			}
		}
		col2im(g, y, dx, xl, ch)
	}
	for jj, k := range covered {
		if k != 1 {
			t.Fatalf("output column %d is in %d chunks", jj, k)
		}
	}
	for i := range x {
		rhs += x[i] * dx[i]
	}
	if math.Abs(lhs-rhs) > 1e-12*math.Max(1, math.Abs(lhs)) {
		t.Errorf("⟨im2col(x), y⟩ = %.17g, ⟨x, col2im(y)⟩ = %.17g", lhs, rhs)
	}
}

// TestChunkingMatchesGorgonia repeats the block comparison with the
// unfused composition with chunks of one row, of a few rows and of several
// images, so that every GEMM sees offsets and leading dimensions other
// than those of whole-batch chunks.
func TestChunkingMatchesGorgonia(t *testing.T) {
	for _, elems := range []int{1, 100, 400} {
		for _, s := range []int{1, 2} {
			t.Run(fmt.Sprintf("elems=%d/s%d", elems, s), func(t *testing.T) {
				withChunkElems(elems, func() {
					f := 4
					if s == 2 {
						f = 8
					}
					testBlock(t, 3, 4, 7, 6, f, s, Train, 99)
					testBlock(t, 3, 4, 7, 6, f, s, Eval, 98)
				})
			})
		}
	}
}
