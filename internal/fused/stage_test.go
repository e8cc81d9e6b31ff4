package fused

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// relTol is the tolerance of every comparison against gorgonia's graph and
// PyTorch: the ∞-norm relative error max|got-want| / max|want| must not
// exceed it. Both sides are float32 with different summation orders
// (im2col layout, GEMM blocking), which gives errors around 1e-7–1e-6.
const stRelTol = 1e-4

type stageFunc func(x, w, b *G.Node) (*G.Node, error)

// netCase describes a stack of stages on x (n,c,h,w) with loss Σ r⊙y.
type stNetCase struct {
	n, c, h, w int
	outs       []int // channels per stage
	seed       uint64
}

// netData holds random inputs for a netCase.
type stNetData struct {
	x      []float32
	layers []layer32
	r      []float32 // loss weights, shape of the last output
	yShape []int
}

func (nc stNetCase) data() stNetData {
	rng := rand.New(rand.NewPCG(nc.seed, 7))
	d := stNetData{x: randn32(rng, nc.n*nc.c*nc.h*nc.w, 1)}
	c, h, w := nc.c, nc.h, nc.w
	for _, f := range nc.outs {
		d.layers = append(d.layers, layer32{
			w: randn32(rng, f*c*9, float32(1/math.Sqrt(float64(c*9)))),
			b: randn32(rng, f, 0.1),
		})
		c, h, w = f, (h-2)/2+1, (w-2)/2+1
	}
	d.yShape = []int{nc.n, c, h, w}
	d.r = randn32(rng, nc.n*c*h*w, 1)
	return d
}

// build makes the graph; xIsParam makes x a wrt node (so dx is computed).
func stBuild(t testing.TB, nc stNetCase, d stNetData, stage stageFunc, xIsParam bool) *netGraph {
	t.Helper()
	g := G.NewGraph()
	ng := &netGraph{g: g}
	ng.x = G.NewTensor(g, tensor.Float32, 4, G.WithShape(nc.n, nc.c, nc.h, nc.w), G.WithName("x"),
		G.WithValue(tensorOf32(d.x, nc.n, nc.c, nc.h, nc.w)))
	h := ng.x
	c := nc.c
	for i, f := range nc.outs {
		w := G.NewTensor(g, tensor.Float32, 4, G.WithShape(f, c, 3, 3), G.WithName(fmt.Sprintf("w%d", i)),
			G.WithValue(tensorOf32(d.layers[i].w, f, c, 3, 3)))
		b := G.NewTensor(g, tensor.Float32, 4, G.WithShape(1, f, 1, 1), G.WithName(fmt.Sprintf("b%d", i)),
			G.WithValue(tensorOf32(d.layers[i].b, 1, f, 1, 1)))
		ng.params = append(ng.params, w, b)
		var err error
		if h, err = stage(h, w, b); err != nil {
			t.Fatalf("stage %d: %v", i, err)
		}
		c = f
	}
	r := G.NewTensor(g, tensor.Float32, 4, G.WithShape(d.yShape...), G.WithName("r"),
		G.WithValue(tensorOf32(d.r, d.yShape...)))
	ng.finish(t, h, r, xIsParam)
	return ng
}

// runTape runs one forward+backward pass with a TapeMachine.
func stRunTape(t testing.TB, nc stNetCase, d stNetData, stage stageFunc, xIsParam bool) netResult {
	t.Helper()
	return stBuild(t, nc, d, stage, xIsParam).runTape(t, xIsParam)
}

// withChunkBytes runs f with a different chunk size (not parallel-safe).
func withStageChunkBytes(n int, f func()) {
	old := stageChunkBytes
	stageChunkBytes = n
	defer func() { stageChunkBytes = old }()
	f()
}

