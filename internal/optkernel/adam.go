package optkernel

import "math"

// AdamConsts are the constants of one AdamW update (Loshchilov & Hutter
// 2019, as torch.optim.AdamW) at step t:
//
//	m ← B1·m + A1·g;  v ← B2·v + (A2·g)·g
//	w ← w·Decay − StepSize·(m / (√v / C2 + Eps))
//
// with A1 = 1−β₁, A2 = 1−β₂ (pass them rounded from the exact values),
// Decay = 1 − η·λ, StepSize = η/(1−β₁ᵗ) and C2 = √(1−β₂ᵗ). The field order
// is read by the assembly kernel.
type AdamConsts struct {
	B1, A1, B2, A2, Eps, Decay, StepSize, C2 float32
}

// Adam applies one AdamW update to w with gradient g and moments m, v (all of
// length len(w)), sets g to zero and returns Σ w² of the updated weights.
// The returned sum is accumulated in a different order than AdamScalar's on
// amd64 (four partial sums); w, m and v are bit-identical.
func Adam(w, g, m, v []float32, c *AdamConsts) float32 {
	n := len(w)
	g, m, v = g[:n], m[:n], v[:n]
	k := n &^ 3
	var ss float32
	if k > 0 && haveSIMD {
		var part [4]float32
		adamSIMD(&w[0], &g[0], &m[0], &v[0], k, c, &part)
		ss = (part[0] + part[1]) + (part[2] + part[3])
	} else {
		k = 0
	}
	return ss + AdamScalar(w[k:], g[k:], m[k:], v[k:], c)
}

// AdamScalar is the portable loop of Adam: the reference the assembly kernel
// is tested against, and the tail of every call.
func AdamScalar(w, g, m, v []float32, c *AdamConsts) (ss float32) {
	g, m, v = g[:len(w)], m[:len(w)], v[:len(w)]
	b1, a1, b2, a2, eps := c.B1, c.A1, c.B2, c.A2, c.Eps
	decay, stepSize, c2 := c.Decay, c.StepSize, c.C2
	for j, gj := range g {
		mj := b1*m[j] + a1*gj
		vj := b2*v[j] + a2*gj*gj
		// float32(√float64) is the correctly rounded float32 square root
		// (double rounding is exact for √ from 53 to 24 bits), as SQRTPS.
		wj := w[j]*decay - stepSize*(mj/(float32(math.Sqrt(float64(vj)))/c2+eps))
		m[j], v[j], w[j] = mj, vj, wj
		ss += wj * wj
		g[j] = 0
	}
	return ss
}
