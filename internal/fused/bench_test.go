package fused

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kdcal/kdcal/internal/testutil"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The benchmarks time training steps (forward + backward + SGD-momentum
// update) of CIFAR ResNets at batch 128 on 3×32×32 and 1×28×28 inputs, the
// workload of scripts/torch_resnet_bench.py, which times torch 1.13 on the
// same networks; scripts/bench_resnet.sh (part of `make bench`) runs both
// in one go and prints the ratios. Speed is never asserted. For
// single-thread figures run with -cpu 1 (and OPENBLAS_NUM_THREADS=1 with
// -tags openblas).

// benchSpecs are the networks of BenchmarkResNetStep: the sizes the
// coming teacher.family resnet trains (issue 13 item 3), on CIFAR-shaped
// and MNIST-shaped inputs.
var benchSpecs = func() []ResNetSpec {
	var out []ResNetSpec
	for _, in := range [][3]int{{3, 32, 32}, {1, 28, 28}} {
		for _, dw := range [][2]int{{8, 8}, {20, 16}, {32, 16}} {
			out = append(out, ResNetSpec{Depth: dw[0], Width: dw[1], C: in[0], H: in[1], W: in[2], Classes: 10})
		}
	}
	return out
}()

// benchName is a spec's sub-benchmark name, e.g. resnet20-w16/3x32x32 (the
// torch peer prints the same).
func benchName(s ResNetSpec) string { return fmt.Sprintf("%v/%dx%dx%d", s, s.C, s.H, s.W) }

// step is a training graph: mean cross-entropy of random labels, and an
// SGD update with momentum 0.9 (torch.optim.SGD(lr, momentum=0.9), as the
// peer): v = 0.9·v + g, w −= lr·v.
type step struct {
	gr     *Graph
	vm     G.VM
	xt, yt *tensor.Dense
	xs, ys [][]float32
	i      int
	vel    [][]float32
}

func newStep(b *testing.B, s ResNetSpec, bs int) *step {
	r, err := NewResNet(s, tensor.Float32)
	if err != nil {
		b.Fatal(err)
	}
	r.Init(rand.New(rand.NewPCG(1, 1)), InitHe)
	g := G.NewGraph()
	st := &step{}
	if st.gr, err = r.Build(g, bs, Train); err != nil {
		b.Fatal(err)
	}
	y := G.NewMatrix(g, tensor.Float32, G.WithShape(bs, s.Classes), G.WithName("y"))
	st.xt = tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(bs, s.C, s.H, s.W))
	st.yt = tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(bs, s.Classes))
	if err := G.Let(st.gr.X, st.xt); err != nil {
		b.Fatal(err)
	}
	if err := G.Let(y, st.yt); err != nil {
		b.Fatal(err)
	}
	loss := weightedNLL(logSoftmax(st.gr.Logits), y)
	if _, err := G.Grad(loss, st.gr.Params...); err != nil {
		b.Fatal(err)
	}
	st.vm = G.NewTapeMachine(g)
	b.Cleanup(func() { st.vm.Close() })
	// 20 batches of N(0,1) images with uniform random labels (one-hot/bs),
	// as the torch peer: the loss stays realistic.
	rng := rand.New(rand.NewPCG(5, 2))
	for range 20 {
		x := make([]float32, bs*s.C*s.H*s.W)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		yv := make([]float32, bs*s.Classes)
		for i := range bs {
			yv[i*s.Classes+rng.IntN(s.Classes)] = 1 / float32(bs)
		}
		st.xs, st.ys = append(st.xs, x), append(st.ys, yv)
	}
	return st
}

func (st *step) run(b *testing.B) {
	copy(st.xt.Float32s(), st.xs[st.i%len(st.xs)])
	copy(st.yt.Float32s(), st.ys[st.i%len(st.ys)])
	st.i++
	if err := st.vm.RunAll(); err != nil {
		b.Fatal(err)
	}
	st.update(b, 1e-2)
	st.vm.Reset()
}

