package fused

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The test harness of every fused op (issue 15 item 6). Each opCase is run
// through the same three checks, on L = Σ r ⊙ op(operands) for random
// operands and a random r:
//
//  1. forward: the op's output against ref, a float64 reference written as
//     plain loops from the op's definition (conv, BatchNorm with batch
//     statistics, ReLU, pooling, shortcut, fc), within tol.fwd of the
//     largest entry;
//  2. backward: the op's gradient of every operand (through gorgonia's
//     TapeMachine, after a second run, so buffer reuse is exercised)
//     against central finite differences of the float64 reference
//     (gonum diff/fd, step 1e-6, truncation error O(h²) ≈ 1e-12 and
//     rounding ≈ ε·|L|/h ≈ 1e-10: the error is the op's own), on up to
//     fdSamples entries of each operand, within tol.grad;
//  3. gorgonia: when gorgonia has the same computation as ops (conv,
//     Rectify, MaxPool2D, Mul, the BatchNorm formula from Mean and
//     broadcasts), values and gradients against gorgonia's own
//     differentiation, within tol.gorgonia (0 = bit-identical).
//
// Tolerances are relative to the largest expected entry (maxRelErr). For
// float32 ops, 1e-5 forward and 1e-4 backward leave ~10× headroom over the
// measured errors (float32 rounding of sums of ≤ 300 products); for float64
// ops 1e-11 and 1e-6.
type opCase struct {
	name     string
	dtype    tensor.Dtype
	shapes   [][]int
	positive []bool                                            // operands drawn from [0.5, 1.5] (BatchNorm γ) instead of N(0,1)
	build    func(ns G.Nodes) (*G.Node, error)                 // the fused op
	ref      func(in [][]float64) []float64                    // float64 reference forward
	gorgonia func(g *G.ExprGraph, ns G.Nodes) (*G.Node, error) // gorgonia's own ops; nil when none
	tol      struct{ fwd, grad, gorgonia float64 }
}

const fdSamples = 24

func tol32(c opCase, gorgonia float64) opCase {
	c.dtype = tensor.Float32
	c.tol.fwd, c.tol.grad, c.tol.gorgonia = 1e-5, 1e-4, gorgonia
	return c
}

func tol64(c opCase) opCase {
	c.dtype = tensor.Float64
	c.tol.fwd, c.tol.grad, c.tol.gorgonia = 1e-11, 1e-6, refTol
	return c
}

// harnessCases lists every fused op: Stage and Dense (float32 only; their
// gorgonia graphs agree bit for bit except Stage's bias gradient, summed in
// float64), and the ResNet's Stem, Block and Head in both element types.
func harnessCases() []opCase {
	var cs []opCase
	for _, s := range [][5]int{{2, 3, 6, 6, 4}, {2, 2, 5, 7, 3}, {40, 3, 6, 6, 4}} { // even, odd non-square, several chunks
		n, c, h, w, f := s[0], s[1], s[2], s[3], s[4]
		cs = append(cs, tol32(opCase{
			name:     fmt.Sprintf("Stage/%dx%dx%dx%d_to%d", n, c, h, w, f),
			shapes:   [][]int{{n, c, h, w}, {f, c, 3, 3}, {1, f, 1, 1}},
			build:    func(ns G.Nodes) (*G.Node, error) { return Stage(ns[0], ns[1], ns[2]) },
			ref:      func(in [][]float64) []float64 { return refStageLoops(in, n, c, h, w, f) },
			gorgonia: func(_ *G.ExprGraph, ns G.Nodes) (*G.Node, error) { return StageOps(ns[0], ns[1], ns[2]) },
		}, 1e-6))
	}
	for _, relu := range []bool{false, true} {
		n, in, out := 5, 7, 4
		cs = append(cs, tol32(opCase{
			name:     fmt.Sprintf("Dense/relu=%v", relu),
			shapes:   [][]int{{n, in}, {in, out}, {1, out}},
			build:    func(ns G.Nodes) (*G.Node, error) { return Dense(ns[0], ns[1], ns[2], relu) },
			ref:      func(v [][]float64) []float64 { return refDenseLoops(v, n, in, out, relu) },
			gorgonia: func(_ *G.ExprGraph, ns G.Nodes) (*G.Node, error) { return DenseOps(ns[0], ns[1], ns[2], relu) },
		}, 0))
	}
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		for _, s := range [][6]int{{3, 4, 6, 6, 4, 1}, {2, 2, 7, 5, 4, 2}} {
			cs = append(cs, withDtype(blockCase(s[0], s[1], s[2], s[3], s[4], s[5]), dt))
		}
		cs = append(cs, withDtype(stemCase(3, 2, 5, 5, 4), dt), withDtype(headCase(3, 4, 3, 2, 5), dt))
	}
	return cs
}

