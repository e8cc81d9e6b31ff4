package fused

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// relTol is the tolerance of every comparison against gorgonia's graph: the
// ∞-norm relative error max|got-want| / max|want| must not exceed it. Both
// sides make the same float32 GEMM calls of the same BLAS and the same
// elementwise roundings; the measured error is 0 (bit-identical) in pure Go
// and with OpenBLAS. The tolerance leaves room for a BLAS whose kernels
// depend on operand alignment (float32 rounding, about 1e-7).
const dnRelTol = 1e-5

type denseFunc func(x, w, b *G.Node, relu bool) (*G.Node, error)

// netCase describes a stack of dense layers on x (n,in), ReLU after every
// layer but the last (an MLP), with loss Σ r⊙y.
type dnNetCase struct {
	n, in    int
	outs     []int // widths per layer
	lastRelu bool  // ReLU after the last layer too
	seed     uint64
}

func (nc dnNetCase) relu(i int) bool { return i < len(nc.outs)-1 || nc.lastRelu }

func (nc dnNetCase) String() string {
	return fmt.Sprintf("%dx%d%v relu-last=%v", nc.n, nc.in, nc.outs, nc.lastRelu)
}

type dnNetData struct {
	x      []float32
	layers []layer32
	r      []float32 // loss weights, shape of the last output
}

func (nc dnNetCase) data() dnNetData {
	rng := rand.New(rand.NewPCG(nc.seed, 7))
	d := dnNetData{x: randn32(rng, nc.n*nc.in, 1)}
	in := nc.in
	for _, out := range nc.outs {
		d.layers = append(d.layers, layer32{
			w: randn32(rng, in*out, float32(1/math.Sqrt(float64(in)))),
			b: randn32(rng, out, 0.1),
		})
		in = out
	}
	d.r = randn32(rng, nc.n*in, 1)
	return d
}

// build makes the graph; xIsParam makes x a wrt node (so dx is computed).
func dnBuild(t testing.TB, nc dnNetCase, d dnNetData, layerFn denseFunc, xIsParam bool) *netGraph {
	t.Helper()
	g := G.NewGraph()
	ng := &netGraph{g: g}
	ng.x = G.NewMatrix(g, tensor.Float32, G.WithShape(nc.n, nc.in), G.WithName("x"),
		G.WithValue(tensorOf32(d.x, nc.n, nc.in)))
	h, in := ng.x, nc.in
	for i, out := range nc.outs {
		w := G.NewMatrix(g, tensor.Float32, G.WithShape(in, out), G.WithName(fmt.Sprintf("w%d", i)),
			G.WithValue(tensorOf32(d.layers[i].w, in, out)))
		b := G.NewMatrix(g, tensor.Float32, G.WithShape(1, out), G.WithName(fmt.Sprintf("b%d", i)),
			G.WithValue(tensorOf32(d.layers[i].b, 1, out)))
		ng.params = append(ng.params, w, b)
		var err error
		if h, err = layerFn(h, w, b, nc.relu(i)); err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		in = out
	}
	r := G.NewMatrix(g, tensor.Float32, G.WithShape(nc.n, in), G.WithName("r"), G.WithValue(tensorOf32(d.r, nc.n, in)))
	ng.finish(t, h, r, xIsParam)
	return ng
}

// runTape runs one forward+backward pass with a TapeMachine.
func dnRunTape(t testing.TB, nc dnNetCase, d dnNetData, layerFn denseFunc, xIsParam bool) netResult {
	t.Helper()
	return dnBuild(t, nc, d, layerFn, xIsParam).runTape(t, xIsParam)
}

