package fastconv

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// relTol is the tolerance of every comparison against gorgonia's graph and
// PyTorch: the ∞-norm relative error max|got-want| / max|want| must not
// exceed it. Both sides are float32 with different summation orders
// (im2col layout, GEMM blocking), which gives errors around 1e-7–1e-6.
const relTol = 1e-4

// refStage is the gorgonia graph Stage replaces (the model's convStage).
func refStage(x, w, b *G.Node) (*G.Node, error) {
	c, err := G.Conv2d(x, w, tensor.Shape{3, 3}, []int{1, 1}, []int{1, 1}, []int{1, 1})
	if err != nil {
		return nil, err
	}
	if c, err = G.BroadcastAdd(c, b, nil, []byte{0, 2, 3}); err != nil {
		return nil, err
	}
	if c, err = G.Rectify(c); err != nil {
		return nil, err
	}
	return G.MaxPool2D(c, tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2})
}

type stageFunc func(x, w, b *G.Node) (*G.Node, error)

// layer is one conv stage's parameters.
type layer struct{ w, b []float32 }

// netCase describes a stack of stages on x (n,c,h,w) with loss Σ r⊙y.
type netCase struct {
	n, c, h, w int
	outs       []int // channels per stage
	seed       uint64
}

// netData holds random inputs for a netCase.
type netData struct {
	x      []float32
	layers []layer
	r      []float32 // loss weights, shape of the last output
	yShape []int
}

func randSlice(rng *rand.Rand, n int, scale float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = scale * float32(rng.NormFloat64())
	}
	return s
}

func (nc netCase) data() netData {
	rng := rand.New(rand.NewPCG(nc.seed, 7))
	d := netData{x: randSlice(rng, nc.n*nc.c*nc.h*nc.w, 1)}
	c, h, w := nc.c, nc.h, nc.w
	for _, f := range nc.outs {
		d.layers = append(d.layers, layer{
			w: randSlice(rng, f*c*9, float32(1/math.Sqrt(float64(c*9)))),
			b: randSlice(rng, f, 0.1),
		})
		c, h, w = f, (h-2)/2+1, (w-2)/2+1
	}
	d.yShape = []int{nc.n, c, h, w}
	d.r = randSlice(rng, nc.n*c*h*w, 1)
	return d
}

// netResult holds the output and the gradients of one run.
type netResult struct {
	y, dx []float32
	dw    [][]float32
	db    [][]float32
}

// netGraph is a built graph with its nodes.
type netGraph struct {
	g      *G.ExprGraph
	x, y   *G.Node
	loss   *G.Node
	params G.Nodes // w0, b0, w1, b1, ...
	wrt    G.Nodes
}

func tensorOf(data []float32, shape ...int) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(slices.Clone(data)))
}

// build makes the graph; xIsParam makes x a wrt node (so dx is computed).
func build(t testing.TB, nc netCase, d netData, stage stageFunc, xIsParam bool) *netGraph {
	t.Helper()
	g := G.NewGraph()
	ng := &netGraph{g: g}
	ng.x = G.NewTensor(g, tensor.Float32, 4, G.WithShape(nc.n, nc.c, nc.h, nc.w), G.WithName("x"),
		G.WithValue(tensorOf(d.x, nc.n, nc.c, nc.h, nc.w)))
	h := ng.x
	c := nc.c
	for i, f := range nc.outs {
		w := G.NewTensor(g, tensor.Float32, 4, G.WithShape(f, c, 3, 3), G.WithName(fmt.Sprintf("w%d", i)),
			G.WithValue(tensorOf(d.layers[i].w, f, c, 3, 3)))
		b := G.NewTensor(g, tensor.Float32, 4, G.WithShape(1, f, 1, 1), G.WithName(fmt.Sprintf("b%d", i)),
			G.WithValue(tensorOf(d.layers[i].b, 1, f, 1, 1)))
		ng.params = append(ng.params, w, b)
		var err error
		if h, err = stage(h, w, b); err != nil {
			t.Fatalf("stage %d: %v", i, err)
		}
		c = f
	}
	ng.y = h
	r := G.NewTensor(g, tensor.Float32, 4, G.WithShape(d.yShape...), G.WithName("r"),
		G.WithValue(tensorOf(d.r, d.yShape...)))
	ng.loss = G.Must(G.Sum(G.Must(G.HadamardProd(h, r))))
	ng.wrt = slices.Clone(ng.params)
	if xIsParam {
		ng.wrt = append(ng.wrt, ng.x)
	}
	if _, err := G.Grad(ng.loss, ng.wrt...); err != nil {
		t.Fatalf("Grad: %v", err)
	}
	return ng
}