// TestStageMatchesGorgonia compares values and all gradients with gorgonia's
// Conv2d+BroadcastAdd+Rectify+MaxPool2D graph (the reference), on random
// data, for even and odd sizes and chunk sizes from one image per chunk to the whole batch.
func TestStageMatchesGorgonia(t *testing.T) {
	cases := []stNetCase{
		{n: 3, c: 2, h: 7, w: 7, outs: []int{4}, seed: 1},      // odd: 7 → 3
		{n: 2, c: 3, h: 8, w: 6, outs: []int{5}, seed: 2},      // even, non-square
		{n: 4, c: 1, h: 28, w: 28, outs: []int{3}, seed: 3},    // MNIST-sized first stage
		{n: 2, c: 3, h: 2, w: 3, outs: []int{4}, seed: 6},      // tiny
		{n: 5, c: 2, h: 9, w: 9, outs: []int{4, 6}, seed: 7},   // two stages, 9 → 4 → 2
		{n: 3, c: 1, h: 28, w: 28, outs: []int{4, 8}, seed: 8}, // 28 → 14 → 7
		{n: 2, c: 2, h: 14, w: 14, outs: []int{3, 4, 5}, seed: 9},
	}
	chunks := []struct {
		name  string
		bytes int
	}{{"chunk=1image", 1}, {"chunk=default", stageChunkBytes}, {"chunk=2images", 0}}
	for _, nc := range cases {
		for _, ch := range chunks {
			name := fmt.Sprintf("%dx%dx%dx%d%v/%s", nc.n, nc.c, nc.h, nc.w, nc.outs, ch.name)
			t.Run(name, func(t *testing.T) {
				d := nc.data()
				want := stRunTape(t, nc, d, StageOps, true)
				bytes := ch.bytes
				if bytes == 0 { // two images of the first stage per chunk: exercises a remainder chunk
					bytes = 2 * max(nc.c*9, nc.outs[0]) * nc.h * nc.w * 4
				}
				var got netResult
				withStageChunkBytes(bytes, func() { got = stRunTape(t, nc, d, Stage, true) })
				compareNets(t, got, want, stRelTol)
			})
		}
	}
}

// TestStageSkipsUnusedDX checks that the first stage, whose x is a data input,
// skips its input gradient while a later stage computes it, and that the
// parameter gradients still match gorgonia's.
func TestStageSkipsUnusedDX(t *testing.T) {
	nc := stNetCase{n: 3, c: 1, h: 12, w: 12, outs: []int{4, 6}, seed: 11}
	d := nc.data()
	want := stRunTape(t, nc, d, StageOps, false)

	var ops []*fwdOp[float32]
	spy := func(x, w, b *G.Node) (*G.Node, error) {
		y, err := Stage(x, w, b)
		if err == nil {
			ops = append(ops, y.Op().(*fwdOp[float32]))
		}
		return y, err
	}
	got := stRunTape(t, nc, d, spy, false)
	compareNets(t, got, want, stRelTol)
	if len(ops) != 2 {
		t.Fatalf("got %d stage ops, want 2", len(ops))
	}
	if anyUsed(ops[0].dx) {
		t.Errorf("first stage (x is data): needDX = true, want false")
	}
	if !anyUsed(ops[1].dx) {
		t.Errorf("second stage (x is the first stage's output): needDX = false, want true")
	}
}

// TestStageRepeatedRuns checks buffer reuse: the gradients of two runs (with
// Reset in between) accumulate to exactly twice those of one run, as with
// gorgonia's ops, and a third run after zeroing equals the first.
func TestStageRepeatedRuns(t *testing.T) {
	nc := stNetCase{n: 4, c: 2, h: 10, w: 10, outs: []int{3, 5}, seed: 12}
	d := nc.data()
	ng := stBuild(t, nc, d, Stage, true)
	vm := G.NewTapeMachine(ng.g, G.BindDualValues(ng.wrt...))
	defer vm.Close()
	run := func() {
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		vm.Reset()
	}
	run()
	first := ng.result(t, true)
	run()
	second := ng.result(t, true)
	twice := func(s []float32) []float32 {
		out := make([]float32, len(s))
		for i, v := range s {
			out[i] = 2 * v
		}
		return out
	}
	checkClose32(t, "dx after 2 runs", second.dx, twice(first.dx), 0)
	for i := range first.dw {
		checkClose32(t, "dw after 2 runs", second.dw[i], twice(first.dw[i]), 0)
		checkClose32(t, "db after 2 runs", second.db[i], twice(first.db[i]), 0)
	}
	for _, p := range ng.wrt {
		gv, _ := p.Grad()
		clear(gv.Data().([]float32))
	}
	run()
	third := ng.result(t, true)
	compareNets(t, third, first, 0)
}