// TestDenseMatchesGorgonia compares values and all gradients (x, every w
// and b) with gorgonia's Mul+BroadcastAdd+Rectify graph (the reference) on
// random data: single layers with and without ReLU, MLP stacks, a batch of
// one row and a layer of width one.
func TestDenseMatchesGorgonia(t *testing.T) {
	cases := []dnNetCase{
		{n: 5, in: 7, outs: []int{3}, seed: 1},                      // one linear layer
		{n: 5, in: 7, outs: []int{3}, lastRelu: true, seed: 2},      // one ReLU layer
		{n: 1, in: 4, outs: []int{6, 2}, seed: 3},                   // batch of one
		{n: 9, in: 1, outs: []int{1, 5}, lastRelu: true, seed: 4},   // width one
		{n: 16, in: 28, outs: []int{20, 20, 10}, seed: 5},           // small MLP
		{n: 32, in: 784, outs: []int{64, 10}, seed: 6},              // MNIST-sized input
		{n: 13, in: 31, outs: []int{17, 11, 7, 3}, seed: 7},         // odd sizes, four layers
		{n: 3, in: 5, outs: []int{4, 4}, lastRelu: true, seed: 8},   // ReLU everywhere
		{n: 64, in: 100, outs: []int{130, 10}, seed: 9},             // wide hidden layer
		{n: 2, in: 3, outs: []int{2, 2, 2, 2, 2, 2}, seed: 10},      // deep and narrow
		{n: 128, in: 50, outs: []int{512, 512, 10}, seed: 11},       // the benchmark MLP's widths
		{n: 4, in: 6, outs: []int{5}, lastRelu: false, seed: 12},    // dx of a linear layer
		{n: 4, in: 6, outs: []int{5, 1}, lastRelu: false, seed: 13}, // one output
	}
	for _, nc := range cases {
		t.Run(nc.String(), func(t *testing.T) {
			d := nc.data()
			want := dnRunTape(t, nc, d, DenseOps, true)
			got := dnRunTape(t, nc, d, Dense, true)
			compareNets(t, got, want, dnRelTol)
		})
	}
}

// TestDenseSkipsUnusedDX checks that the first layer, whose x is a data
// input, skips its input gradient while later layers compute it, that the
// skipped dx is zero, and that the parameter gradients still match
// gorgonia's.
func TestDenseSkipsUnusedDX(t *testing.T) {
	nc := dnNetCase{n: 6, in: 9, outs: []int{8, 7, 3}, seed: 11}
	d := nc.data()
	want := dnRunTape(t, nc, d, DenseOps, false)

	var ops []*fwdOp[float32]
	spy := func(x, w, b *G.Node, relu bool) (*G.Node, error) {
		y, err := Dense(x, w, b, relu)
		if err == nil {
			ops = append(ops, y.Op().(*fwdOp[float32]))
		}
		return y, err
	}
	got := dnRunTape(t, nc, d, spy, false)
	compareNets(t, got, want, dnRelTol)
	if len(ops) != 3 {
		t.Fatalf("got %d dense ops, want 3", len(ops))
	}
	if anyUsed(ops[0].dx) {
		t.Errorf("first layer (x is data): needDX = true, want false")
	}
	for i, op := range ops[1:] {
		if !anyUsed(op.dx) {
			t.Errorf("layer %d (x is the previous layer's output): needDX = false, want true", i+1)
		}
	}
	for i, v := range ops[0].grads[0] {
		if v != 0 {
			t.Fatalf("skipped dx[%d] = %v, want 0", i, v)
		}
	}
}

// TestDenseSharedInput checks gradient accumulation through the graph: x
// feeds two layers and a hidden layer feeds two heads, so gorgonia sums two
// gradient contributions for x and for the hidden output (possibly in place
// into one of the op's buffers); the result must match the reference.
func TestDenseSharedInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 1))
	const n, in, hid, out = 7, 5, 6, 3
	x := randn32(rng, n*in, 1)
	ws := [][]float32{randn32(rng, in*hid, 0.5), randn32(rng, in*hid, 0.5), randn32(rng, hid*out, 0.5), randn32(rng, hid*out, 0.5)}
	bs := [][]float32{randn32(rng, hid, 0.1), randn32(rng, hid, 0.1), randn32(rng, out, 0.1), randn32(rng, out, 0.1)}
	r1, r2 := randn32(rng, n*out, 1), randn32(rng, n*out, 1)
	run := func(fn denseFunc) (res []([]float32)) {
		g := G.NewGraph()
		xn := G.NewMatrix(g, tensor.Float32, G.WithShape(n, in), G.WithName("x"), G.WithValue(tensorOf32(x, n, in)))
		var params G.Nodes
		for i := range ws {
			rows := in
			if i >= 2 {
				rows = hid
			}
			params = append(params,
				G.NewMatrix(g, tensor.Float32, G.WithShape(rows, len(bs[i])), G.WithName(fmt.Sprintf("w%d", i)),
					G.WithValue(tensorOf32(ws[i], rows, len(bs[i])))),
				G.NewMatrix(g, tensor.Float32, G.WithShape(1, len(bs[i])), G.WithName(fmt.Sprintf("b%d", i)),
					G.WithValue(tensorOf32(bs[i], 1, len(bs[i])))))
		}
		h1 := G.Must(fn(xn, params[0], params[1], true))
		h2 := G.Must(fn(xn, params[2], params[3], true))
		h := G.Must(G.Add(h1, h2))
		y1 := G.Must(fn(h, params[4], params[5], false))
		y2 := G.Must(fn(h, params[6], params[7], false))
		rn1 := G.NewMatrix(g, tensor.Float32, G.WithShape(n, out), G.WithValue(tensorOf32(r1, n, out)))
		rn2 := G.NewMatrix(g, tensor.Float32, G.WithShape(n, out), G.WithValue(tensorOf32(r2, n, out)))
		loss := G.Must(G.Add(G.Must(G.Sum(G.Must(G.HadamardProd(y1, rn1)))), G.Must(G.Sum(G.Must(G.HadamardProd(y2, rn2))))))
		wrt := append(slices.Clone(params), xn)
		if _, err := G.Grad(loss, wrt...); err != nil {
			t.Fatal(err)
		}
		vm := G.NewTapeMachine(g, G.BindDualValues(wrt...))
		defer vm.Close()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		res = append(res, dataOf32(t, y1.Value()), dataOf32(t, y2.Value()))
		for _, p := range wrt {
			res = append(res, gradOf32(t, p))
		}
		return res
	}
	want, got := run(DenseOps), run(Dense)
	for i := range want {
		checkClose32(t, fmt.Sprintf("output/gradient %d", i), got[i], want[i], dnRelTol)
	}
}

