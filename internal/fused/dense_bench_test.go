package fused

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	// With -tags openblas, gorgonia (and so Dense, which calls
	// G.WhichBLAS()) uses OpenBLAS, as in the kdcal binary.
	_ "github.com/kdcal/kdcal/internal/blasopt"
	"github.com/kdcal/kdcal/internal/optkernel"
)

// The benchmarks compare Dense with gorgonia's own ops (refDense) in the same
// binary. Speed is never asserted. For single-thread figures run with
// -cpu 1 (and OPENBLAS_NUM_THREADS=1 with -tags openblas); the whole
// training step is internal/train's BenchmarkTrainStep.

var denseVariants = []struct {
	name string
	fn   denseFunc
}{{"gorgonia", DenseOps}, {"fused", Dense}}

// BenchmarkDense times forward+backward of the layers of the MLP
// 784-512-512-10 at batch 128: the first layer's x is data (no input
// gradient needed), the others' are wrt, as inside the network.
func BenchmarkDense(b *testing.B) {
	shapes := []struct {
		name     string
		nc       dnNetCase
		xIsParam bool
	}{
		{"784to512relu", dnNetCase{n: 128, in: 784, outs: []int{512}, lastRelu: true, seed: 41}, false},
		{"512to512relu", dnNetCase{n: 128, in: 512, outs: []int{512}, lastRelu: true, seed: 42}, true},
		{"512to10", dnNetCase{n: 128, in: 512, outs: []int{10}, seed: 43}, true},
	}
	for _, sh := range shapes {
		for _, v := range denseVariants {
			b.Run(sh.name+"/"+v.name, func(b *testing.B) {
				dnBuild(b, sh.nc, sh.nc.data(), v.fn, sh.xIsParam).benchTape(b)
			})
		}
	}
}

// mlp is a float32 MLP with the loss of internal/train (stable log-softmax,
// weighted NLL with targets one-hot/bs) and an in-place Adam.
type mlp struct {
	g      *G.ExprGraph
	loss   *G.Node
	lossV  G.Value
	params G.Nodes
	xt, yt *tensor.Dense
	opt    *adam32
}

func glorot32(rng *rand.Rand, n, fanIn, fanOut int) []float32 {
	lim := math.Sqrt(6 / float64(fanIn+fanOut))
	s := make([]float32, n)
	for i := range s {
		s[i] = float32((2*rng.Float64() - 1) * lim)
	}
	return s
}

// newMLP builds the MLP d-hidden…-classes for batch bs with the given layer
// function and initial weights from seed.
func newMLP(tb testing.TB, bs, d int, hidden []int, classes int, fn denseFunc, seed uint64) *mlp {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	g := G.NewGraph()
	m := &mlp{g: g}
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(bs, d), G.WithName("x"))
	yw := G.NewMatrix(g, tensor.Float32, G.WithShape(bs, classes), G.WithName("yw"))
	h, in := x, d
	widths := append(append([]int{}, hidden...), classes)
	for i, out := range widths {
		w := G.NewMatrix(g, tensor.Float32, G.WithShape(in, out), G.WithName(fmt.Sprintf("w%d", i)),
			G.WithValue(tensor.New(tensor.WithShape(in, out), tensor.WithBacking(glorot32(rng, in*out, in, out)))))
		bias := G.NewMatrix(g, tensor.Float32, G.WithShape(1, out), G.WithName(fmt.Sprintf("b%d", i)),
			G.WithValue(tensor.New(tensor.WithShape(1, out), tensor.WithBacking(make([]float32, out)))))
		m.params = append(m.params, w, bias)
		h = G.Must(fn(h, w, bias, i < len(widths)-1))
		in = out
	}
	m.loss = weightedNLL(logSoftmax(h), yw)
	G.Read(m.loss, &m.lossV)
	if _, err := G.Grad(m.loss, m.params...); err != nil {
		tb.Fatal(err)
	}
	m.xt = tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(bs, d))
	m.yt = tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(bs, classes))
	if err := G.Let(x, m.xt); err != nil {
		tb.Fatal(err)
	}
	if err := G.Let(yw, m.yt); err != nil {
		tb.Fatal(err)
	}
	m.opt = newAdam32(m.params)
	return m
}

// adam is an in-place Adam (optkernel.Adam) that zeroes the gradients.
type adam32 struct {
	params []*G.Node
	m, v   [][]float32
	t      int
}

func newAdam32(ps G.Nodes) *adam32 {
	a := &adam32{params: ps}
	for _, p := range ps {
		n := p.Shape().TotalSize()
		a.m = append(a.m, make([]float32, n))
		a.v = append(a.v, make([]float32, n))
	}
	return a
}

func (a *adam32) step(lr float64) {
	const b1, b2 = 0.9, 0.999
	a.t++
	c := optkernel.AdamConsts{B1: b1, A1: 1 - b1, B2: b2, A2: 1 - b2, Eps: 1e-8, Decay: 1,
		StepSize: float32(lr / (1 - math.Pow(b1, float64(a.t)))),
		C2:       float32(math.Sqrt(1 - math.Pow(b2, float64(a.t))))}
	for i, p := range a.params {
		gv, _ := p.Grad()
		optkernel.Adam(p.Value().Data().([]float32), gv.Data().([]float32), a.m[i], a.v[i], &c)
	}
}

// batches returns k random batches (inputs N(0,1), uniform random labels as
// one-hot/bs), as in the notes' benchmark: the loss stays realistic.
func mlpBatches(k, bs, d, classes int, seed uint64) (xs, ys [][]float32) {
	rng := rand.New(rand.NewPCG(seed, 2))
	for range k {
		x := make([]float32, bs*d)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		y := make([]float32, bs*classes)
		for i := range bs {
			y[i*classes+rng.IntN(classes)] = 1 / float32(bs)
		}
		xs, ys = append(xs, x), append(ys, y)
	}
	return xs, ys
}

// BenchmarkMLPStep times one training step (forward, backward, Adam) of the
// MLP 784-512-512-10 at batch 128 with gorgonia's layers and with Dense (the
// rest of the step is the same).
func BenchmarkMLPStep(b *testing.B) {
	const bs = 128
	xs, ys := mlpBatches(16, bs, 784, 10, 5)
	for _, v := range denseVariants {
		b.Run(v.name, func(b *testing.B) {
			m := newMLP(b, bs, 784, []int{512, 512}, 10, v.fn, 3)
			vm := G.NewTapeMachine(m.g, G.BindDualValues(m.params...))
			defer vm.Close()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				copy(m.xt.Float32s(), xs[i%len(xs)])
				copy(m.yt.Float32s(), ys[i%len(ys)])
				i++
				if err := vm.RunAll(); err != nil {
					b.Fatal(err)
				}
				m.opt.step(1e-3)
				vm.Reset()
			}
		})
	}
}