// TestStageLispMachine checks the DoDiff path (LispMachine) against the
// TapeMachine result of gorgonia's graph.
func TestStageLispMachine(t *testing.T) {
	nc := stNetCase{n: 2, c: 2, h: 9, w: 8, outs: []int{3, 4}, seed: 13}
	d := nc.data()
	want := stRunTape(t, nc, d, StageOps, true)

	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(nc.n, nc.c, nc.h, nc.w), G.WithName("x"),
		G.WithValue(tensorOf32(d.x, nc.n, nc.c, nc.h, nc.w)))
	h := x
	c := nc.c
	var params G.Nodes
	for i, f := range nc.outs {
		w := G.NewTensor(g, tensor.Float32, 4, G.WithShape(f, c, 3, 3), G.WithValue(tensorOf32(d.layers[i].w, f, c, 3, 3)))
		b := G.NewTensor(g, tensor.Float32, 4, G.WithShape(1, f, 1, 1), G.WithValue(tensorOf32(d.layers[i].b, 1, f, 1, 1)))
		params = append(params, w, b)
		h = G.Must(Stage(h, w, b))
		c = f
	}
	r := G.NewTensor(g, tensor.Float32, 4, G.WithShape(d.yShape...), G.WithValue(tensorOf32(d.r, d.yShape...)))
	G.Must(G.Sum(G.Must(G.HadamardProd(h, r)))) // the scalar root the LispMachine differentiates
	m := G.NewLispMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatalf("LispMachine: %v", err)
	}
	got := netResult{y: dataOf32(t, h.Value()), dx: gradOf32(t, x)}
	for i := 0; i < len(params); i += 2 {
		got.dw = append(got.dw, gradOf32(t, params[i]))
		got.db = append(got.db, gradOf32(t, params[i+1]))
	}
	compareNets(t, got, want, stRelTol)
}

// TestStageGorgoniaTies checks the tie rules on exact zeros, which occur in
// real networks (dead ReLU regions with zero bias): gradients must equal
// gorgonia's, whose Rectify derivative is 1 at 0.
func TestStageGorgoniaTies(t *testing.T) {
	nc := stNetCase{n: 2, c: 2, h: 8, w: 8, outs: []int{3, 4}, seed: 15}
	d := nc.data()
	for i := range d.x { // zero blocks and zero biases make whole windows exactly 0
		if (i/8)%4 < 2 {
			d.x[i] = 0
		}
	}
	for _, l := range d.layers {
		clear(l.b)
	}
	want := stRunTape(t, nc, d, StageOps, true)
	got := stRunTape(t, nc, d, Stage, true)
	compareNets(t, got, want, stRelTol)
}

// TestStageConcurrentGraphs runs independent graphs in goroutines (run with
// -race): each must reproduce its sequential result exactly.
func TestStageConcurrentGraphs(t *testing.T) {
	cases := []stNetCase{
		{n: 4, c: 1, h: 12, w: 12, outs: []int{4, 6}, seed: 21},
		{n: 3, c: 2, h: 10, w: 10, outs: []int{5, 3}, seed: 22},
		{n: 4, c: 1, h: 12, w: 12, outs: []int{4, 6}, seed: 23},
	}
	want := make([]netResult, len(cases))
	for i, nc := range cases {
		want[i] = stRunTape(t, nc, nc.data(), Stage, true)
	}
	got := make([]netResult, len(cases))
	var wg sync.WaitGroup
	for i, nc := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ng := stBuild(t, nc, nc.data(), Stage, true)
			vm := G.NewTapeMachine(ng.g, G.BindDualValues(ng.wrt...))
			defer vm.Close()
			for range 3 {
				for _, p := range ng.wrt {
					if gv, err := p.Grad(); err == nil && gv != nil {
						clear(gv.Data().([]float32))
					}
				}
				if err := vm.RunAll(); err != nil {
					t.Error(err)
					return
				}
				vm.Reset()
			}
			got[i] = ng.result(t, true)
		}()
	}
	wg.Wait()
	for i := range cases {
		compareNets(t, got[i], want[i], 0)
	}
}

