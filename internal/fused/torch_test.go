package fused

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/kdcal/kdcal/internal/testutil"
)

var torchScript = filepath.Join("testdata", "torch_resnet.py")

func writeF32(t *testing.T, path string, v []float64) {
	t.Helper()
	f32 := make([]float32, len(v))
	for i, x := range v {
		f32[i] = float32(x)
	}
	b, err := binary.Append(nil, binary.LittleEndian, f32)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readF32(t *testing.T, path string, n int) []float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, n)
	if _, err := binary.Decode(b, binary.LittleEndian, v); err != nil || len(b) != 4*n {
		t.Fatalf("%s: %d bytes, want %d (%v)", path, len(b), 4*n, err)
	}
	out := make([]float64, n)
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// Tolerances of the float32 comparison with torch 1.13 (oneDNN convolutions,
// float32 throughout), relative to the largest entry of each tensor. The
// two implementations sum in different orders (GEMM blocking, float64
// BatchNorm sums here), so each result carries rounding noise of a few ulp
// (2^-24 ≈ 6e-8) times the depth of the computation:
//   - logits and running statistics: a forward pass through 8–14 layers of
//     sums of up to 576 terms; measured ≤ 3.4e-7, tolerance 3e-6;
//   - gradients: the backward pass goes through every BatchNorm, whose
//     gradient da = γ/σ·(dz − mean(dz) − x̂·mean(dz·x̂)) cancels most of dz
//     and so amplifies the relative noise, and early layers' weight
//     gradients are sums over the batch of such terms; measured ≤ 2.6e-6,
//     tolerance 3e-5.
//
// A real error (a transposed kernel, a shifted shortcut channel, a biased
// instead of unbiased running variance, a missing BatchNorm term) is off by
// 1e-2 or more.
const (
	torchFwdTol  = 3e-6
	torchGradTol = 3e-5
)

// torchCase is one network of the torch cross-check.
type torchCase struct {
	spec ResNetSpec
	bs   int
}

