package report

import (
	"hash/fnv"
	"math/rand/v2"

	"github.com/kdcal/kdcal/internal/stats"
)

// Grid holds one measurement per (unit, seed): V[u][j] is unit u (a teacher
// size, or a (setting, arm, size) cell) under the study's j-th seed; NaN
// marks a missing step. Seeds are the bootstrap's resampling unit.
type Grid struct {
	Units []string
	V     stats.Grid
}

func newGrid(units []string, seeds int) Grid {
	return Grid{Units: units, V: stats.NewGrid(len(units), seeds)}
}

// Agg returns the mean ± std over seeds of unit u.
func (g Grid) Agg(u int) stats.Agg { return stats.Aggregate(g.V[u]) }

// streamRNG returns the RNG of one named statistic: PCG seeded by the report
// seed and a hash of the name, so that every statistic has its own
// reproducible stream and adding one does not change the others.
func streamRNG(seed int, name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(uint64(seed), h.Sum64()))
}

// resampling is the report's configuration of the joint procedures.
func resampling(bootstrap, permutations int) stats.Resampling {
	return stats.Resampling{Resamples: bootstrap, Permutations: permutations, Level: Level}
}
