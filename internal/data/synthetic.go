package data

import (
	"math"
	"math/rand/v2"

	"github.com/kdcal/kdcal/internal/config"
)

// Synthetic generates a seeded Gaussian-mixture classification set: class k
// has a mean μ_k ~ N(0, I)·1.5 in `features` dimensions and examples are
// x = μ_y + N(0, I), labels cycling through the classes. The classes overlap,
// so a model can be over-confident on it. Train and test come from one
// stream, so the same Seed always yields the same sets.
func Synthetic(s config.Synthetic) (train, test Raw) {
	rng := rand.New(rand.NewPCG(uint64(s.Seed), 0x5eed))
	means := make([]float64, s.Classes*s.Features)
	for i := range means {
		means[i] = rng.NormFloat64() * 1.5
	}
	h, w := 1, s.Features
	if side := int(math.Sqrt(float64(s.Features))); side*side == s.Features {
		h, w = side, side // usable as a 1-channel image by a CNN
	}
	gen := func(n int) Raw {
		r := Raw{X: make([]float32, n*s.Features), Y: make([]int, n), N: n, C: 1, H: h, W: w, Classes: s.Classes}
		for i := 0; i < n; i++ {
			y := i % s.Classes
			r.Y[i] = y
			for j := 0; j < s.Features; j++ {
				r.X[i*s.Features+j] = float32(means[y*s.Features+j] + rng.NormFloat64())
			}
		}
		return r
	}
	train, test = gen(s.Train), gen(s.Test)
	return train, test
}
