package fused

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	// With -tags openblas, gorgonia (and so the fused ops, which call
	// G.WhichBLAS()) uses OpenBLAS, as in the kdcal binary.
	_ "github.com/kdcal/kdcal/internal/blasopt"
)

// randomResNet returns a ResNet with He-initialised weights and a
// non-trivial BatchNorm state (γ ∈ [0.5, 1.5), β ∈ [−0.5, 0.5), running
// mean ∈ [−0.5, 0.5), running variance ∈ [0.5, 2)), so that every
// parameter and statistic enters the checks with a value of its own.
func randomResNet(tb testing.TB, s ResNetSpec, dt tensor.Dtype, seed uint64) *ResNet {
	tb.Helper()
	r, err := NewResNet(s, dt)
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	r.Init(rng, InitHe)
	for _, t := range r.State {
		var lo, hi float64
		switch t.Kind {
		case BNWeight:
			lo, hi = 0.5, 1.5
		case BNBias, BNRunningMean:
			lo, hi = -0.5, 0.5
		case BNRunningVar:
			lo, hi = 0.5, 2
		case FCBias:
			lo, hi = -0.1, 0.1
		default:
			continue
		}
		setEach(t.T, func() float64 { return lo + (hi-lo)*rng.Float64() })
	}
	return r
}

// setEach sets every element of t to f() in row-major order.
func setEach(t *tensor.Dense, f func() float64) {
	switch d := t.Data().(type) {
	case []float32:
		for i := range d {
			d[i] = float32(f())
		}
	case []float64:
		for i := range d {
			d[i] = f()
		}
	}
}

// toF64 returns the elements of a float32 or float64 value as float64.
func toF64(tb testing.TB, v G.Value) []float64 {
	tb.Helper()
	switch d := v.Data().(type) {
	case []float32:
		out := make([]float64, len(d))
		for i, x := range d {
			out[i] = float64(x)
		}
		return out
	case []float64:
		return append([]float64(nil), d...)
	case float32:
		return []float64{float64(d)}
	case float64:
		return []float64{d}
	}
	tb.Fatalf("value is %T", v.Data())
	return nil
}

// normal returns n draws from N(0,1).
func normal(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return v
}

// probe is a ResNet graph with the loss L = Σ r ⊙ logits for a fixed
// random r (so dL/dlogits = r), its inputs bound once.
type probe struct {
	g      *G.ExprGraph
	gr     *Graph
	xt, rt *tensor.Dense
	loss   *G.Node
	lossV  G.Value
	neg    *G.Node // −logits, terminal (never overwritten in place)
	vm     G.VM
	wrt    G.Nodes // params, then x when withDX
}

// newProbe builds the probe for r; with grad, it differentiates L with
// respect to every parameter (and x when withDX).
func newProbe(tb testing.TB, r *ResNet, bs int, mode Mode, grad, withDX bool) *probe {
	tb.Helper()
	p := &probe{g: G.NewGraph()}
	var err error
	if p.gr, err = r.Build(p.g, bs, mode); err != nil {
		tb.Fatal(err)
	}
	s := r.Spec
	p.xt = tensor.New(tensor.Of(r.Dtype), tensor.WithShape(bs, s.C, s.H, s.W))
	p.rt = tensor.New(tensor.Of(r.Dtype), tensor.WithShape(bs, s.Classes))
	rn := G.NewMatrix(p.g, r.Dtype, G.WithShape(bs, s.Classes), G.WithName("r"))
	if err := G.Let(p.gr.X, p.xt); err != nil {
		tb.Fatal(err)
	}
	if err := G.Let(rn, p.rt); err != nil {
		tb.Fatal(err)
	}
	p.loss = G.Must(G.Sum(G.Must(G.HadamardProd(p.gr.Logits, rn))))
	G.Read(p.loss, &p.lossV)
	p.neg = G.Must(G.Neg(p.gr.Logits))
	if grad {
		p.wrt = append(G.Nodes(nil), p.gr.Params...)
		if withDX {
			p.wrt = append(p.wrt, p.gr.X)
		}
		if _, err := G.Grad(p.loss, p.wrt...); err != nil {
			tb.Fatal(err)
		}
	}
	p.vm = G.NewTapeMachine(p.g)
	tb.Cleanup(func() { p.vm.Close() })
	return p
}

// set fills x and r.
func (p *probe) set(x, r []float64) {
	setFrom(p.xt, x)
	setFrom(p.rt, r)
}

func setFrom(t *tensor.Dense, v []float64) {
	i := 0
	setEach(t, func() float64 { i++; return v[i-1] })
}

// run executes the graph once and returns the loss.
func (p *probe) run(tb testing.TB) float64 {
	tb.Helper()
	if err := p.vm.RunAll(); err != nil {
		tb.Fatal(err)
	}
	defer p.vm.Reset()
	return toF64(tb, p.lossV)[0]
}

// logits returns the last run's logits.
func (p *probe) logits(tb testing.TB) []float64 {
	v := toF64(tb, p.neg.Value())
	for i := range v {
		v[i] = -v[i]
	}
	return v
}

// grads returns the last run's gradient of every wrt node.
func (p *probe) grads(tb testing.TB) [][]float64 {
	tb.Helper()
	var out [][]float64
	for _, n := range p.wrt {
		g, err := n.Grad()
		if err != nil {
			tb.Fatalf("gradient of %s: %v", n.Name(), err)
		}
		out = append(out, toF64(tb, g))
	}
	return out
}

// maxRelErr returns max_i |got_i − want_i| / max(max_i |want_i|, floor):
// the error relative to the largest expected value (the ∞-norm), so that
// entries near zero do not dominate.
func maxRelErr(got, want []float64, floor float64) float64 {
	scale := floor
	for _, w := range want {
		scale = max(scale, math.Abs(w))
	}
	var e float64
	for i := range want {
		e = max(e, math.Abs(got[i]-want[i]))
	}
	return e / scale
}
