package fused

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// This file builds the same networks from gorgonia's own ops (float64),
// unfused, and checks that the fused ops give the same values and, through
// gorgonia's independent symbolic differentiation, the same gradients:
//
//	conv:      G.Conv2d(x, w, 3×3, pad 1, stride s)
//	BatchNorm: μ = G.Mean(a, 0, 2, 3), σ² = G.Mean((a−μ)², 0, 2, 3),
//	           x̂ = (a−μ)·(σ²+ε)^(−1/2), z = γ·x̂ + β (broadcast ops);
//	           evaluation: constants from the running statistics
//	ReLU:      G.Rectify
//	shortcut:  identity, or G.Conv2d with a constant 1×1 selection kernel
//	           (out channel lo+c reads in channel c), stride 2, pad 0: exactly
//	           F.pad(x[:, :, ::2, ::2], (0,0,0,0,lo,hi))
//	head:      G.Mean(x, 2, 3) · fc.weightᵀ + fc.bias
//
// Gorgonia's BatchNorm op is not used (gorgonia-notes.md §7, §10.6).
// gorgonia's Rectify has derivative 1 at 0 where the fused ops (and torch)
// have 0; random data has no exact zeros.

// ref builds the unfused network on a graph.
type ref struct {
	g     *G.ExprGraph
	spec  ResNetSpec
	mode  Mode
	nodes map[string]*G.Node
	// stats returns the running mean and variance of a BN layer (Eval).
	stats  func(bn string) (mean, variance []float64)
	consts int
}

// constant returns a fixed (never differentiated) tensor node on f's
// graph. Each gets its own name: gorgonia merges unnamed input nodes of
// equal shape into one (ExprGraph.AddNode hashes names and types, not values).
func (f *ref) constant(shape []int, v []float64) *G.Node {
	f.consts++
	return G.NewTensor(f.g, tensor.Float64, len(shape), G.WithShape(shape...), G.WithName(fmt.Sprintf("const%d", f.consts)),
		G.WithValue(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))))
}

// bn returns BatchNorm(a) for the layer named bn with c channels.
func (f *ref) bn(a *G.Node, name string, c int) *G.Node {
	ch := func(n *G.Node) *G.Node { return G.Must(G.Reshape(n, tensor.Shape{1, c, 1, 1})) }
	bc := []byte{0, 2, 3}
	gamma, beta := ch(f.nodes[name+".weight"]), ch(f.nodes[name+".bias"])
	if f.mode == Eval {
		rm, rv := f.stats(name)
		inv := make([]float64, c)
		for i, v := range rv {
			inv[i] = 1 / math.Sqrt(v+BNEpsilon)
		}
		mean := f.constant([]int{1, c, 1, 1}, append([]float64(nil), rm...))
		xh := G.Must(G.BroadcastHadamardProd(G.Must(G.BroadcastSub(a, mean, nil, bc)), f.constant([]int{1, c, 1, 1}, inv), nil, bc))
		return G.Must(G.BroadcastAdd(G.Must(G.BroadcastHadamardProd(xh, gamma, nil, bc)), beta, nil, bc))
	}
	mu := ch(G.Must(G.Mean(a, 0, 2, 3)))
	d := G.Must(G.BroadcastSub(a, mu, nil, bc))
	v := ch(G.Must(G.Mean(G.Must(G.Square(d)), 0, 2, 3)))
	is := G.Must(G.Pow(G.Must(G.Add(v, G.NewConstant(BNEpsilon))), G.NewConstant(-0.5)))
	xh := G.Must(G.BroadcastHadamardProd(d, is, nil, bc))
	return G.Must(G.BroadcastAdd(G.Must(G.BroadcastHadamardProd(xh, gamma, nil, bc)), beta, nil, bc))
}

func conv3(x, w *G.Node, s int) *G.Node {
	return G.Must(G.Conv2d(x, w, tensor.Shape{3, 3}, []int{1, 1}, []int{s, s}, []int{1, 1}))
}