// TestStageErrors checks that bad operands are reported, not panicked on.
func TestStageErrors(t *testing.T) {
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(2, 3, 8, 8), G.WithName("x"))
	w := G.NewTensor(g, tensor.Float32, 4, G.WithShape(4, 3, 3, 3), G.WithName("w"))
	b := G.NewTensor(g, tensor.Float32, 4, G.WithShape(1, 4, 1, 1), G.WithName("b"))
	cases := []struct {
		name    string
		x, w, b *G.Node
		want    string
	}{
		{"nil x", nil, w, b, "x is nil"},
		{"float64 x", G.NewTensor(g, tensor.Float64, 4, G.WithShape(2, 3, 8, 8)), w, b, "dtype float64"},
		{"3-d x", G.NewTensor(g, tensor.Float32, 3, G.WithShape(3, 8, 8)), w, b, "want 4 dimensions"},
		{"channel mismatch", x, G.NewTensor(g, tensor.Float32, 4, G.WithShape(4, 2, 3, 3)), b, "want (F,3,3,3)"},
		{"5x5 kernel", x, G.NewTensor(g, tensor.Float32, 4, G.WithShape(4, 3, 5, 5)), b, "want (F,3,3,3)"},
		{"1-pixel-high x", G.NewTensor(g, tensor.Float32, 4, G.WithShape(2, 3, 1, 8)), w, b, "H, W ≥ 2"},
		{"bias (1,F)", x, w, G.NewTensor(g, tensor.Float32, 4, G.WithShape(4, 1, 1, 1)), "want (1,4,1,1)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Stage(tc.x, tc.w, tc.b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Stage error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestStageForwardOnlyProgram checks the forward-only program pattern of
// gorgonia-notes.md §6 (CompileFunction on the training graph) and an eval
// graph with another batch size sharing the weights (G.WithValue).
func TestStageForwardOnlyProgram(t *testing.T) {
	nc := stNetCase{n: 3, c: 1, h: 10, w: 10, outs: []int{4, 5}, seed: 16}
	d := nc.data()
	want := stRunTape(t, nc, d, StageOps, false)

	ng := stBuild(t, nc, d, Stage, false)
	prog, locMap, err := G.CompileFunction(ng.g, G.Nodes{ng.x}, G.Nodes{ng.y})
	if err != nil {
		t.Fatal(err)
	}
	fvm := G.NewTapeMachine(ng.g, G.WithPrecompiled(prog, locMap))
	defer fvm.Close()
	if err := fvm.RunAll(); err != nil {
		t.Fatal(err)
	}
	checkClose32(t, "forward-only y", dataOf32(t, ng.y.Value()), want.y, stRelTol)

	// Eval graph: batch 1 (the last image), same weight tensors.
	g := G.NewGraph()
	per := nc.c * nc.h * nc.w
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(1, nc.c, nc.h, nc.w),
		G.WithValue(tensorOf32(d.x[(nc.n-1)*per:], 1, nc.c, nc.h, nc.w)))
	h := x
	for i := 0; i < len(ng.params); i += 2 {
		w := G.NewTensor(g, tensor.Float32, 4, G.WithShape(ng.params[i].Shape()...), G.WithValue(ng.params[i].Value()))
		b := G.NewTensor(g, tensor.Float32, 4, G.WithShape(ng.params[i+1].Shape()...), G.WithValue(ng.params[i+1].Value()))
		h = G.Must(Stage(h, w, b))
	}
	evm := G.NewTapeMachine(g)
	defer evm.Close()
	if err := evm.RunAll(); err != nil {
		t.Fatal(err)
	}
	perOut := len(want.y) / nc.n
	checkClose32(t, "eval graph y (last image)", dataOf32(t, h.Value()), want.y[(nc.n-1)*perOut:], stRelTol)
}

// TestStageReusesBuffers checks that a forward+backward pass allocates only
// headers, not its ~N·F·H·W-sized outputs and scratch, once warm: the
// "memory flat over epochs" property (gorgonia's ops allocate every
// intermediate on every run). Bound: 64 KiB per pass, against 2.6 MB of
// outputs and 2.4 MB of scratch for this shape.
func TestStageReusesBuffers(t *testing.T) {
	nc := stNetCase{n: 32, c: 8, h: 14, w: 14, outs: []int{16}, seed: 17}
	d := nc.data()
	x := tensorOf32(d.x, nc.n, nc.c, nc.h, nc.w)
	w := tensorOf32(d.layers[0].w, 16, nc.c, 3, 3)
	b := tensorOf32(d.layers[0].b, 1, 16, 1, 1)
	gy := tensorOf32(d.r, d.yShape...)
	pass := directPass(t, func(ns G.Nodes) (*G.Node, error) { return Stage(ns[0], ns[1], ns[2]) }, gy, x, w, b)
	pass() // warm up: allocates the buffers
	const runs = 10
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		pass()
	}
	runtime.ReadMemStats(&after)
	per := (after.TotalAlloc - before.TotalAlloc) / runs
	t.Logf("warm forward+backward pass: %d bytes allocated", per)
	if per > 64<<10 {
		t.Errorf("a warm forward+backward pass allocated %d bytes, want ≤ 64 KiB", per)
	}
}