// withDtype sets the element type of a ResNet op case. The gorgonia
// composition (ref_test.go) is float64 only; the float32 instantiation runs
// the same generic code and is checked against the reference and the
// finite differences.
func withDtype(c opCase, dt tensor.Dtype) opCase {
	if dt == tensor.Float32 {
		c = tol32(c, 0)
		c.gorgonia = nil
	} else {
		c = tol64(c)
	}
	c.name += "/" + dt.String()
	return c
}

// applyKernel applies a ResNet kernel in the case's element type.
func applyKernel(dt tensor.Dtype, k32 func() kernel[float32], k64 func() kernel[float64], ns G.Nodes) (*G.Node, error) {
	if dt == tensor.Float32 {
		return apply[float32](k32(), Train, ns...)
	}
	return apply[float64](k64(), Train, ns...)
}

func stemCase(n, c, h, w, f int) opCase {
	oc := opCase{name: fmt.Sprintf("Stem/%dx%dx%dx%d_to%d", n, c, h, w, f),
		shapes:   [][]int{{n, c, h, w}, {f, c, 3, 3}, {f}, {f}},
		positive: []bool{false, false, true, false}}
	var tracked int64
	oc.build = func(ns G.Nodes) (*G.Node, error) {
		return applyKernel(ns[0].Dtype(), func() kernel[float32] {
			return &stemKernel[float32]{cv: newConv(n, c, h, w, f, 1), mode: Train, ws: &workspace[float32]{},
				bn: newBatchNorm(f, n*h*w, make([]float32, f), make([]float32, f)), tracked: &tracked}
		}, func() kernel[float64] {
			return &stemKernel[float64]{cv: newConv(n, c, h, w, f, 1), mode: Train, ws: &workspace[float64]{},
				bn: newBatchNorm(f, n*h*w, make([]float64, f), make([]float64, f)), tracked: &tracked}
		}, ns)
	}
	oc.ref = func(in [][]float64) []float64 {
		a := refConv(in[0], in[1], n, c, h, w, f, 1)
		return swap01(refReLU(refBN(a, in[2], in[3], n, f)), n, f)
	}
	oc.gorgonia = func(g *G.ExprGraph, ns G.Nodes) (*G.Node, error) {
		r := &ref{g: g, mode: Train, nodes: map[string]*G.Node{"s.weight": ns[2], "s.bias": ns[3]}}
		return G.Transpose(G.Must(G.Rectify(r.bn(conv3(ns[0], ns[1], 1), "s", f))), 1, 0, 2, 3)
	}
	return oc
}

func blockCase(n, c, h, w, f, s int) opCase {
	oc := opCase{name: fmt.Sprintf("Block/%dx%dx%dx%d_to%d_s%d", n, c, h, w, f, s),
		shapes:   [][]int{{c, n, h, w}, {f, c, 3, 3}, {f}, {f}, {f, f, 3, 3}, {f}, {f}},
		positive: []bool{false, false, true, false, false, true, false}}
	ho, wo := (h-1)/s+1, (w-1)/s+1
	m := n * ho * wo
	oc.build = func(ns G.Nodes) (*G.Node, error) {
		return applyKernel(ns[0].Dtype(), func() kernel[float32] {
			k, err := newBlockKernel(n, c, h, w, f, s, Train, newBatchNorm(f, m, make([]float32, f), make([]float32, f)),
				newBatchNorm(f, m, make([]float32, f), make([]float32, f)), &workspace[float32]{})
			if err != nil {
				panic(err)
			}
			return k
		}, func() kernel[float64] {
			k, err := newBlockKernel(n, c, h, w, f, s, Train, newBatchNorm(f, m, make([]float64, f), make([]float64, f)),
				newBatchNorm(f, m, make([]float64, f), make([]float64, f)), &workspace[float64]{})
			if err != nil {
				panic(err)
			}
			return k
		}, ns)
	}
	oc.ref = func(in [][]float64) []float64 {
		x := swap01(in[0], c, n)
		h1 := refReLU(refBN(refConv(x, in[1], n, c, h, w, f, s), in[2], in[3], n, f))
		z := refBN(refConv(h1, in[4], n, f, ho, wo, f, 1), in[5], in[6], n, f)
		sc := refShortcut(x, n, c, h, w, f, s)
		for i := range z {
			z[i] += sc[i]
		}
		return swap01(refReLU(z), n, f)
	}
	oc.gorgonia = func(g *G.ExprGraph, ns G.Nodes) (*G.Node, error) {
		r := &ref{g: g, mode: Train, nodes: map[string]*G.Node{
			"b.conv1.weight": ns[1], "b.bn1.weight": ns[2], "b.bn1.bias": ns[3],
			"b.conv2.weight": ns[4], "b.bn2.weight": ns[5], "b.bn2.bias": ns[6]}}
		x := G.Must(G.Transpose(ns[0], 1, 0, 2, 3))
		return G.Transpose(r.block(x, blockSpec{prefix: "b", cin: c, cout: f, s: s, h: h, w: w}), 1, 0, 2, 3)
	}
	return oc
}

