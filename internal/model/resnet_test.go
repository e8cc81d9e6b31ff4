package model

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/fused"
	"github.com/kdcal/kdcal/internal/npyfile"
	"github.com/kdcal/kdcal/internal/spec"
	"github.com/kdcal/kdcal/internal/testutil"
)

func resnetSpec(depth, width int) config.ModelSpec {
	return config.ModelSpec{"depth": depth, "width": width}
}

func resnetWeights(t testing.TB, depth, width int, in spec.Shape, dt tensor.Dtype, seed uint64) *Weights {
	t.Helper()
	a, err := NewArch("resnet", resnetSpec(depth, width), in.C, in.H, in.W, in.Classes)
	if err != nil {
		t.Fatal(err)
	}
	w := NewWeights(a, dt)
	w.Init(rand.New(rand.NewPCG(seed, 1)))
	return w
}

// trainForwards runs n training forward passes of batch bs on random
// inputs, so that the running statistics and num_batches_tracked move away
// from torch's initial state (what a checkpoint must then carry).
func trainForwards(t testing.TB, w *Weights, bs, n int) {
	t.Helper()
	g := G.NewGraph()
	gr, err := Build(g, w, bs)
	if err != nil {
		t.Fatal(err)
	}
	xt := tensor.New(tensor.WithShape(gr.X.Shape()...), tensor.Of(w.Dtype))
	if err := G.Let(gr.X, xt); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	rng := rand.New(rand.NewPCG(11, 12))
	for range n {
		switch d := xt.Data().(type) {
		case []float32:
			for i := range d {
				d[i] = float32(1 + 2*rng.NormFloat64())
			}
		case []float64:
			for i := range d {
				d[i] = 1 + 2*rng.NormFloat64()
			}
		}
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		vm.Reset()
	}
}

// TestResNetDescriptorMatchesFused: the descriptor in internal/spec walks
// the network without importing fused; its parameters and buffers are
// fused.NewResNet's state entries, in the same order, names and torch
// shapes, and its parameter count fused's (whose counts the fused torch
// test checks against torch for ten sizes).
func TestResNetDescriptorMatchesFused(t *testing.T) {
	for _, tt := range []struct {
		depth, width int
		in           spec.Shape
	}{
		{8, 4, spec.Shape{C: 1, H: 28, W: 28, Classes: 10}},
		{14, 8, spec.Shape{C: 3, H: 32, W: 32, Classes: 100}},
		{20, 6, spec.Shape{C: 2, H: 7, W: 9, Classes: 3}},
		{56, 16, spec.Shape{C: 1, H: 28, W: 28, Classes: 10}},
	} {
		a, err := NewArch("resnet", resnetSpec(tt.depth, tt.width), tt.in.C, tt.in.H, tt.in.W, tt.in.Classes)
		if err != nil {
			t.Fatal(err)
		}
		r, err := fused.NewResNet(fusedSpec(a), tensor.Float32)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, e := range r.State {
			want = append(want, e.Name+tensorShape(e.Shape))
		}
		var got []string
		ps, bs := a.Params(), a.Desc().Buffers()
		// State order is per BN layer: conv weight, γ, β, mean, var, tracked.
		for i := 0; i < len(bs); i += 3 {
			c := i / 3
			for _, p := range append(ps[3*c:3*c+3:3*c+3], bs[i:i+3]...) {
				got = append(got, p.Name+tensorShape(p.TorchShape()))
			}
		}
		for _, p := range ps[len(ps)-2:] {
			got = append(got, p.Name+tensorShape(p.TorchShape()))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%v: descriptor\n%v\nfused\n%v", a, got, want)
		}
		if a.NumParams() != r.NumParams() {
			t.Errorf("%v: %d params, fused %d", a, a.NumParams(), r.NumParams())
		}
	}
}

// TestResNetSpecErrors: bad specs are errors naming the key.
func TestResNetSpecErrors(t *testing.T) {
	for _, tt := range []struct {
		spec config.ModelSpec
		want string
	}{
		{config.ModelSpec{"depth": 10, "width": 8}, "depth: 10 is not 6n+2"},
		{config.ModelSpec{"depth": 8, "width": 5}, "width: 5 must be even"},
		{config.ModelSpec{"depth": 8}, "width: missing"},
		{config.ModelSpec{"depth": []int{8}, "width": 4}, "depth: [8] is not one whole number"},
		{config.ModelSpec{"depth": 8, "width": 4, "hidden": []int{3}}, "hidden: unknown key (keys: depth, width)"},
	} {
		_, err := NewArch("resnet", tt.spec, 1, 8, 8, 3)
		if err == nil || !containsStr(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want it to contain %q", tt.spec, err, tt.want)
		}
	}
}

func containsStr(s, sub string) bool { return strings.Contains(s, sub) }

