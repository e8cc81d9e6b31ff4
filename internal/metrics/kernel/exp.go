package kernel

import (
	"math"
	"math/big"
)

// Table-driven exp, after Tang 1989 ("Table-driven implementation of the
// exponential function in IEEE floating-point arithmetic") and the layout
// of ARM optimized-routines' exp: x = k·ln2/N + r with N = 128, |r| ≤ ln2/256,
// exp(x) = 2^(k/N) · exp(r), 2^(j/N) from a table, exp(r) − 1 from a
// degree-5 Taylor polynomial (truncation error < 6e-19).
const (
	expBits = 7
	expN    = 1 << expBits
	invLn2N = expN / math.Ln2
	ln2HiN  = 6.93147180369123816490e-01 / expN // Cody–Waite split of ln 2 (as in package math), ÷ N
	ln2LoN  = 1.90821492927058770002e-10 / expN
	shifter = 0x1.8p52 // adding it rounds to an integer held in the low mantissa bits
)

// expTab[j] holds the bits of 2^(j/N), correctly rounded, minus j << (52 − 7),
// so that adding k << (52 − 7) yields 2^(k/N) for any integer k.
var expTab = func() (tab [expN]uint64) {
	const prec = 256
	root := new(big.Float).SetPrec(prec).SetInt64(2)
	for range expBits {
		root.Sqrt(root) // 2^(1/N)
	}
	p := new(big.Float).SetPrec(prec).SetInt64(1)
	for j := range expN {
		f, _ := p.Float64()
		tab[j] = math.Float64bits(f) - uint64(j)<<(52-expBits)
		p.Mul(p, root)
	}
	return tab
}()

// Exp returns e^x within 2 ulp of math.Exp (which is within 1 ulp of the
// true value), about twice as fast as math.Exp on amd64. It is used in the
// hot loops of softmax, NLL and the calibrators' objectives. Arguments
// whose result would be subnormal, overflow, or are not finite are passed
// to math.Exp.
//
// It is hand-written because the standard library's exp was the largest
// cost of every metric and fit (numpy's vectorised exp is faster still).
func Exp(x float64) float64 {
	if !(x > -708 && x < 709) {
		return math.Exp(x)
	}
	// The float64 conversions forbid fusing a product and a sum into one
	// FMA (GOAMD64=v3 would), so that ExpSub's vector code, which rounds
	// every operation, gives the same bits.
	z := float64(x*invLn2N) + shifter
	ki := math.Float64bits(z) // low bits: k = round(x·N/ln 2), two's complement
	kd := z - shifter         // k as a float64, exactly
	r := float64(x-float64(kd*ln2HiN)) - float64(kd*ln2LoN)
	scale := math.Float64frombits(expTab[ki&(expN-1)] + ki<<(52-expBits))
	q := float64(1.0/24) + float64(r*(1.0/120))
	q = float64(1.0/6) + float64(r*q)
	q = float64(1.0/2) + float64(r*q)
	p := r + float64(float64(r*r)*q)
	return scale + float64(scale*p)
}

// ExpSub writes exp(src[k] − m) into dst[k] for every k, with the same
// result as Exp(src[k] − m), bit for bit. On amd64 with AVX2 it computes
// four at a time (expAVX2, the same operations in the same order, the
// table read with a gather); arguments outside Exp's fast path go through
// Exp one by one. dst and src must have the same length; they may be the
// same slice.
func ExpSub(dst, src []float64, m float64) { ExpScaled(dst, src, m, 1) }

// ExpScaled writes exp((src[k] − m)·beta) into dst[k], bit for bit
// Exp((src[k] − m)·beta), as ExpSub does (which is ExpScaled with beta = 1:
// the product by 1 is exact).
func ExpScaled(dst, src []float64, m, beta float64) {
	if len(dst) != len(src) {
		panic("kernel: ExpSub length mismatch")
	}
	for i := 0; i < len(src); {
		if i+4 <= len(src) {
			if n := expVec(dst[i:], src[i:], m, beta); n > 0 {
				i += n
				continue
			}
		}
		dst[i] = Exp((src[i] - m) * beta)
		i++
	}
}