func headCase(n, c, h, w, k int) opCase {
	oc := opCase{name: fmt.Sprintf("Head/%dx%dx%dx%d_to%d", c, n, h, w, k),
		shapes: [][]int{{c, n, h, w}, {k, c}, {k}}}
	oc.build = func(ns G.Nodes) (*G.Node, error) {
		return applyKernel(ns[0].Dtype(), func() kernel[float32] {
			return &headKernel[float32]{n: n, c: c, h: h, w: w, p: h * w, k: k}
		}, func() kernel[float64] {
			return &headKernel[float64]{n: n, c: c, h: h, w: w, p: h * w, k: k}
		}, ns)
	}
	oc.ref = func(in [][]float64) []float64 {
		x, wt, b := swap01(in[0], c, n), in[1], in[2]
		y := make([]float64, n*k)
		for i := range n {
			for j := range k {
				s := b[j]
				for ch := range c {
					var m float64
					for _, v := range x[(i*c+ch)*h*w:][:h*w] {
						m += v
					}
					s += m / float64(h*w) * wt[j*c+ch]
				}
				y[i*k+j] = s
			}
		}
		return y
	}
	oc.gorgonia = func(g *G.ExprGraph, ns G.Nodes) (*G.Node, error) {
		// logitsᵀ (K,N) = W (K,C) · mean of the CNHW planes (C,N). (Mean
		// over the axes 2 and 3 of a non-square plane is wrong in gorgonia
		// v0.9.18: reduce the flattened plane.)
		feat := G.Must(G.Mean(G.Must(G.Reshape(ns[0], tensor.Shape{c, n, h * w})), 2))
		logits := G.Must(G.Transpose(G.Must(G.Mul(ns[1], feat))))
		return G.BroadcastAdd(logits, G.Must(G.Reshape(ns[2], tensor.Shape{1, k})), nil, []byte{0})
	}
	return oc
}

// TestFusedOps runs every fused op through the harness.
func TestFusedOps(t *testing.T) {
	for ci, c := range harnessCases() {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(ci), 15))
			in := make([][]float64, len(c.shapes))
			for i, s := range c.shapes {
				in[i] = normal(rng, tensor.Shape(s).TotalSize())
				if c.positive != nil && c.positive[i] {
					for j := range in[i] {
						in[i][j] = 1 + (rng.Float64() - 0.5)
					}
				}
			}
			if c.dtype == tensor.Float32 { // the reference sees the values the op sees
				for _, v := range in {
					for j := range v {
						v[j] = float64(float32(v[j]))
					}
				}
			}
			want := c.ref(in)
			r := normal(rng, len(want))
			y, grads := runOpCase(t, c, func(_ *G.ExprGraph, ns G.Nodes) (*G.Node, error) { return c.build(ns) }, in, r)

			if e := maxRelErr(y, want, 1e-12); !(e <= c.tol.fwd) {
				t.Errorf("forward vs float64 reference: relative error %.3g > %g", e, c.tol.fwd)
			}
			for i := range in {
				idx, fdg := fdGrad(c, in, r, i, rng)
				got := make([]float64, len(idx))
				for j, k := range idx {
					got[j] = grads[i][k]
				}
				if e := maxRelErr(got, fdg, 1e-12); !(e <= c.tol.grad) {
					t.Errorf("d/d operand %d vs finite differences: relative error %.3g > %g", i, e, c.tol.grad)
				}
			}
			if c.gorgonia == nil {
				return
			}
			gy, gg := runOpCase(t, c, c.gorgonia, in, r)
			if e := maxRelErr(y, gy, 1e-12); !(e <= c.tol.gorgonia) {
				t.Errorf("forward vs gorgonia: relative error %.3g > %g", e, c.tol.gorgonia)
			}
			for i := range gg {
				if e := maxRelErr(grads[i], gg[i], 1e-12); !(e <= c.tol.gorgonia) {
					t.Errorf("d/d operand %d vs gorgonia: relative error %.3g > %g", i, e, c.tol.gorgonia)
				}
			}
		})
	}
}