func dataOf(t testing.TB, v G.Value) []float32 {
	t.Helper()
	return slices.Clone(v.Data().([]float32))
}

func gradOf(t testing.TB, n *G.Node) []float32 {
	t.Helper()
	v, err := n.Grad()
	if err != nil {
		t.Fatalf("grad of %v: %v", n.Name(), err)
	}
	return dataOf(t, v)
}

func (ng *netGraph) result(t testing.TB, withDX bool) netResult {
	t.Helper()
	res := netResult{y: dataOf(t, ng.y.Value())}
	for i := 0; i < len(ng.params); i += 2 {
		res.dw = append(res.dw, gradOf(t, ng.params[i]))
		res.db = append(res.db, gradOf(t, ng.params[i+1]))
	}
	if withDX {
		res.dx = gradOf(t, ng.x)
	}
	return res
}

// runTape runs one forward+backward pass with a TapeMachine.
func runTape(t testing.TB, nc netCase, d netData, stage stageFunc, xIsParam bool) netResult {
	t.Helper()
	ng := build(t, nc, d, stage, xIsParam)
	vm := G.NewTapeMachine(ng.g, G.BindDualValues(ng.wrt...))
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatalf("RunAll: %v", err)
	}
	return ng.result(t, xIsParam)
}

// relErr returns max|got-want| / max|want| (∞-norm relative error).
func relErr(got, want []float32) float64 {
	var num, den float64
	for i := range want {
		num = max(num, math.Abs(float64(got[i])-float64(want[i])))
		den = max(den, math.Abs(float64(want[i])))
	}
	if den == 0 {
		return num
	}
	return num / den
}

func checkClose(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return
	}
	e := relErr(got, want)
	if e > tol || math.IsNaN(e) {
		t.Errorf("%s: relative error %.3g > %.0g", what, e, tol)
	} else if testing.Verbose() {
		t.Logf("%s: relative error %.3g", what, e)
	}
}

func compareResults(t *testing.T, got, want netResult, tol float64) {
	t.Helper()
	checkClose(t, "y", got.y, want.y, tol)
	if want.dx != nil {
		checkClose(t, "dx", got.dx, want.dx, tol)
	}
	for i := range want.dw {
		checkClose(t, fmt.Sprintf("dw%d", i), got.dw[i], want.dw[i], tol)
		checkClose(t, fmt.Sprintf("db%d", i), got.db[i], want.db[i], tol)
	}
}

// withChunkBytes runs f with a different chunk size (not parallel-safe).
func withChunkBytes(n int, f func()) {
	old := chunkBytes
	chunkBytes = n
	defer func() { chunkBytes = old }()
	f()
}

// TestStageMatchesGorgonia compares values and all gradients with gorgonia's
// Conv2d+BroadcastAdd+Rectify+MaxPool2D graph (the reference), on random
// data, for even and odd sizes and chunk sizes from one image per chunk to the whole batch.
func TestStageMatchesGorgonia(t *testing.T) {
	cases := []netCase{
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
	}{{"chunk=1image", 1}, {"chunk=default", chunkBytes}, {"chunk=2images", 0}}
	for _, nc := range cases {
		for _, ch := range chunks {
			name := fmt.Sprintf("%dx%dx%dx%d%v/%s", nc.n, nc.c, nc.h, nc.w, nc.outs, ch.name)
			t.Run(name, func(t *testing.T) {
				d := nc.data()
				want := runTape(t, nc, d, refStage, true)
				bytes := ch.bytes
				if bytes == 0 { // two images of the first stage per chunk: exercises a remainder chunk
					bytes = 2 * max(nc.c*9, nc.outs[0]) * nc.h * nc.w * 4
				}
				var got netResult
				withChunkBytes(bytes, func() { got = runTape(t, nc, d, Stage, true) })
				compareResults(t, got, want, relTol)
			})
		}
	}
}