// block returns the unfused BasicBlock named prefix.
func (f *ref) block(x *G.Node, b blockSpec) *G.Node {
	p := func(n string) *G.Node { return f.nodes[b.prefix+"."+n] }
	h := G.Must(G.Rectify(f.bn(conv3(x, p("conv1.weight"), b.s), b.prefix+".bn1", b.cout)))
	z := f.bn(conv3(h, p("conv2.weight"), 1), b.prefix+".bn2", b.cout)
	sc := x
	if b.s != 1 || b.cin != b.cout {
		sel := make([]float64, b.cout*b.cin)
		lo := (b.cout - b.cin) / 2
		for c := 0; c < b.cin; c++ {
			sel[(lo+c)*b.cin+c] = 1
		}
		sc = G.Must(G.Conv2d(x, f.constant([]int{b.cout, b.cin, 1, 1}, sel), tensor.Shape{1, 1}, []int{0, 0}, []int{b.s, b.s}, []int{1, 1}))
	}
	return G.Must(G.Rectify(G.Must(G.Add(z, sc))))
}

// build returns the logits of the unfused network for input x.
func (f *ref) build(x *G.Node) *G.Node {
	s := f.spec
	h := G.Must(G.Rectify(f.bn(conv3(x, f.nodes["conv1.weight"], 1), "bn1", s.Width)))
	for _, b := range s.blocks() {
		h = f.block(h, b)
	}
	feat := G.Must(G.Mean(h, 2, 3))
	logits := G.Must(G.Mul(feat, G.Must(G.Transpose(f.nodes["fc.weight"]))))
	bias := G.Must(G.Reshape(f.nodes["fc.bias"], tensor.Shape{1, s.Classes}))
	return G.Must(G.BroadcastAdd(logits, bias, nil, []byte{0}))
}

// swap01 returns v, a (a,b,…) tensor, with its first two axes swapped:
// NCHW ↔ CNHW.
func swap01(v []float64, a, b int) []float64 {
	p := len(v) / (a * b)
	out := make([]float64, len(v))
	for i := 0; i < a; i++ {
		for j := 0; j < b; j++ {
			copy(out[(j*a+i)*p:][:p], v[(i*b+j)*p:][:p])
		}
	}
	return out
}

// newRef creates parameter nodes bound to r's tensors on a new graph.
func newRef(r *ResNet, mode Mode) *ref {
	f := &ref{g: G.NewGraph(), spec: r.Spec, mode: mode, nodes: map[string]*G.Node{},
		stats: func(bn string) ([]float64, []float64) {
			rm, _ := r.Lookup(bn + ".running_mean")
			rv, _ := r.Lookup(bn + ".running_var")
			return rm.T.Data().([]float64), rv.T.Data().([]float64)
		}}
	for _, p := range r.Params {
		f.nodes[p.Name] = G.NewTensor(f.g, r.Dtype, len(p.Shape), G.WithShape(p.Shape...), G.WithName(p.Name), G.WithValue(p.T))
	}
	return f
}