// runOpCase builds L = Σ r ⊙ op(operands) in the case's dtype, runs it
// twice and returns the output and the gradient of every operand.
func runOpCase(t *testing.T, c opCase, build func(*G.ExprGraph, G.Nodes) (*G.Node, error), in [][]float64, r []float64) ([]float64, [][]float64) {
	t.Helper()
	g := G.NewGraph()
	ns := make(G.Nodes, len(in))
	for i, s := range c.shapes {
		v := tensor.New(tensor.Of(c.dtype), tensor.WithShape(s...))
		setFrom(v, in[i])
		ns[i] = G.NewTensor(g, c.dtype, len(s), G.WithShape(s...), G.WithName(fmt.Sprintf("operand%d", i)), G.WithValue(v))
	}
	out, err := build(g, ns)
	if err != nil {
		t.Fatal(err)
	}
	rt := tensor.New(tensor.Of(c.dtype), tensor.WithShape(out.Shape()...))
	setFrom(rt, r)
	var outV G.Value
	G.Read(out, &outV)
	loss := G.Must(G.Sum(G.Must(G.HadamardProd(out, G.NewConstant(rt)))))
	if _, err := G.Grad(loss, ns...); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	for range 2 {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
	}
	y := toF64(t, outV)
	grads := make([][]float64, len(ns))
	for i, n := range ns {
		gv, err := n.Grad()
		if err != nil {
			t.Fatal(err)
		}
		grads[i] = toF64(t, gv)
	}
	return y, grads
}

// fdGrad returns up to fdSamples random entries of operand i and the
// central finite differences of L = Σ r ⊙ ref at them.
func fdGrad(c opCase, in [][]float64, r []float64, i int, rng *rand.Rand) ([]int, []float64) {
	n := len(in[i])
	idx := rng.Perm(n)[:min(n, fdSamples)]
	out := make([]float64, len(idx))
	for j, k := range idx {
		v0 := in[i][k]
		out[j] = fd.Derivative(func(v float64) float64 {
			in[i][k] = v
			var l float64
			for o, y := range c.ref(in) {
				l += r[o] * y
			}
			return l
		}, v0, &fd.Settings{Formula: fd.Central, Step: 1e-6})
		in[i][k] = v0
	}
	return idx, out
}

// refConv is conv3×3 with padding 1 and stride s of x (n,c,h,w) NCHW with
// w (f,c,3,3), as loops: out[i,o,y,x] = Σ_{c,kh,kw} w[o,c,kh,kw]·
// x[i,c,y·s+kh−1,x·s+kw−1], zero outside.
func refConv(x, w []float64, n, c, h, wd, f, s int) []float64 {
	ho, wo := (h-1)/s+1, (wd-1)/s+1
	out := make([]float64, n*f*ho*wo)
	for i := range n {
		for o := range f {
			for oy := range ho {
				for ox := range wo {
					var sum float64
					for ch := range c {
						for kh := range 3 {
							for kw := range 3 {
								iy, ix := oy*s+kh-1, ox*s+kw-1
								if iy >= 0 && iy < h && ix >= 0 && ix < wd {
									sum += w[((o*c+ch)*3+kh)*3+kw] * x[((i*c+ch)*h+iy)*wd+ix]
								}
							}
						}
					}
					out[((i*f+o)*ho+oy)*wo+ox] = sum
				}
			}
		}
	}
	return out
}

