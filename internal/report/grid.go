package report

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
)

// Grid holds one measurement per (unit, seed): V[u][j] is unit u (a teacher
// size, or a (setting, arm, size) cell) under the study's j-th seed; NaN
// marks a missing step. Seeds are the bootstrap's resampling unit.
type Grid struct {
	Units []string
	V     [][]float64
}

func newGrid(units []string, seeds int) Grid {
	g := Grid{Units: units, V: make([][]float64, len(units))}
	for u := range g.V {
		g.V[u] = make([]float64, seeds)
		for j := range g.V[u] {
			g.V[u][j] = math.NaN()
		}
	}
	return g
}

// Means returns, per unit, the mean over the seed indices idx (with
// repetition, as a bootstrap resample draws them) of the non-missing values;
// NaN when none of the drawn seeds has a value. idx == nil means all seeds.
func (g Grid) Means(idx []int) []float64 {
	out := make([]float64, len(g.V))
	for u, row := range g.V {
		var s float64
		var n int
		add := func(j int) {
			if v := row[j]; !math.IsNaN(v) {
				s += v
				n++
			}
		}
		if idx == nil {
			for j := range row {
				add(j)
			}
		} else {
			for _, j := range idx {
				add(j)
			}
		}
		out[u] = math.NaN()
		if n > 0 {
			out[u] = s / float64(n)
		}
	}
	return out
}

// Agg returns the mean ± std over seeds of each unit.
func (g Grid) Agg(u int) Agg { return aggregate(g.V[u]) }

// pairs returns the per-unit means of x and y restricted to units where both
// are defined, and the names of those units.
func pairs(x, y Grid, idx []int) (xs, ys []float64, units []string) {
	xm, ym := x.Means(idx), y.Means(idx)
	for u := range xm {
		if !math.IsNaN(xm[u]) && !math.IsNaN(ym[u]) {
			xs, ys = append(xs, xm[u]), append(ys, ym[u])
			units = append(units, x.Units[u])
		}
	}
	return xs, ys, units
}

// streamRNG returns the RNG of one named statistic: PCG seeded by the report
// seed and a hash of the name, so that every statistic has its own
// reproducible stream and adding one does not change the others.
func streamRNG(seed int, name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(uint64(seed), h.Sum64()))
}