// TestDenseRepeatedRuns checks buffer reuse: with dual values bound, the
// gradients of two runs (with Reset in between) accumulate to exactly twice
// those of one run, as with gorgonia's ops, and a third run after zeroing
// equals the first.
func TestDenseRepeatedRuns(t *testing.T) {
	nc := dnNetCase{n: 8, in: 10, outs: []int{9, 4}, seed: 12}
	d := nc.data()
	ng := dnBuild(t, nc, d, Dense, true)
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

// TestDenseUnboundGradients checks the way internal/train reads gradients:
// a TapeMachine without BindDualValues, where a parameter's Grad() is its
// gradient node's value, which every run overwrites with that run's
// gradient (here after changing the input between runs).
func TestDenseUnboundGradients(t *testing.T) {
	nc := dnNetCase{n: 8, in: 10, outs: []int{9, 4}, seed: 19}
	d1 := nc.data()
	d2 := nc.data()
	for i := range d2.x {
		d2.x[i] = -0.5 * d1.x[i]
	}
	want1 := dnRunTape(t, nc, d1, DenseOps, false)
	want2 := dnRunTape(t, nc, d2, DenseOps, false)
	ng := dnBuild(t, nc, d1, Dense, false)
	vm := G.NewTapeMachine(ng.g)
	defer vm.Close()
	for i, want := range []netResult{want1, want2, want1} {
		copy(ng.x.Value().Data().([]float32), []([]float32){d1.x, d2.x, d1.x}[i])
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		compareNets(t, ng.result(t, false), want, dnRelTol)
		vm.Reset()
	}
}

// TestDenseLispMachine checks the DoDiff path (LispMachine) against the
// TapeMachine result of gorgonia's graph.
func TestDenseLispMachine(t *testing.T) {
	nc := dnNetCase{n: 6, in: 8, outs: []int{7, 5, 3}, seed: 13}
	d := nc.data()
	want := dnRunTape(t, nc, d, DenseOps, true)

	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(nc.n, nc.in), G.WithName("x"), G.WithValue(tensorOf32(d.x, nc.n, nc.in)))
	h, in := x, nc.in
	var params G.Nodes
	for i, out := range nc.outs {
		w := G.NewMatrix(g, tensor.Float32, G.WithShape(in, out), G.WithValue(tensorOf32(d.layers[i].w, in, out)))
		b := G.NewMatrix(g, tensor.Float32, G.WithShape(1, out), G.WithValue(tensorOf32(d.layers[i].b, 1, out)))
		params = append(params, w, b)
		h = G.Must(Dense(h, w, b, nc.relu(i)))
		in = out
	}
	r := G.NewMatrix(g, tensor.Float32, G.WithShape(nc.n, in), G.WithValue(tensorOf32(d.r, nc.n, in)))
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
	compareNets(t, got, want, dnRelTol)
}

