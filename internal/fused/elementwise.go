package fused

// The elementwise passes of the fused layers, one pass over a channel row
// each. On amd64 the float32 passes run four floats per instruction
// (elementwise_amd64.s, SSE2, which every amd64 CPU has); the portable
// loops below define them and are what the assembly is tested against: the
// same IEEE operations in the same order, with no fused multiply-adds
// (explicit conversions forbid fusing), so both give bit-identical results.
// Sums are accumulated in float64 in four interleaved accumulators (lane
// i mod 4), combined as (s0+s1)+(s2+s3); float32 products converted to
// float64 are exact. The order is fixed, so results are deterministic.
//
// ReLU is relu(z) = 0 if 0 > z, else z (SSE's MAXPS(0, z)): NaN passes
// through, as in torch.relu, and −0 stays −0. The gradient gate passes the
// gradient where the ReLU output is > 0 (torch's threshold_backward: the
// derivative is 0 at 0 and for NaN).

// useSIMD selects the assembly kernels when there are any; the tests turn
// it off to compare them with the portable loops.
var useSIMD = haveSIMD

// affine returns γ·x + β with the product rounded to T before the sum.
func affine[T Float](g, b, x T) T { return T(g*x) + b }

func relu[T Float](z T) T {
	if 0 > z {
		return 0
	}
	return z
}

// actConsts are the constants of normAct, in the assembly's order.
type actConsts[T Float] struct{ mu, s, g, b T }

// normAct normalises a channel row in place, x̂ = (a − μ)·s, and writes the
// activation h = relu(γ·x̂ + β + sc) (sc nil: no shortcut term). h may be a
// (h then receives the activation).
func normAct[T Float](a, h, sc []T, mu, s, g, b T) {
	h = h[:len(a)]
	if sc != nil {
		sc = sc[:len(a)]
	}
	c := actConsts[T]{mu, s, g, b}
	k := 0
	if a32, ok := any(a).([]float32); ok && useSIMD && len(a) >= 4 {
		k = len(a) &^ 3
		c32 := any(c).(actConsts[float32])
		h32 := any(h).([]float32)
		if sc == nil {
			normActSIMD(&a32[0], &h32[0], k, &c32)
		} else {
			normActSCSIMD(&a32[0], &h32[0], &any(sc).([]float32)[0], k, &c32)
		}
	}
	normActScalar(a[k:], h[k:], tail(sc, k), c)
}

// tail returns s[k:], or nil for a nil s.
func tail[T Float](s []T, k int) []T {
	if s == nil {
		return nil
	}
	return s[k:]
}

func normActScalar[T Float](a, h, sc []T, c actConsts[T]) {
	if sc == nil {
		for i, v := range a {
			x := T(v-c.mu) * c.s
			a[i] = x
			h[i] = relu(affine(c.g, c.b, x))
		}
		return
	}
	for i, v := range a {
		x := T(v-c.mu) * c.s
		a[i] = x
		h[i] = relu(affine(c.g, c.b, x) + sc[i])
	}
}

// evalAct writes h = relu(α·a + β' + sc) for a channel row (sc nil: no
// shortcut term); h may be a, and a is left unchanged otherwise. It is
// normAct with μ = 0 and s = 1, which leave every value unchanged.
func evalAct[T Float](a, h, sc []T, al, be T) { normAct(a, h, sc, 0, 1, al, be) }

// gateSums sets d[i] = g[i] where the ReLU output y[i] is > 0 and 0
// elsewhere, and returns Σd and Σd·x̂ (the BatchNorm sums of the backward
// pass). d may be g.
func gateSums[T Float](d, g, y, xh []T) (sd, sdx float64) {
	n := len(d)
	g, y, xh = g[:n], y[:n], xh[:n]
	var part [8]float64 // Σd by lane, then Σd·x̂ by lane
	k := 0
	if d32, ok := any(d).([]float32); ok && useSIMD && n >= 4 {
		k = n &^ 3
		gateSumsSIMD(&d32[0], &any(g).([]float32)[0], &any(y).([]float32)[0], &any(xh).([]float32)[0], k, &part)
	}
	for i := k; i < n; i++ {
		v := g[i]
		if !(y[i] > 0) {
			v = 0
		}
		d[i] = v
		l := i & 3
		part[l] += float64(v)
		part[4+l] += float64(v) * float64(xh[i])
	}
	return (part[0] + part[1]) + (part[2] + part[3]), (part[4] + part[5]) + (part[6] + part[7])
}

// sums returns Σv and Σv² in float64.
func sums[T Float](v []T) (s1, s2 float64) {
	var part [8]float64 // Σv by lane, then Σv² by lane
	k := 0
	if v32, ok := any(v).([]float32); ok && useSIMD && len(v) >= 4 {
		k = len(v) &^ 3
		sumsSIMD(&v32[0], k, &part)
	}
	for i := k; i < len(v); i++ {
		f := float64(v[i])
		l := i & 3
		part[l] += f
		part[4+l] += f * f
	}
	return (part[0] + part[1]) + (part[2] + part[3]), (part[4] + part[5]) + (part[6] + part[7])
}

// bnConsts are the constants of bnApply, in the assembly's order.
type bnConsts[T Float] struct{ c1, c2, c3, _ T }

// bnApply sets d[i] = c1·((d[i] − c2) − x̂[i]·c3): the BatchNorm input
// gradient of a channel row from the gradient of its output.
func bnApply[T Float](d, xh []T, c1, c2, c3 T) {
	xh = xh[:len(d)]
	c := bnConsts[T]{c1: c1, c2: c2, c3: c3}
	k := 0
	if d32, ok := any(d).([]float32); ok && useSIMD && len(d) >= 4 {
		k = len(d) &^ 3
		bnApplySIMD(&d32[0], &any(xh).([]float32)[0], k, any(&c).(*bnConsts[float32]))
	}
	for i := k; i < len(d); i++ {
		d[i] = T(T(d[i]-c.c2)-T(xh[i]*c.c3)) * c.c1
	}
}
