package fused

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	"gorgonia.org/tensor"
)

// TestGradientsMatchFiniteDifferences checks the gradient of
// L = Σ r ⊙ logits (train mode, batch statistics) with respect to every
// parameter and the input against central finite differences of the same
// float64 network (gonum diff/fd, step 1e-5).
//
// Tolerance 1e-6 of the largest gradient entry: the central difference's
// truncation error is O(h²) ≈ 1e-10 and its rounding error ≈ ε·|L|/h ≈
// 1e-10 here, so a correct gradient is within 1e-8; a wrong term (a missing
// BatchNorm mean term, a shifted shortcut channel, a transposed weight) is
// off by O(1). The networks are tiny so the ~2,600 forward passes per case
// take well under a second; the odd non-square input covers the ceil-size
// rounding of the stride-2 stages, resnet14 the identity shortcuts after a
// downsampling block.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	const tol = 1e-6
	cases := []struct {
		spec ResNetSpec
		bs   int
	}{
		{ResNetSpec{Depth: 8, Width: 2, C: 2, H: 6, W: 6, Classes: 3}, 3},
		{ResNetSpec{Depth: 14, Width: 2, C: 1, H: 5, W: 7, Classes: 3}, 2},
	}
	for ci, c := range cases {
		t.Run(fmt.Sprintf("%v_%dx%dx%d_bs%d", c.spec, c.spec.C, c.spec.H, c.spec.W, c.bs), func(t *testing.T) {
			r := randomResNet(t, c.spec, tensor.Float64, uint64(10+ci))
			rng := rand.New(rand.NewPCG(uint64(20+ci), 1))
			x := normal(rng, c.bs*c.spec.C*c.spec.H*c.spec.W)
			rr := normal(rng, c.bs*c.spec.Classes)

			p := newProbe(t, r, c.bs, Train, true, true)
			p.set(x, rr)
			p.run(t)
			got := p.grads(t)

			f := newProbe(t, r, c.bs, Train, false, false)
			f.set(x, rr)
			settings := &fd.Settings{Formula: fd.Central, Step: 1e-5}
			for i, prm := range r.Params {
				data := prm.T.Data().([]float64)
				orig := append([]float64(nil), data...)
				want := make([]float64, len(data))
				fd.Gradient(want, func(v []float64) float64 {
					copy(data, v)
					return f.run(t)
				}, orig, settings)
				copy(data, orig)
				if e := maxRelErr(got[i], want, 1e-8); !(e <= tol) {
					t.Errorf("d/d %s: relative error %.3g > %g\n got %.6g\nwant %.6g", prm.Name, e, tol, got[i], want)
				}
			}
			want := make([]float64, len(x))
			fd.Gradient(want, func(v []float64) float64 {
				setFrom(f.xt, v)
				return f.run(t)
			}, x, settings)
			if e := maxRelErr(got[len(got)-1], want, 1e-8); !(e <= tol) {
				t.Errorf("d/dx: relative error %.3g > %g", e, tol)
			}
		})
	}
}
