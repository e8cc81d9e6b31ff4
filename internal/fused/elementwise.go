package fused

import "math"

// The elementwise passes of the fused layers, each one pass over a channel
// row. ReLUs use the max builtin (NaN-propagating like torch.relu, and
// branch-free); the gradient gates select on the integer bits of the
// output (CMOV), since a float compare compiles to a branch that
// mispredicts on about half of the units of random data. Sums are
// accumulated in float64 in four interleaved accumulators, which breaks the
// add-latency chain; the order is fixed, so results are deterministic.

// affine returns γ·x + β with the product rounded to T before the sum (an
// explicit conversion forbids fusing it into an FMA), the same arithmetic
// on every call site.
func affine[T Float](g, b, x T) T { return T(g*x) + b }

// normAct normalises a channel row in place, x̂ = (a − μ)·s, and writes the
// activation h = max(γ·x̂ + β + sc, 0) (sc nil: no shortcut term).
func normAct[T Float](a, h, sc []T, mu, s, g, b T) {
	h = h[:len(a)]
	if sc == nil {
		for i, v := range a {
			x := (v - mu) * s
			a[i] = x
			h[i] = max(affine(g, b, x), 0)
		}
		return
	}
	sc = sc[:len(a)]
	for i, v := range a {
		x := (v - mu) * s
		a[i] = x
		h[i] = max(affine(g, b, x)+sc[i], 0)
	}
}

// evalAct writes h = max(α·a + β' + sc, 0) for a channel row (sc nil: no
// shortcut term); h may be a.
func evalAct[T Float](a, h, sc []T, al, be T) {
	h = h[:len(a)]
	if sc == nil {
		for i, v := range a {
			h[i] = max(affine(al, be, v), 0)
		}
		return
	}
	sc = sc[:len(a)]
	for i, v := range a {
		h[i] = max(affine(al, be, v)+sc[i], 0)
	}
}

// gateSums sets d[i] = g[i] where the ReLU output y[i] is > 0 and 0
// elsewhere (torch's threshold_backward: the derivative is 0 at 0 and for
// NaN), and returns Σd and Σd·x̂ (the BatchNorm sums of the backward pass).
// d may be g.
func gateSums[T Float](d, g, y, xh []T) (sd, sdx float64) {
	switch dd := any(d).(type) {
	case []float32:
		return gateSums32(dd, any(g).([]float32), any(y).([]float32), any(xh).([]float32))
	case []float64:
		return gateSums64(dd, any(g).([]float64), any(y).([]float64), any(xh).([]float64))
	}
	panic("unreachable")
}

func gateSums32(d, g, y, xh []float32) (sd, sdx float64) {
	n := len(d)
	g, y, xh = g[:n], y[:n], xh[:n]
	var s [4]float64
	var t [4]float64
	i := 0
	for ; i+4 <= n; i += 4 {
		for k := range 4 {
			v := gate32(g[i+k], y[i+k])
			d[i+k] = v
			s[k] += float64(v)
			t[k] += float64(v) * float64(xh[i+k])
		}
	}
	for ; i < n; i++ {
		v := gate32(g[i], y[i])
		d[i] = v
		s[0] += float64(v)
		t[0] += float64(v) * float64(xh[i])
	}
	return (s[0] + s[1]) + (s[2] + s[3]), (t[0] + t[1]) + (t[2] + t[3])
}

// gate32 returns g where y > 0, else 0. y is a ReLU output (≥ 0 or NaN),
// so y > 0 ⟺ 0 < bits(y) ≤ bits(+∞), i.e. bits(y)−1 < bits(+∞) unsigned.
func gate32(g, y float32) float32 {
	var m uint32
	if math.Float32bits(y)-1 < 0x7f800000 {
		m = 0xffffffff
	}
	return math.Float32frombits(math.Float32bits(g) & m)
}

func gateSums64(d, g, y, xh []float64) (sd, sdx float64) {
	n := len(d)
	g, y, xh = g[:n], y[:n], xh[:n]
	var s, t [4]float64
	i := 0
	for ; i+4 <= n; i += 4 {
		for k := range 4 {
			v := g[i+k]
			if !(y[i+k] > 0) {
				v = 0
			}
			d[i+k] = v
			s[k] += v
			t[k] += v * xh[i+k]
		}
	}
	for ; i < n; i++ {
		v := g[i]
		if !(y[i] > 0) {
			v = 0
		}
		d[i] = v
		s[0] += v
		t[0] += v * xh[i]
	}
	return (s[0] + s[1]) + (s[2] + s[3]), (t[0] + t[1]) + (t[2] + t[3])
}

// sums returns Σv and Σv² in float64.
func sums[T Float](v []T) (s1, s2 float64) {
	var a, b [4]float64
	i := 0
	for ; i+4 <= len(v); i += 4 {
		for k := range 4 {
			f := float64(v[i+k])
			a[k] += f
			b[k] += f * f
		}
	}
	for ; i < len(v); i++ {
		f := float64(v[i])
		a[0] += f
		b[0] += f * f
	}
	return (a[0] + a[1]) + (a[2] + a[3]), (b[0] + b[1]) + (b[2] + b[3])
}

// bnApply sets d[i] = c1·(d[i] − c2 − x̂[i]·c3): the BatchNorm input
// gradient of a channel row from the gradient of its output.
func bnApply[T Float](d, xh []T, c1, c2, c3 T) {
	xh = xh[:len(d)]
	for i, v := range d {
		d[i] = c1 * (v - c2 - xh[i]*c3)
	}
}