// TestDenseGorgoniaTies checks the ReLU on exact zeros, which occur in real
// networks (zero inputs with zero biases): the gradient must pass where the
// pre-activation is exactly 0 (gorgonia's Rectify is x·(x ≥ 0)), and
// non-finite pre-activations must give what gorgonia gives (NaN for NaN and
// −∞, +∞ for +∞), in values and gradients.
func TestDenseGorgoniaTies(t *testing.T) {
	nc := dnNetCase{n: 6, in: 8, outs: []int{5, 4}, lastRelu: true, seed: 15}
	d := nc.data()
	for i := range d.x { // rows 0, 2, 4 all zero: every pre-activation of the first layer is exactly 0
		if (i/nc.in)%2 == 0 {
			d.x[i] = 0
		}
	}
	for _, l := range d.layers {
		clear(l.b)
	}
	want := dnRunTape(t, nc, d, DenseOps, true)
	got := dnRunTape(t, nc, d, Dense, true)
	compareNets(t, got, want, dnRelTol)
	nonzero := 0
	for _, v := range got.db[0] {
		if v != 0 {
			nonzero++
		}
	}
	if nonzero == 0 {
		t.Errorf("db0 is all zero: the test has no gradient through exact-zero pre-activations")
	}

	// Non-finite inputs: row 1 gets NaN, row 3 +∞ and −∞ (through weights
	// of both signs, pre-activations of ±∞ and NaN).
	d.x[1*nc.in] = float32(math.NaN())
	d.x[3*nc.in+2] = float32(math.Inf(1))
	d.x[3*nc.in+5] = float32(math.Inf(-1))
	want = dnRunTape(t, nc, d, DenseOps, true)
	got = dnRunTape(t, nc, d, Dense, true)
	compareNets(t, got, want, dnRelTol)
}