// TestResNetMatchesTorch runs testdata/torch_resnet.py once (importing
// torch is most of its time) for two checks:
//
// Networks: the same weights and BatchNorm state go to the fused float32
// ResNet and to the script's nn.Module (loaded with
// load_state_dict(strict=True), so the names and shapes of every state
// entry are checked too); compared are the eval-mode logits (running
// statistics), the train-mode logits (batch statistics), the gradient of
// Σ r ⊙ logits for every parameter, and the running statistics and
// num_batches_tracked after that one training forward. resnet8 and
// resnet14 at widths 4 and 8, on 3×32×32 (CIFAR) and 1×28×28 (MNIST).
//
// ParamCounts: NumParams of paramSpecs against torch's
// sum(p.numel() for p in model.parameters()).
func TestResNetMatchesTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the torch cross-check (torch start-up is tens of seconds on a loaded machine) in -short mode; make test-full (CI) runs it")
	}
	testutil.RequirePython(t, "numpy", "torch")
	cases := []torchCase{
		{ResNetSpec{Depth: 8, Width: 4, C: 3, H: 32, W: 32, Classes: 10}, 4},
		{ResNetSpec{Depth: 14, Width: 8, C: 3, H: 32, W: 32, Classes: 10}, 3},
		{ResNetSpec{Depth: 8, Width: 8, C: 1, H: 28, W: 28, Classes: 10}, 4},
		{ResNetSpec{Depth: 14, Width: 4, C: 1, H: 28, W: 28, Classes: 10}, 3},
	}
	type prepared struct {
		r     *ResNet
		x, rr []float64
		dir   string
	}
	var ps []prepared
	counts := filepath.Join(t.TempDir(), "counts")
	var in strings.Builder
	for _, s := range paramSpecs {
		fmt.Fprintln(&in, s.Depth, s.Width, s.C, s.H, s.W, s.Classes)
	}
	if err := os.WriteFile(counts, []byte(in.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{torchScript, "--counts", counts}
	for ci, c := range cases {
		p := prepared{r: randomResNet(t, c.spec, tensor.Float32, uint64(50+ci)), dir: t.TempDir()}
		p.r.BatchesTracked = 7
		p.x, p.rr = writeTorchCase(t, p.dir, p.r, c, uint64(60+ci))
		ps = append(ps, p)
		args = append(args, p.dir)
	}
	if out, err := exec.Command(testutil.Python, args...).CombinedOutput(); err != nil {
		t.Fatalf("torch_resnet.py: %v\n%s", err, out)
	}
	for i, c := range cases {
		s := c.spec
		t.Run(fmt.Sprintf("%v_%dx%dx%d", s, s.C, s.H, s.W), func(t *testing.T) {
			compareTorchCase(t, ps[i].dir, ps[i].r, c, ps[i].x, ps[i].rr)
		})
	}
	t.Run("ParamCounts", func(t *testing.T) {
		out, err := os.ReadFile(counts + ".out")
		if err != nil {
			t.Fatal(err)
		}
		checkParamCounts(t, strings.Fields(string(out)))
	})
}

// writeTorchCase writes r's state, a random input x and loss weights r
// (float32-representable) and the spec into dir, and returns x and r.
func writeTorchCase(t *testing.T, dir string, r *ResNet, c torchCase, seed uint64) (x, rr []float64) {
	s := c.spec
	rng := rand.New(rand.NewPCG(seed, 1))
	x = normal(rng, c.bs*s.C*s.H*s.W)
	rr = normal(rng, c.bs*s.Classes)
	for _, v := range [][]float64{x, rr} {
		for i := range v {
			v[i] = float64(float32(v[i]))
		}
	}
	names := map[string][]int{}
	for _, e := range r.State {
		names[e.Name] = e.Shape
		if e.T != nil {
			writeF32(t, filepath.Join(dir, "state", e.Name+".bin"), toF64(t, e.T))
		}
	}
	spec, _ := json.Marshal(map[string]any{"depth": s.Depth, "width": s.Width, "c": s.C, "h": s.H, "w": s.W,
		"classes": s.Classes, "batch": c.bs, "tracked": r.BatchesTracked, "names": names})
	if err := os.WriteFile(filepath.Join(dir, "spec.json"), spec, 0o644); err != nil {
		t.Fatal(err)
	}
	writeF32(t, filepath.Join(dir, "x.bin"), x)
	writeF32(t, filepath.Join(dir, "r.bin"), rr)
	return x, rr
}

// compareTorchCase runs r as torch_resnet.py did (eval forward, then one
// training forward and backward) and compares with its outputs in dir/out.
func compareTorchCase(t *testing.T, dir string, r *ResNet, c torchCase, x, rr []float64) {
	s := c.spec
	out := filepath.Join(dir, "out")
	check := func(what string, got, want []float64, tol float64) {
		t.Helper()
		e := maxRelErr(got, want, 1e-6)
		t.Logf("%-32s relative error %.2g", what, e)
		if !(e <= tol) {
			t.Errorf("%s: relative error %.3g > %g", what, e, tol)
		}
	}
	ev := newProbe(t, r, c.bs, Eval, false, false)
	ev.set(x, rr)
	ev.run(t)
	nLogits := c.bs * s.Classes
	check("eval logits", ev.logits(t), readF32(t, filepath.Join(out, "logits_eval.bin"), nLogits), torchFwdTol)

	tr := newProbe(t, r, c.bs, Train, true, false)
	tr.set(x, rr)
	tr.run(t)
	check("train logits", tr.logits(t), readF32(t, filepath.Join(out, "logits_train.bin"), nLogits), torchFwdTol)
	grads := tr.grads(t)
	for i, p := range r.Params {
		check("grad "+p.Name, grads[i], readF32(t, filepath.Join(out, "grad", p.Name+".bin"), p.Size()), torchGradTol)
	}
	for _, b := range r.Buffers {
		check(b.Name+" after", toF64(t, b.T), readF32(t, filepath.Join(out, "state", b.Name+".bin"), b.Size()), torchFwdTol)
	}
	tracked, err := os.ReadFile(filepath.Join(out, "tracked.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.FormatInt(r.BatchesTracked, 10); string(tracked) != want || want != "8" {
		t.Errorf("num_batches_tracked: kdcal %s, torch %q, want 8 (7 + one training forward)", want, tracked)
	}
}

// paramSpecs span 178× in parameter count (resnet8-w8, 19,218, … resnet56-w32
// on CIFAR-100, 3,413,380).
var paramSpecs = []ResNetSpec{
	{Depth: 8, Width: 8, C: 3, H: 32, W: 32, Classes: 10},
	{Depth: 8, Width: 16, C: 3, H: 32, W: 32, Classes: 10},
	{Depth: 14, Width: 16, C: 3, H: 32, W: 32, Classes: 10},
	{Depth: 20, Width: 16, C: 3, H: 32, W: 32, Classes: 10},
	{Depth: 32, Width: 16, C: 3, H: 32, W: 32, Classes: 10},
	{Depth: 44, Width: 16, C: 3, H: 32, W: 32, Classes: 10},
	{Depth: 56, Width: 16, C: 3, H: 32, W: 32, Classes: 10},
	{Depth: 32, Width: 32, C: 3, H: 32, W: 32, Classes: 100},
	{Depth: 20, Width: 16, C: 1, H: 28, W: 28, Classes: 10},
	{Depth: 56, Width: 32, C: 3, H: 32, W: 32, Classes: 100},
}

// checkParamCounts compares NumParams of paramSpecs with torch's counts.
func checkParamCounts(t *testing.T, fields []string) {
	if len(fields) != len(paramSpecs) {
		t.Fatalf("torch printed %d counts, want %d: %q", len(fields), len(paramSpecs), fields)
	}
	var got []int
	for i, f := range fields {
		s := paramSpecs[i]
		r, err := NewResNet(s, tensor.Float32)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.NumParams())
		want, _ := strconv.Atoi(f)
		t.Logf("%v %d×%d×%d→%d: %d params", s, s.C, s.H, s.W, s.Classes, got[i])
		if got[i] != want {
			t.Errorf("%v: NumParams %d, torch %d", s, got[i], want)
		}
	}
	if lo, hi := slices.Min(got), slices.Max(got); float64(hi)/float64(lo) < 30 {
		t.Errorf("the specs span %.1f× in parameters, want ≥ 30×", float64(hi)/float64(lo))
	}
}