// runRef runs loss = Σ r ⊙ out(x) on the graph and returns out's value and
// the gradients of wrt.
func runRef(t *testing.T, g *G.ExprGraph, out *G.Node, rr []float64, wrt G.Nodes) ([]float64, [][]float64) {
	t.Helper()
	rn := G.NewConstant(tensor.New(tensor.WithShape(out.Shape()...), tensor.WithBacking(rr)))
	var outV G.Value
	G.Read(out, &outV)
	var grads [][]float64
	if len(wrt) > 0 {
		loss := G.Must(G.Sum(G.Must(G.HadamardProd(out, rn))))
		if _, err := G.Grad(loss, wrt...); err != nil {
			t.Fatal(err)
		}
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	y := toF64(t, outV)
	for _, n := range wrt {
		gv, err := n.Grad()
		if err != nil {
			t.Fatal(err)
		}
		grads = append(grads, toF64(t, gv))
	}
	return y, grads
}

// refTol is the tolerance of float64 fused-vs-unfused comparisons,
// relative to the largest entry: the two differ only in the order of
// summation (GEMM vs gorgonia's im2col, float64 sums vs Mean), ~1e-15
// per operation.
const refTol = 1e-11

// TestBlockMatchesGorgonia compares one fused BasicBlock with the unfused
// composition: in train mode the output and the gradients of the input and
// of all six parameters, in eval mode (random running statistics) the
// output; for the identity shortcut and for downsampling ones (even, odd
// and non-square planes).
func TestBlockMatchesGorgonia(t *testing.T) {
	cases := []struct {
		n, c, h, w, f, s int
	}{
		{3, 4, 6, 6, 4, 1},  // identity
		{2, 4, 8, 8, 8, 2},  // downsample, even plane
		{2, 2, 7, 5, 4, 2},  // downsample, odd non-square plane
		{4, 6, 4, 4, 12, 2}, // lo = 3 zero channels each side
	}
	for ci, c := range cases {
		for _, mode := range []Mode{Train, Eval} {
			t.Run(fmt.Sprintf("%dx%dx%dx%d_to%d_s%d/%v", c.n, c.c, c.h, c.w, c.f, c.s, mode), func(t *testing.T) {
				testBlock(t, c.n, c.c, c.h, c.w, c.f, c.s, mode, uint64(ci))
			})
		}
	}
}

func testBlock(t *testing.T, n, cin, h, w, f, s int, mode Mode, seed uint64) {
	c := struct{ n, c, h, w, f, s int }{n, cin, h, w, f, s}
	{
		{
			rng := rand.New(rand.NewPCG(seed, 3))
			x := normal(rng, c.n*c.c*c.h*c.w)
			shapes := [][]int{{c.f, c.c, 3, 3}, {c.f}, {c.f}, {c.f, c.f, 3, 3}, {c.f}, {c.f}}
			vals := make([][]float64, len(shapes))
			for i, s := range shapes {
				vals[i] = normal(rng, tensor.Shape(s).TotalSize())
				if len(s) == 1 {
					for j := range vals[i] {
						vals[i][j] = 0.5 + 0.5*math.Abs(vals[i][j])
					}
				}
			}
			ho, wo := (c.h-1)/c.s+1, (c.w-1)/c.s+1
			rr := normal(rng, c.n*c.f*ho*wo)

			// The fused block reads and writes CNHW; the reference NCHW.
			nodes := func(g *G.ExprGraph, cnhw bool) G.Nodes {
				xs, xv := []int{c.n, c.c, c.h, c.w}, slices.Clone(x)
				if cnhw {
					xs, xv = []int{c.c, c.n, c.h, c.w}, swap01(x, c.n, c.c)
				}
				ns := G.Nodes{G.NewTensor(g, tensor.Float64, 4, G.WithShape(xs...), G.WithName("x"),
					G.WithValue(tensor.New(tensor.WithShape(xs...), tensor.WithBacking(xv))))}
				for i, s := range shapes {
					ns = append(ns, G.NewTensor(g, tensor.Float64, len(s), G.WithShape(s...), G.WithName(fmt.Sprintf("p%d", i)),
						G.WithValue(tensor.New(tensor.WithShape(s...), tensor.WithBacking(append([]float64(nil), vals[i]...))))))
				}
				return ns
			}

			// Running statistics: random for Eval (the unfused graph reads
			// them as constants, so build it first in Train mode, whose
			// fused forward updates them).
			stats := map[string][2][]float64{}
			for _, bn := range []string{"b.bn1", "b.bn2"} {
				v := normal(rng, 2*c.f)
				for j := c.f; j < 2*c.f; j++ {
					v[j] = 0.5 + v[j]*v[j]
				}
				stats[bn] = [2][]float64{v[:c.f], v[c.f:]}
			}
			rg := G.NewGraph()
			rn := nodes(rg, false)
			f := &ref{g: rg, mode: mode, nodes: map[string]*G.Node{
				"b.conv1.weight": rn[1], "b.bn1.weight": rn[2], "b.bn1.bias": rn[3],
				"b.conv2.weight": rn[4], "b.bn2.weight": rn[5], "b.bn2.bias": rn[6]},
				stats: func(bn string) ([]float64, []float64) { return stats[bn][0], stats[bn][1] }}
			var wrt G.Nodes
			if mode == Train {
				wrt = rn
			}
			wantY, wantG := runRef(t, rg, f.block(rn[0], blockSpec{prefix: "b", cin: c.c, cout: c.f, s: c.s, h: c.h, w: c.w}), rr, wrt)

			g := G.NewGraph()
			fn := nodes(g, true)
			m := c.n * ho * wo
			k, err := newBlockKernel(c.n, c.c, c.h, c.w, c.f, c.s, mode,
				newBatchNorm(c.f, m, stats["b.bn1"][0], stats["b.bn1"][1]),
				newBatchNorm(c.f, m, stats["b.bn2"][0], stats["b.bn2"][1]), &workspace[float64]{})
			if err != nil {
				t.Fatal(err)
			}
			out, err := apply[float64](k, mode, fn...)
			if err != nil {
				t.Fatal(err)
			}
			if mode == Eval {
				fn = nil
			}
			gotY, gotG := runRef(t, g, out, swap01(rr, c.n, c.f), fn)
			gotY = swap01(gotY, c.f, c.n)
			if len(gotG) > 0 {
				gotG[0] = swap01(gotG[0], c.c, c.n)
			}

			if e := maxRelErr(gotY, wantY, 1e-12); !(e <= refTol) {
				t.Errorf("output: relative error %.3g > %g", e, refTol)
			}
			names := []string{"x", "conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias"}
			for i := range wantG {
				if e := maxRelErr(gotG[i], wantG[i], 1e-12); !(e <= refTol) {
					t.Errorf("d/d %s: relative error %.3g > %g", names[i], e, refTol)
				}
			}
		}
	}
}

// TestResNetMatchesGorgonia compares whole networks, fused against
// unfused: logits in train and eval mode, and in train mode the gradients
// of every parameter and of the input.
func TestResNetMatchesGorgonia(t *testing.T) {
	cases := []struct {
		spec ResNetSpec
		bs   int
	}{
		{ResNetSpec{Depth: 8, Width: 4, C: 3, H: 8, W: 8, Classes: 5}, 4},
		{ResNetSpec{Depth: 14, Width: 2, C: 1, H: 7, W: 9, Classes: 3}, 3},
	}
	for ci, c := range cases {
		for _, mode := range []Mode{Train, Eval} {
			t.Run(fmt.Sprintf("%v/%v", c.spec, mode), func(t *testing.T) {
				r := randomResNet(t, c.spec, tensor.Float64, uint64(30+ci))
				rng := rand.New(rand.NewPCG(uint64(40+ci), 1))
				s := c.spec
				x := normal(rng, c.bs*s.C*s.H*s.W)
				rr := normal(rng, c.bs*s.Classes)

				// Unfused first: the fused train graph updates the running statistics.
				f := newRef(r, mode)
				xn := G.NewTensor(f.g, tensor.Float64, 4, G.WithShape(c.bs, s.C, s.H, s.W), G.WithName("x"),
					G.WithValue(tensor.New(tensor.WithShape(c.bs, s.C, s.H, s.W), tensor.WithBacking(append([]float64(nil), x...)))))
				var wrt G.Nodes
				if mode == Train {
					for _, p := range r.Params {
						wrt = append(wrt, f.nodes[p.Name])
					}
					wrt = append(wrt, xn)
				}
				wantY, wantG := runRef(t, f.g, f.build(xn), rr, wrt)

				p := newProbe(t, r, c.bs, mode, mode == Train, true)
				p.set(x, rr)
				p.run(t)
				if e := maxRelErr(p.logits(t), wantY, 1e-12); !(e <= refTol) {
					t.Errorf("logits: relative error %.3g > %g", e, refTol)
				}
				if mode == Eval {
					return
				}
				gotG := p.grads(t)
				for i, n := range p.wrt {
					if e := maxRelErr(gotG[i], wantG[i], 1e-12); !(e <= refTol) {
						t.Errorf("d/d %s: relative error %.3g > %g", n.Name(), e, refTol)
					}
				}
			})
		}
	}
}