// TestCNNTrainingMatchesGorgonia trains the medium CNN (bench_test.go) for
// 15 Adam steps from the same initial weights on one random batch (so the
// loss must fall: the run is not a no-op), once with gorgonia's ops and once
// with Stage: the losses and final weights must agree. Tolerances: 1e-3
// relative for each loss; 1e-2 for the weights (∞-norm per tensor), because
// Adam moves a weight by about ±lr whatever the size of its gradient, so a
// gradient at rounding level (≈1e-7, e.g. of fc0 weights fed by nearly dead
// features) may move either way: measured 1.1e-3 for fc0.w and ≤ 1.2e-4 for
// every other tensor.
func TestCNNTrainingMatchesGorgonia(t *testing.T) {
	const bs, steps = 16, 15
	xs, ys := cnnBatches(1, bs, 9)
	train := func(stage stageFunc) (losses []float32, weights [][]float32) {
		m := newCNN(t, bs, stage, 4)
		vm := G.NewTapeMachine(m.g, G.BindDualValues(m.params...))
		defer vm.Close()
		for range steps {
			copy(m.xt.Float32s(), xs[0])
			copy(m.yt.Float32s(), ys[0])
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			losses = append(losses, m.lossV.Data().(float32))
			m.opt.step(1e-3)
			vm.Reset()
		}
		for _, p := range m.params {
			weights = append(weights, dataOf32(t, p.Value()))
		}
		return losses, weights
	}
	wantL, wantW := train(StageOps)
	gotL, gotW := train(Stage)
	for i := range wantL {
		if e := math.Abs(float64(gotL[i]-wantL[i])) / math.Abs(float64(wantL[i])); e > 1e-3 {
			t.Errorf("step %d: loss %v, gorgonia %v (relative error %.2g)", i, gotL[i], wantL[i], e)
		}
	}
	if wantL[steps-1] > 0.5*wantL[0] {
		t.Errorf("loss did not halve on one batch: %v → %v", wantL[0], wantL[steps-1])
	}
	for i := range wantW {
		checkClose32(t, fmt.Sprintf("weights %d after %d steps", i, steps), gotW[i], wantW[i], 1e-2)
	}
}