// TestStageSkipsUnusedDX checks that the first stage, whose x is a data input,
// skips its input gradient while a later stage computes it, and that the
// parameter gradients still match gorgonia's.
func TestStageSkipsUnusedDX(t *testing.T) {
	nc := netCase{n: 3, c: 1, h: 12, w: 12, outs: []int{4, 6}, seed: 11}
	d := nc.data()
	want := runTape(t, nc, d, refStage, false)

	var ops []*stageOp
	spy := func(x, w, b *G.Node) (*G.Node, error) {
		y, err := Stage(x, w, b)
		if err == nil {
			ops = append(ops, y.Op().(*stageOp))
		}
		return y, err
	}
	got := runTape(t, nc, d, spy, false)
	compareResults(t, got, want, relTol)
	if len(ops) != 2 {
		t.Fatalf("got %d stage ops, want 2", len(ops))
	}
	if ops[0].s.needDX() {
		t.Errorf("first stage (x is data): needDX = true, want false")
	}
	if !ops[1].s.needDX() {
		t.Errorf("second stage (x is the first stage's output): needDX = false, want true")
	}
}

// TestStageRepeatedRuns checks buffer reuse: the gradients of two runs (with
// Reset in between) accumulate to exactly twice those of one run, as with
// gorgonia's ops, and a third run after zeroing equals the first.
func TestStageRepeatedRuns(t *testing.T) {
	nc := netCase{n: 4, c: 2, h: 10, w: 10, outs: []int{3, 5}, seed: 12}
	d := nc.data()
	ng := build(t, nc, d, Stage, true)
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
	checkClose(t, "dx after 2 runs", second.dx, twice(first.dx), 0)
	for i := range first.dw {
		checkClose(t, "dw after 2 runs", second.dw[i], twice(first.dw[i]), 0)
		checkClose(t, "db after 2 runs", second.db[i], twice(first.db[i]), 0)
	}
	for _, p := range ng.wrt {
		gv, _ := p.Grad()
		clear(gv.Data().([]float32))
	}
	run()
	third := ng.result(t, true)
	compareResults(t, third, first, 0)
}

// TestStageLispMachine checks the DoDiff path (LispMachine) against the
// TapeMachine result of gorgonia's graph.
func TestStageLispMachine(t *testing.T) {
	nc := netCase{n: 2, c: 2, h: 9, w: 8, outs: []int{3, 4}, seed: 13}
	d := nc.data()
	want := runTape(t, nc, d, refStage, true)

	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(nc.n, nc.c, nc.h, nc.w), G.WithName("x"),
		G.WithValue(tensorOf(d.x, nc.n, nc.c, nc.h, nc.w)))
	h := x
	c := nc.c
	var params G.Nodes
	for i, f := range nc.outs {
		w := G.NewTensor(g, tensor.Float32, 4, G.WithShape(f, c, 3, 3), G.WithValue(tensorOf(d.layers[i].w, f, c, 3, 3)))
		b := G.NewTensor(g, tensor.Float32, 4, G.WithShape(1, f, 1, 1), G.WithValue(tensorOf(d.layers[i].b, 1, f, 1, 1)))
		params = append(params, w, b)
		h = G.Must(Stage(h, w, b))
		c = f
	}
	r := G.NewTensor(g, tensor.Float32, 4, G.WithShape(d.yShape...), G.WithValue(tensorOf(d.r, d.yShape...)))
	G.Must(G.Sum(G.Must(G.HadamardProd(h, r)))) // the scalar root the LispMachine differentiates
	m := G.NewLispMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatalf("LispMachine: %v", err)
	}
	got := netResult{y: dataOf(t, h.Value()), dx: gradOf(t, x)}
	for i := 0; i < len(params); i += 2 {
		got.dw = append(got.dw, gradOf(t, params[i]))
		got.db = append(got.db, gradOf(t, params[i+1]))
	}
	compareResults(t, got, want, relTol)
}

