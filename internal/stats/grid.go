package stats

import "math"

// Grid holds one measurement per (unit, replicate): g[u][j] is unit u under
// replicate j, NaN where it is missing. Every row has the same length, the
// number of replicates.
type Grid [][]float64

// NewGrid returns a units × replicates Grid of NaN.
func NewGrid(units, replicates int) Grid {
	g := make(Grid, units)
	for u := range g {
		g[u] = make([]float64, replicates)
		for j := range g[u] {
			g[u][j] = math.NaN()
		}
	}
	return g
}

// Replicates returns the number of replicates (columns), 0 for a grid without units.
func (g Grid) Replicates() int {
	if len(g) == 0 {
		return 0
	}
	return len(g[0])
}

// ReplicatesWithData counts the replicates with at least one non-NaN value.
func (g Grid) ReplicatesWithData() int {
	var n int
	for j := range g.Replicates() {
		for u := range g {
			if !math.IsNaN(g[u][j]) {
				n++
				break
			}
		}
	}
	return n
}

// Means writes into dst, per unit u, the mean of g[u][j] over the replicate
// indices j in idx (with repetition, as a bootstrap resample draws them),
// skipping NaN, and returns dst (allocated when nil). A unit none of whose
// drawn replicates has a value gets NaN. idx == nil means every replicate
// once.
//
// Means panics if dst is not nil and len(dst) != len(g).
func (g Grid) Means(dst []float64, idx []int) []float64 {
	if dst == nil {
		dst = make([]float64, len(g))
	}
	if len(dst) != len(g) {
		panic(badDstLength)
	}
	for u, row := range g {
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
		dst[u] = math.NaN()
		if n > 0 {
			dst[u] = s / float64(n)
		}
	}
	return dst
}

// PairedMeans returns the per-unit means of x and y over the replicate
// indices idx (see Grid.Means) restricted to the units where both are
// defined, and the indices of those units.
//
// PairedMeans panics if x and y have different numbers of units.
func PairedMeans(x, y Grid, idx []int) (xs, ys []float64, units []int) {
	if len(x) != len(y) {
		panic("stats: grids with different numbers of units")
	}
	xm, ym := x.Means(nil, idx), y.Means(nil, idx)
	for u := range xm {
		if !math.IsNaN(xm[u]) && !math.IsNaN(ym[u]) {
			xs, ys = append(xs, xm[u]), append(ys, ym[u])
			units = append(units, u)
		}
	}
	return xs, ys, units
}