// TestDenseConcurrentGraphs runs independent graphs in goroutines (run with
// -race): each must reproduce its sequential result exactly.
func TestDenseConcurrentGraphs(t *testing.T) {
	cases := []dnNetCase{
		{n: 8, in: 12, outs: []int{10, 4}, seed: 21},
		{n: 6, in: 9, outs: []int{7, 7, 3}, seed: 22},
		{n: 8, in: 12, outs: []int{10, 4}, seed: 23},
		{n: 5, in: 30, outs: []int{16, 2}, seed: 24},
	}
	want := make([]netResult, len(cases))
	for i, nc := range cases {
		want[i] = dnRunTape(t, nc, nc.data(), Dense, true)
	}
	got := make([]netResult, len(cases))
	var wg sync.WaitGroup
	for i, nc := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ng := dnBuild(t, nc, nc.data(), Dense, true)
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

// TestDenseErrors checks that bad operands are reported, not panicked on.
func TestDenseErrors(t *testing.T) {
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(4, 3), G.WithName("x"))
	w := G.NewMatrix(g, tensor.Float32, G.WithShape(3, 5), G.WithName("w"))
	b := G.NewMatrix(g, tensor.Float32, G.WithShape(1, 5), G.WithName("b"))
	cases := []struct {
		name    string
		x, w, b *G.Node
		want    string
	}{
		{"nil x", nil, w, b, "x is nil"},
		{"nil b", x, w, nil, "b is nil"},
		{"float64 w", x, G.NewMatrix(g, tensor.Float64, G.WithShape(3, 5)), b, "dtype float64"},
		{"vector x", G.NewVector(g, tensor.Float32, G.WithShape(3)), w, b, "want a matrix"},
		{"4-d x", G.NewTensor(g, tensor.Float32, 4, G.WithShape(4, 3, 1, 1)), w, b, "want a matrix"},
		{"inner mismatch", x, G.NewMatrix(g, tensor.Float32, G.WithShape(4, 5)), b, "want (3,out)"},
		{"bias (5,1)", x, w, G.NewMatrix(g, tensor.Float32, G.WithShape(5, 1)), "want (1,5)"},
		{"bias too short", x, w, G.NewMatrix(g, tensor.Float32, G.WithShape(1, 4)), "want (1,5)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Dense(tc.x, tc.w, tc.b, true)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Dense error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestDenseForwardOnlyProgram checks the forward-only program pattern of
// gorgonia-notes.md §6 (CompileFunction on the training graph) and an eval
// graph with another batch size sharing the weights (G.WithValue).
func TestDenseForwardOnlyProgram(t *testing.T) {
	nc := dnNetCase{n: 5, in: 9, outs: []int{6, 4}, seed: 16}
	d := nc.data()
	want := dnRunTape(t, nc, d, DenseOps, false)

	ng := dnBuild(t, nc, d, Dense, false)
	prog, locMap, err := G.CompileFunction(ng.g, G.Nodes{ng.x}, G.Nodes{ng.y})
	if err != nil {
		t.Fatal(err)
	}
	fvm := G.NewTapeMachine(ng.g, G.WithPrecompiled(prog, locMap))
	defer fvm.Close()
	if err := fvm.RunAll(); err != nil {
		t.Fatal(err)
	}
	checkClose32(t, "forward-only y", dataOf32(t, ng.y.Value()), want.y, dnRelTol)

	// Eval graph: batch 2 (the last two rows), same weight tensors.
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(2, nc.in), G.WithValue(tensorOf32(d.x[(nc.n-2)*nc.in:], 2, nc.in)))
	h := x
	for i := 0; i < len(ng.params); i += 2 {
		w := G.NewMatrix(g, tensor.Float32, G.WithShape(ng.params[i].Shape()...), G.WithValue(ng.params[i].Value()))
		b := G.NewMatrix(g, tensor.Float32, G.WithShape(ng.params[i+1].Shape()...), G.WithValue(ng.params[i+1].Value()))
		h = G.Must(Dense(h, w, b, nc.relu(i/2)))
	}
	evm := G.NewTapeMachine(g)
	defer evm.Close()
	if err := evm.RunAll(); err != nil {
		t.Fatal(err)
	}
	out := nc.outs[len(nc.outs)-1]
	checkClose32(t, "eval graph y (last 2 rows)", dataOf32(t, h.Value()), want.y[(nc.n-2)*out:], dnRelTol)
}

// TestDenseReusesBuffers checks that a warm forward+backward pass allocates
// only headers, not its outputs and scratch. Bound: 8 KiB per pass, against
// 1.2 MB of outputs and scratch for this shape.
func TestDenseReusesBuffers(t *testing.T) {
	const n, in, out = 64, 300, 200
	rng := rand.New(rand.NewPCG(17, 1))
	x := tensorOf32(randn32(rng, n*in, 1), n, in)
	w := tensorOf32(randn32(rng, in*out, 0.1), in, out)
	b := tensorOf32(randn32(rng, out, 0.1), 1, out)
	gy := tensorOf32(randn32(rng, n*out, 1), n, out)
	pass := directPass(t, func(ns G.Nodes) (*G.Node, error) { return Dense(ns[0], ns[1], ns[2], true) }, gy, x, w, b)
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
	if per > 8<<10 {
		t.Errorf("a warm forward+backward pass allocated %d bytes, want ≤ 8 KiB", per)
	}
}

// TestMLPTrainingMatchesGorgonia trains an MLP (64-48-32-10, batch 32) for
// 20 Adam steps (lr 1e-2) from the same initial weights on one random batch (so the
// loss must fall: the run is not a no-op), once with gorgonia's layers and
// once with Dense: the losses and final weights must agree. Tolerances: 1e-5
// relative for each loss and 1e-4 for the weights (∞-norm per tensor). Adam
// moves a weight by about ±lr whatever the size of its gradient, so a
// gradient that differs at rounding level can flip a small update; measured:
// identical (error 0) in pure Go and with OpenBLAS, whose GEMMs see the same
// operands in both graphs.
func TestMLPTrainingMatchesGorgonia(t *testing.T) {
	const bs, d, classes, steps = 32, 64, 10, 20
	xs, ys := mlpBatches(1, bs, d, classes, 9)
	train := func(fn denseFunc) (losses []float32, weights [][]float32) {
		m := newMLP(t, bs, d, []int{48, 32}, classes, fn, 4)
		vm := G.NewTapeMachine(m.g, G.BindDualValues(m.params...))
		defer vm.Close()
		for range steps {
			copy(m.xt.Float32s(), xs[0])
			copy(m.yt.Float32s(), ys[0])
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
			losses = append(losses, m.lossV.Data().(float32))
			m.opt.step(1e-2)
			vm.Reset()
		}
		for _, p := range m.params {
			weights = append(weights, dataOf32(t, p.Value()))
		}
		return losses, weights
	}
	wantL, wantW := train(DenseOps)
	gotL, gotW := train(Dense)
	for i := range wantL {
		if e := math.Abs(float64(gotL[i]-wantL[i])) / math.Abs(float64(wantL[i])); e > 1e-5 {
			t.Errorf("step %d: loss %v, gorgonia %v (relative error %.2g)", i, gotL[i], wantL[i], e)
		}
	}
	if wantL[steps-1] > 0.5*wantL[0] {
		t.Errorf("loss did not halve on one batch: %v → %v", wantL[0], wantL[steps-1])
	}
	for i := range wantW {
		checkClose32(t, fmt.Sprintf("weights %d after %d steps", i, steps), gotW[i], wantW[i], 1e-4)
	}
}