// refBN is training-mode BatchNorm of a (n,c,·,·) NCHW: per channel,
// (a−μ)/√(σ²+ε)·γ + β with the batch mean μ and biased variance σ².
func refBN(a, gamma, beta []float64, n, c int) []float64 {
	p := len(a) / (n * c)
	out := make([]float64, len(a))
	for ch := range c {
		var s, s2 float64
		for i := range n {
			for _, v := range a[(i*c+ch)*p:][:p] {
				s += v
			}
		}
		mu := s / float64(n*p)
		for i := range n {
			for _, v := range a[(i*c+ch)*p:][:p] {
				s2 += (v - mu) * (v - mu)
			}
		}
		inv := 1 / math.Sqrt(s2/float64(n*p)+BNEpsilon)
		for i := range n {
			for j, v := range a[(i*c+ch)*p:][:p] {
				out[(i*c+ch)*p+j] = (v-mu)*inv*gamma[ch] + beta[ch]
			}
		}
	}
	return out
}

func refReLU(a []float64) []float64 {
	for i, v := range a {
		a[i] = max(v, 0)
	}
	return a
}

// refShortcut is the option-A shortcut: x[:, :, ::s, ::s] with lo = (f−c)/2
// zero channels before and f−c−lo after (the identity when s = 1, f = c).
func refShortcut(x []float64, n, c, h, w, f, s int) []float64 {
	ho, wo := (h-1)/s+1, (w-1)/s+1
	lo := (f - c) / 2
	out := make([]float64, n*f*ho*wo)
	for i := range n {
		for ch := range c {
			for y := range ho {
				for xx := range wo {
					out[((i*f+lo+ch)*ho+y)*wo+xx] = x[((i*c+ch)*h+y*s)*w+xx*s]
				}
			}
		}
	}
	return out
}

// refStageLoops is maxpool2×2(relu(conv3×3(x, w) + b)).
func refStageLoops(in [][]float64, n, c, h, w, f int) []float64 {
	a := refConv(in[0], in[1], n, c, h, w, f, 1)
	ho, wo := h/2, w/2
	out := make([]float64, n*f*ho*wo)
	for i := range n {
		for o := range f {
			pl := a[(i*f+o)*h*w:][:h*w]
			for y := range ho {
				for x := range wo {
					m := math.Inf(-1)
					for _, d := range [4]int{0, 1, w, w + 1} {
						m = max(m, pl[2*y*w+2*x+d]+in[2][o])
					}
					out[((i*f+o)*ho+y)*wo+x] = max(m, 0)
				}
			}
		}
	}
	return out
}

// refDenseLoops is x·w + b, then ReLU when relu is set.
func refDenseLoops(in [][]float64, n, k, m int, relu bool) []float64 {
	out := make([]float64, n*m)
	for i := range n {
		for j := range m {
			s := in[2][j]
			for l := range k {
				s += in[0][i*k+l] * in[1][l*m+j]
			}
			if relu {
				s = max(s, 0)
			}
			out[i*m+j] = s
		}
	}
	return out
}

// tensorOf32 returns a tensor of the given shape holding a copy of data.
func tensorOf32(data []float32, shape ...int) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(slices.Clone(data)))
}

// directPass builds a float32 op on operand nodes shaped like in and
// returns a function that runs its forward and backward ops' Do directly
// (no VM), with output gradient gy: what a training step costs the op.
func directPass(tb testing.TB, build func(G.Nodes) (*G.Node, error), gy *tensor.Dense, in ...*tensor.Dense) func() {
	tb.Helper()
	g := G.NewGraph()
	ns := make(G.Nodes, len(in))
	for i, v := range in {
		ns[i] = G.NewTensor(g, tensor.Float32, v.Dims(), G.WithShape(v.Shape()...), G.WithName(fmt.Sprintf("in%d", i)))
	}
	out, err := build(ns)
	if err != nil {
		tb.Fatal(err)
	}
	f := out.Op().(*fwdOp[float32])
	dims := make([]int, len(in)+2)
	for i := range dims {
		dims[i] = 4
	}
	bwd := &bwdOp[float32]{f: f, opBase: newBase("directPass", "", nil, dims...)}
	vals := make([]G.Value, len(in), len(in)+2)
	for i, v := range in {
		vals[i] = v
	}
	return func() {
		y, err := f.Do(vals...)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := bwd.Do(append(vals, y, gy)...); err != nil {
			tb.Fatal(err)
		}
	}
}