// TestStageFiniteDifferences checks all gradients against central finite
// differences (gonum/diff/fd) of L = Σ r⊙Stage(x,w,b) evaluated with the op's
// forward pass only. L is piecewise linear in every input, so a central
// difference is exact unless a ReLU or max switches within ±step; the
// remaining error is float32 rounding of L (≈1e-7·Σ|r·y|) divided by the
// step, about 1e-4 here. Tolerance: 2e-3 relative (∞-norm).
func TestStageFiniteDifferences(t *testing.T) {
	nc := netCase{n: 2, c: 2, h: 5, w: 5, outs: []int{3}, seed: 14}
	d := nc.data()
	got := runTape(t, nc, d, Stage, true)

	// The forward-only loss as a function of one flattened input vector.
	lossOf := func(which int) func([]float64) float64 {
		return func(v []float64) float64 {
			dd := netData{x: d.x, layers: []layer{{w: d.layers[0].w, b: d.layers[0].b}}, r: d.r, yShape: d.yShape}
			p := make([]float32, len(v))
			for i := range v {
				p[i] = float32(v[i])
			}
			switch which {
			case 0:
				dd.x = p
			case 1:
				dd.layers[0].w = p
			case 2:
				dd.layers[0].b = p
			}
			return forwardLoss(t, nc, dd)
		}
	}
	settings := &fd.Settings{Formula: fd.Central, Step: 1e-3}
	for i, in := range []struct {
		name string
		v    []float32
		grad []float32
	}{{"dx", d.x, got.dx}, {"dw", d.layers[0].w, got.dw[0]}, {"db", d.layers[0].b, got.db[0]}} {
		v := make([]float64, len(in.v))
		for j, e := range in.v {
			v[j] = float64(e)
		}
		num := fd.Gradient(nil, lossOf(i), v, settings)
		want := make([]float32, len(num))
		for j, e := range num {
			want[j] = float32(e)
		}
		checkClose(t, in.name+" vs finite differences", in.grad, want, 2e-3)
	}
}

// forwardLoss evaluates Σ r⊙Stage(x,w,b) (one stage) in float64 from the
// op's float32 output.
func forwardLoss(t testing.TB, nc netCase, d netData) float64 {
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(nc.n, nc.c, nc.h, nc.w), G.WithValue(tensorOf(d.x, nc.n, nc.c, nc.h, nc.w)))
	f := nc.outs[0]
	w := G.NewTensor(g, tensor.Float32, 4, G.WithShape(f, nc.c, 3, 3), G.WithValue(tensorOf(d.layers[0].w, f, nc.c, 3, 3)))
	b := G.NewTensor(g, tensor.Float32, 4, G.WithShape(1, f, 1, 1), G.WithValue(tensorOf(d.layers[0].b, 1, f, 1, 1)))
	y := G.Must(Stage(x, w, b))
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	var s float64
	for i, v := range y.Value().Data().([]float32) {
		s += float64(v) * float64(d.r[i])
	}
	return s
}

// TestStageGorgoniaTies checks the tie rules on exact zeros, which occur in
// real networks (dead ReLU regions with zero bias): gradients must equal
// gorgonia's, whose Rectify derivative is 1 at 0.
func TestStageGorgoniaTies(t *testing.T) {
	nc := netCase{n: 2, c: 2, h: 8, w: 8, outs: []int{3, 4}, seed: 15}
	d := nc.data()
	for i := range d.x { // zero blocks and zero biases make whole windows exactly 0
		if (i/8)%4 < 2 {
			d.x[i] = 0
		}
	}
	for _, l := range d.layers {
		clear(l.b)
	}
	want := runTape(t, nc, d, refStage, true)
	got := runTape(t, nc, d, Stage, true)
	compareResults(t, got, want, relTol)
}

