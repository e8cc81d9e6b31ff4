package kernel

import (
	"math"

	"golang.org/x/sys/cpu"
)

var hasAVX2 = cpu.X86.HasAVX2

// expConsts holds Exp's constants, each repeated in 4 lanes, in the order
// expAVX2 reads them.
var expConsts = func() (c [11][4]uint64) {
	for j, v := range []uint64{
		math.Float64bits(-708), math.Float64bits(709), math.Float64bits(invLn2N), math.Float64bits(shifter),
		math.Float64bits(ln2HiN), math.Float64bits(ln2LoN), expN - 1,
		math.Float64bits(1.0 / 120), math.Float64bits(1.0 / 24), math.Float64bits(1.0 / 6), math.Float64bits(1.0 / 2),
	} {
		c[j] = [4]uint64{v, v, v, v}
	}
	return c
}()

// expVec writes Exp((src[k] − m)·beta) into dst for k < n, n a multiple
// of 4, stopping before the first group of 4 holding an argument outside
// Exp's fast path; it returns n (0 without AVX2).
func expVec(dst, src []float64, m, beta float64) int {
	if !hasAVX2 {
		return 0
	}
	n := min(len(dst), len(src)) &^ 3
	if n == 0 {
		return 0
	}
	return expAVX2(&dst[0], &src[0], n, m, beta, &expConsts, &expTab)
}

//go:noescape
func expAVX2(dst, src *float64, n int, m, beta float64, consts *[11][4]uint64, tab *[expN]uint64) int
