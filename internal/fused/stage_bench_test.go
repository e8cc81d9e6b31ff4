package fused

import (
	"fmt"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	// With -tags openblas, gorgonia (and so Stage, which calls
	// G.WhichBLAS()) uses OpenBLAS, as in the kdcal binary.
	_ "github.com/kdcal/kdcal/internal/blasopt"
)

// The benchmarks compare Stage with gorgonia's own ops (refStage) in the same
// binary. Speed is never asserted; see the package report for figures and
// scripts/torch_conv_bench.py for the PyTorch peer. For single-thread figures
// run with GOMAXPROCS=1 (and OPENBLAS_NUM_THREADS=1 with -tags openblas).

var stageVariants = []struct {
	name string
	fn   stageFunc
}{{"gorgonia", StageOps}, {"fused", Stage}}

// stageBenchShapes are the two stages of the "medium" CNN teacher at batch
// 128: the first one's x is data, the second's a wrt, as inside a network.
var stageBenchShapes = []struct {
	name     string
	nc       stNetCase
	xIsParam bool
}{
	{"1to16_28x28", stNetCase{n: 128, c: 1, h: 28, w: 28, outs: []int{16}, seed: 41}, false},
	{"16to32_14x14", stNetCase{n: 128, c: 16, h: 14, w: 14, outs: []int{32}, seed: 42}, true},
}

// BenchmarkStage times forward+backward of one stage at batch 128: the two
// stages of the "medium" CNN teacher. The first stage's x is data (no input
// gradient needed); the second's is a wrt, as inside a network.
func BenchmarkStage(b *testing.B) {
	for _, sh := range stageBenchShapes {
		for _, v := range stageVariants {
			b.Run(sh.name+"/"+v.name, func(b *testing.B) {
				stBuild(b, sh.nc, sh.nc.data(), v.fn, sh.xIsParam).benchTape(b)
			})
		}
	}
}

// cnn is the "medium" CNN teacher: conv16-pool-conv32-pool-fc128-fc10 on
// 1×28×28 inputs, trained with Adam on mean cross-entropy.
type cnn struct {
	g      *G.ExprGraph
	x, yw  *G.Node
	loss   *G.Node
	lossV  G.Value
	params G.Nodes
	xt, yt *tensor.Dense
	opt    *adam32
}

func newCNN(tb testing.TB, bs int, stage stageFunc, seed uint64) *cnn {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	g := G.NewGraph()
	m := &cnn{g: g}
	param := func(name string, shape []int, fanIn, fanOut int, zero bool) *G.Node {
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := make([]float32, n)
		if !zero {
			data = glorot32(rng, n, fanIn, fanOut)
		}
		p := G.NewTensor(g, tensor.Float32, len(shape), G.WithShape(shape...), G.WithName(name),
			G.WithValue(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))))
		m.params = append(m.params, p)
		return p
	}
	m.x = G.NewTensor(g, tensor.Float32, 4, G.WithShape(bs, 1, 28, 28), G.WithName("x"))
	m.yw = G.NewMatrix(g, tensor.Float32, G.WithShape(bs, 10), G.WithName("yw"))
	h := m.x
	c := 1
	for i, f := range []int{16, 32} {
		w := param(fmt.Sprintf("conv%d.w", i), []int{f, c, 3, 3}, c*9, f*9, false)
		bias := param(fmt.Sprintf("conv%d.b", i), []int{1, f, 1, 1}, 0, 0, true)
		h = G.Must(stage(h, w, bias))
		c = f
	}
	h = G.Must(G.Reshape(h, tensor.Shape{bs, c * 7 * 7}))
	in := c * 7 * 7
	for i, out := range []int{128, 10} {
		w := param(fmt.Sprintf("fc%d.w", i), []int{in, out}, in, out, false)
		bias := param(fmt.Sprintf("fc%d.b", i), []int{1, out}, 0, 0, true)
		h = G.Must(G.BroadcastAdd(G.Must(G.Mul(h, w)), bias, nil, []byte{0}))
		if i == 0 {
			h = G.Must(G.Rectify(h))
		}
		in = out
	}
	m.loss = weightedNLL(logSoftmax(h), m.yw)
	G.Read(m.loss, &m.lossV)
	if _, err := G.Grad(m.loss, m.params...); err != nil {
		tb.Fatal(err)
	}
	m.xt = tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(bs, 1, 28, 28))
	m.yt = tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(bs, 10))
	if err := G.Let(m.x, m.xt); err != nil {
		tb.Fatal(err)
	}
	if err := G.Let(m.yw, m.yt); err != nil {
		tb.Fatal(err)
	}
	m.opt = newAdam32(m.params)
	return m
}

// batches returns k random batches (inputs N(0,1), uniform random labels as
// one-hot/bs), as in the notes' benchmark: the loss stays realistic.
func cnnBatches(k, bs int, seed uint64) (xs, ys [][]float32) {
	rng := rand.New(rand.NewPCG(seed, 2))
	for range k {
		x := make([]float32, bs*28*28)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		y := make([]float32, bs*10)
		for i := range bs {
			y[i*10+rng.IntN(10)] = 1 / float32(bs)
		}
		xs, ys = append(xs, x), append(ys, y)
	}
	return xs, ys
}

// BenchmarkCNNStep times one training step (forward, backward, Adam) of the
// medium CNN teacher at batch 128.
func BenchmarkCNNStep(b *testing.B) {
	const bs = 128
	xs, ys := cnnBatches(20, bs, 5)
	for _, v := range stageVariants {
		b.Run(v.name, func(b *testing.B) {
			m := newCNN(b, bs, v.fn, 3)
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

// BenchmarkStageChunk tunes stageChunkBytes (Stage only).
func BenchmarkStageChunk(b *testing.B) {
	for _, kb := range []int{32, 128, 512, 1024, 1 << 20} {
		for _, sh := range stageBenchShapes {
			b.Run(fmt.Sprintf("%s/chunk=%dKiB", sh.name, kb), func(b *testing.B) {
				withStageChunkBytes(kb<<10, func() {
					stBuild(b, sh.nc, sh.nc.data(), Stage, sh.xIsParam).benchTape(b)
				})
			})
		}
	}
}