// TestStageConcurrentGraphs runs independent graphs in goroutines (run with
// -race): each must reproduce its sequential result exactly.
func TestStageConcurrentGraphs(t *testing.T) {
	cases := []netCase{
		{n: 4, c: 1, h: 12, w: 12, outs: []int{4, 6}, seed: 21},
		{n: 3, c: 2, h: 10, w: 10, outs: []int{5, 3}, seed: 22},
		{n: 4, c: 1, h: 12, w: 12, outs: []int{4, 6}, seed: 23},
	}
	want := make([]netResult, len(cases))
	for i, nc := range cases {
		want[i] = runTape(t, nc, nc.data(), Stage, true)
	}
	got := make([]netResult, len(cases))
	var wg sync.WaitGroup
	for i, nc := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ng := build(t, nc, nc.data(), Stage, true)
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
		compareResults(t, got[i], want[i], 0)
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
	nc := netCase{n: 3, c: 1, h: 10, w: 10, outs: []int{4, 5}, seed: 16}
	d := nc.data()
	want := runTape(t, nc, d, refStage, false)

	ng := build(t, nc, d, Stage, false)
	prog, locMap, err := G.CompileFunction(ng.g, G.Nodes{ng.x}, G.Nodes{ng.y})
	if err != nil {
		t.Fatal(err)
	}
	fvm := G.NewTapeMachine(ng.g, G.WithPrecompiled(prog, locMap))
	defer fvm.Close()
	if err := fvm.RunAll(); err != nil {
		t.Fatal(err)
	}
	checkClose(t, "forward-only y", dataOf(t, ng.y.Value()), want.y, relTol)

	// Eval graph: batch 1 (the last image), same weight tensors.
	g := G.NewGraph()
	per := nc.c * nc.h * nc.w
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(1, nc.c, nc.h, nc.w),
		G.WithValue(tensorOf(d.x[(nc.n-1)*per:], 1, nc.c, nc.h, nc.w)))
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
	checkClose(t, "eval graph y (last image)", dataOf(t, h.Value()), want.y[(nc.n-1)*perOut:], relTol)
}

// TestStageReusesBuffers checks that a forward+backward pass allocates only
// headers, not its ~N·F·H·W-sized outputs and scratch, once warm: the
// "memory flat over epochs" property (gorgonia's ops allocate every
// intermediate on every run). Bound: 64 KiB per pass, against 2.6 MB of
// outputs and 2.4 MB of scratch for this shape.
func TestStageReusesBuffers(t *testing.T) {
	nc := netCase{n: 32, c: 8, h: 14, w: 14, outs: []int{16}, seed: 17}
	d := nc.data()
	geo, err := checkStage(
		G.NewTensor(G.NewGraph(), tensor.Float32, 4, G.WithShape(nc.n, nc.c, nc.h, nc.w)),
		G.NewTensor(G.NewGraph(), tensor.Float32, 4, G.WithShape(16, nc.c, 3, 3)),
		G.NewTensor(G.NewGraph(), tensor.Float32, 4, G.WithShape(1, 16, 1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	op := &stageOp{g: geo, s: &scratch{}}
	x := tensorOf(d.x, nc.n, nc.c, nc.h, nc.w)
	w := tensorOf(d.layers[0].w, 16, nc.c, 3, 3)
	b := tensorOf(d.layers[0].b, 1, 16, 1, 1)
	gy := tensorOf(d.r, d.yShape...)
	bwd := &stageGradOp{op}
	pass := func() {
		if _, err := op.Do(x, w, b); err != nil {
			t.Fatal(err)
		}
		if _, err := bwd.Do(x, w, gy); err != nil {
			t.Fatal(err)
		}
	}
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
	xs, ys := batches(1, bs, 9)
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
			m.adam.step(1e-3)
			vm.Reset()
		}
		for _, p := range m.params {
			weights = append(weights, dataOf(t, p.Value()))
		}
		return losses, weights
	}
	wantL, wantW := train(refStage)
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
		checkClose(t, fmt.Sprintf("weights %d after %d steps", i, steps), gotW[i], wantW[i], 1e-2)
	}
}