// update applies one SGD-momentum step to every parameter.
func (st *step) update(b *testing.B, lr float32) {
	if st.vel == nil {
		st.vel = make([][]float32, len(st.gr.Params))
	}
	for i, p := range st.gr.Params {
		gv, err := p.Grad()
		if err != nil {
			b.Fatal(err)
		}
		g, w := gv.Data().([]float32), p.Value().Data().([]float32)
		if st.vel[i] == nil {
			st.vel[i] = make([]float32, len(w))
		}
		v := st.vel[i]
		for j := range w {
			v[j] = 0.9*v[j] + g[j]
			w[j] -= lr * v[j]
		}
	}
}

// logSoftmax and weightedNLL are the stable forms of gorgonia-notes.md §4.
func logSoftmax(x *G.Node) *G.Node {
	n := x.Shape()[0]
	mx := G.Must(G.Reshape(G.Must(G.Max(x, 1)), tensor.Shape{n, 1}))
	z := G.Must(G.BroadcastSub(x, mx, nil, []byte{1}))
	lse := G.Must(G.Reshape(G.Must(G.Log(G.Must(G.Sum(G.Must(G.Exp(z)), 1)))), tensor.Shape{n, 1}))
	return G.Must(G.BroadcastSub(z, lse, nil, []byte{1}))
}

func weightedNLL(logp, yw *G.Node) *G.Node {
	return G.Must(G.Neg(G.Must(G.Sum(G.Must(G.HadamardProd(logp, yw))))))
}

// stepFLOPs returns the multiply-adds ×2 of one training step: the forward
// convolutions and fc, twice that for the backward (weight and input
// gradients), minus the stem's input gradient, which is skipped.
func stepFLOPs(s ResNetSpec, bs int) float64 {
	conv := func(cin, cout, ho, wo int) float64 { return 2 * float64(cin*cout*9*ho*wo) }
	stem := conv(s.C, s.Width, s.H, s.W)
	var rest float64
	for _, b := range s.blocks() {
		ho, wo := (b.h-1)/b.s+1, (b.w-1)/b.s+1
		rest += conv(b.cin, b.cout, ho, wo) + conv(b.cout, b.cout, ho, wo)
	}
	fc := 2 * float64(4*s.Width*s.Classes)
	return float64(bs) * (2*stem + 3*(rest+fc))
}

// BenchmarkResNetStep times one training step (forward, backward, SGD
// update) at batch 128.
func BenchmarkResNetStep(b *testing.B) {
	const bs = 128
	for _, s := range benchSpecs {
		b.Run(benchName(s), func(b *testing.B) {
			st := newStep(b, s, bs)
			st.run(b) // allocate the buffers
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := testutil.CPUTime()
			for b.Loop() {
				st.run(b)
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(sec*1e3, "ms/step")
			b.ReportMetric((testutil.CPUTime()-cpu0).Seconds()*1e3/float64(b.N), "cpu-ms/step")
			b.ReportMetric(stepFLOPs(s, bs)/sec/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkChunk tunes chunkElems on resnet20-w16.
func BenchmarkChunk(b *testing.B) {
	for _, elems := range []int{32 << 10, 64 << 10, 128 << 10, 256 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("elems=%dk", elems>>10), func(b *testing.B) {
			old := chunkElems
			chunkElems = elems
			defer func() { chunkElems = old }()
			st := newStep(b, ResNetSpec{Depth: 20, Width: 16, C: 3, H: 32, W: 32, Classes: 10}, 128)
			st.run(b)
			b.ResetTimer()
			cpu0 := testutil.CPUTime()
			for b.Loop() {
				st.run(b)
			}
			b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/step")
			b.ReportMetric((testutil.CPUTime()-cpu0).Seconds()*1e3/float64(b.N), "cpu-ms/step")
		})
	}
}