// TestResNetSaveLoadCarriesBuffers: after training forwards, model.Save
// writes every BatchNorm buffer under its torch name (running statistics
// F32, num_batches_tracked I64), Load restores them, and the evaluation
// logits (which read the running statistics) are bit-identical.
func TestResNetSaveLoadCarriesBuffers(t *testing.T) {
	in := spec.Shape{C: 1, H: 9, W: 9, Classes: 4}
	w := resnetWeights(t, 14, 4, in, tensor.Float32, 1)
	trainForwards(t, w, 6, 3)
	if *w.Counters[2] != 3 { // bn1.num_batches_tracked (buffers: mean, var, tracked per BN)
		t.Fatalf("num_batches_tracked %d after 3 training forwards", *w.Counters[2])
	}
	x := randomInputs(7, in.D())
	want := evalLogits(t, w, x, 7)
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := Save(path, w, Meta{Dataset: "synthetic", Scale: 1}); err != nil {
		t.Fatal(err)
	}
	st, _, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if tv, ok := st.Tensor("layer3.1.bn2.num_batches_tracked"); !ok || tv.DType().String() != "I64" {
		t.Fatalf("num_batches_tracked not stored as I64: %v", ok)
	}
	if tv, ok := st.Tensor("layer2.0.bn1.running_var"); !ok || tv.DType().String() != "F32" {
		t.Fatalf("running_var not stored as F32: %v", ok)
	}
	w2, _, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range w2.Buffers {
		if c := w2.Counters[i]; c != nil {
			if *c != 3 {
				t.Errorf("%s = %d after Load, want 3", p.Name, *c)
			}
			continue
		}
		if !slices.Equal(w2.B[i].Data().([]float32), w.B[i].Data().([]float32)) {
			t.Errorf("%s differs after Load", p.Name)
		}
		if p.Name == "bn1.running_var" && slices.Equal(w.B[i].Data().([]float32), []float32{1, 1, 1, 1}) {
			t.Error("bn1.running_var is still torch's initial 1: the training forwards did not update it")
		}
	}
	got := evalLogits(t, w2, x, 7)
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("logit %d: %v after Load, %v before", i, got[i], want[i])
		}
	}
	// CopyFrom carries the buffers too (a best-epoch snapshot).
	w3 := resnetWeights(t, 14, 4, in, tensor.Float32, 9)
	if err := w3.CopyFrom(w); err != nil {
		t.Fatal(err)
	}
	if got := evalLogits(t, w3, x, 7); !slices.Equal(got, want) || *w3.Counters[5] != 3 {
		t.Error("CopyFrom does not reproduce the evaluation logits and counters")
	}
}

func evalLogits(t testing.TB, w *Weights, x []float32, n int) []float32 {
	t.Helper()
	ev, err := NewEvaluator(w, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	out, err := ev.Logits(nil, x, n)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestResNetGradientsMatchFiniteDifferences: the gradients of the family's
// training graph (model.Build, float64) of L = Σ r∘logits against central
// differences (h = 1e-5) for three entries of every parameter tensor;
// tolerance 1e-6·max(1, |g|) (the truncation error is O(h²·L‴) ≈ 1e-10,
// rounding 1e-16/h ≈ 1e-11). BatchNorm uses the batch statistics, so the
// loss depends on every example's input through them.
func TestResNetGradientsMatchFiniteDifferences(t *testing.T) {
	in := spec.Shape{C: 2, H: 6, W: 6, Classes: 3}
	const bs = 4
	w := resnetWeights(t, 8, 2, in, tensor.Float64, 5)
	rng := rand.New(rand.NewPCG(21, 22))
	for i, p := range w.Params { // γ, β and fc bias away from 1, 0, 0
		if p.Kind == spec.Vector {
			d := w.T[i].Data().([]float64)
			for j := range d {
				d[j] += 0.3 * rng.NormFloat64()
			}
		}
	}
	g := G.NewGraph()
	gr, err := Build(g, w, bs)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float64, bs*in.D())
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	r := make([]float64, bs*in.Classes)
	for i := range r {
		r[i] = rng.NormFloat64()
	}
	if err := G.Let(gr.X, tensor.New(tensor.WithShape(gr.X.Shape()...), tensor.WithBacking(x))); err != nil {
		t.Fatal(err)
	}
	rn := G.NewMatrix(g, tensor.Float64, G.WithShape(bs, in.Classes), G.WithName("r"),
		G.WithValue(tensor.New(tensor.WithShape(bs, in.Classes), tensor.WithBacking(r))))
	loss := G.Must(G.Sum(G.Must(G.HadamardProd(gr.Logits, rn))))
	if _, err := G.Grad(loss, gr.Params...); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	run := func() float64 {
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		defer vm.Reset()
		return loss.Value().Data().(float64)
	}
	run()
	grads := make([][]float64, len(gr.Params))
	for i, p := range gr.Params {
		gv, err := p.Grad()
		if err != nil {
			t.Fatal(err)
		}
		grads[i] = slices.Clone(gv.Data().([]float64))
	}
	const h = 1e-5
	worst := 0.0
	for i, p := range w.Params {
		d := w.T[i].Data().([]float64)
		for _, j := range []int{0, len(d) / 2, len(d) - 1} {
			v := d[j]
			d[j] = v + h
			lp := run()
			d[j] = v - h
			lm := run()
			d[j] = v
			fd := (lp - lm) / (2 * h)
			e := math.Abs(fd-grads[i][j]) / math.Max(1, math.Abs(grads[i][j]))
			worst = math.Max(worst, e)
			if e > 1e-6 {
				t.Errorf("%s[%d]: gradient %.10g, finite difference %.10g", p.Name, j, grads[i][j], fd)
			}
		}
	}
	t.Logf("worst relative difference %.2g over %d parameter tensors", worst, len(w.Params))
}

// TestResNetMatchesTorch: scripts/torch_resnet.py builds a torch
// nn.Module, loads kdcal's model.safetensors into it with
// load_state_dict(strict=True) and computes eval-mode logits (running
// statistics, after kdcal's training forwards moved them) and train-mode
// logits (batch statistics of the same 16 rows). Both agree with kdcal's
// Evaluator and training graph to 3e-6 of the largest |logit| (fused's
// forward tolerance against torch: float32 sums in different orders),
// and torch sees the same parameter count and num_batches_tracked.
func TestResNetMatchesTorch(t *testing.T) {
	testutil.Slow(t, "about 10 s: torch starts once per size")
	testutil.RequirePython(t, "numpy", "torch")
	script := filepath.Join(testutil.RepoRoot(t), "scripts", "torch_resnet.py")
	for _, tt := range []struct {
		depth, width int
		in           spec.Shape
	}{
		{8, 4, spec.Shape{C: 1, H: 28, W: 28, Classes: 10}},
		{14, 8, spec.Shape{C: 1, H: 28, W: 28, Classes: 10}},
		{20, 4, spec.Shape{C: 3, H: 11, W: 13, Classes: 5}},
	} {
		w := resnetWeights(t, tt.depth, tt.width, tt.in, tensor.Float32, 2)
		t.Run(w.Arch.String(), func(t *testing.T) {
			const n = 16
			trainForwards(t, w, 8, 4)
			dir := t.TempDir()
			mp, xp := filepath.Join(dir, "model.safetensors"), filepath.Join(dir, "x.npy")
			if err := Save(mp, w, Meta{}); err != nil {
				t.Fatal(err)
			}
			x := randomInputs(n, w.Arch.D())
			if err := npyfile.WriteFloat32(xp, x, n, w.Arch.D()); err != nil {
				t.Fatal(err)
			}
			eval := evalLogits(t, w, x, n)
			train := trainLogits(t, w, x, n)
			out, err := exec.Command(testutil.Python, script, mp, xp, filepath.Join(dir, "out")).CombinedOutput()
			if err != nil {
				t.Fatalf("torch_resnet.py: %v\n%s", err, out)
			}
			var r struct{ Params, Tracked int }
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("torch_resnet.py output %q: %v", out, err)
			}
			if r.Params != w.Arch.NumParams() || r.Tracked != 4 {
				t.Errorf("torch: %d params, num_batches_tracked %d; want %d and 4", r.Params, r.Tracked, w.Arch.NumParams())
			}
			for _, c := range []struct {
				name string
				got  []float32
			}{{"logits_eval", eval}, {"logits_train", train}} {
				ref, rows, cols, err := npyfile.ReadMatrix(filepath.Join(dir, "out", c.name+".npy"))
				if err != nil || rows != n || cols != w.Arch.Classes {
					t.Fatalf("%s: %d×%d, %v", c.name, rows, cols, err)
				}
				scale, diff := 0.0, 0.0
				for i, v := range ref {
					scale = math.Max(scale, math.Abs(v))
					diff = math.Max(diff, math.Abs(v-float64(c.got[i])))
				}
				t.Logf("%s: max |torch − kdcal| = %.2g, %.2g of max |logit| %.3g", c.name, diff, diff/scale, scale)
				if diff > 3e-6*scale {
					t.Errorf("%s differ from torch's by %.3g (max |logit| %.3g)", c.name, diff, scale)
				}
			}
		})
	}
}

// trainLogits runs one training forward of all n rows (batch statistics).
func trainLogits(t testing.TB, w *Weights, x []float32, n int) []float32 {
	t.Helper()
	g := G.NewGraph()
	gr, err := Build(g, w, n)
	if err != nil {
		t.Fatal(err)
	}
	if err := G.Let(gr.X, tensor.New(tensor.WithShape(gr.X.Shape()...), tensor.WithBacking(slices.Clone(x)))); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	return slices.Clone(gr.Logits.Value().Data().([]float32))
}
