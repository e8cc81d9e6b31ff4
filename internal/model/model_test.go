package model

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/kdcal/kdcal/internal/config"
)

// TestNumParams checks parameter counts against hand computation:
// conv (out·in·9 + out) per stage, dense (in·out + out) per layer.
func TestNumParams(t *testing.T) {
	tests := []struct {
		family  string
		spec    config.ModelSpec
		c, h, w int
		want    int
	}{
		// 28×28 → 14 → 7: 4·1·9+4 + 8·4·9+8 + 8·7·7·32+32 + 32·10+10
		{"cnn", config.ModelSpec{"conv": []int{4, 8}, "hidden": []int{32}}, 1, 28, 28, 40 + 296 + 12576 + 330},
		// 32×32×3 → 16 → 8: 64·3·9+64 + 128·64·9+128 + 128·8·8·256+256 + 256·10+10
		{"cnn", config.ModelSpec{"conv": []int{64, 128}, "hidden": []int{256}}, 3, 32, 32, 1792 + 73856 + 2097408 + 2570},
		// 784·512+512 + 512·512+512 + 512·10+10
		{"mlp", config.ModelSpec{"hidden": []int{512, 512}}, 1, 28, 28, 401920 + 262656 + 5130},
		// no hidden layer: logistic regression
		{"mlp", config.ModelSpec{}, 1, 4, 4, 16*10 + 10},
	}
	for _, tt := range tests {
		a, err := NewArch(tt.family, tt.spec, tt.c, tt.h, tt.w, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.NumParams(); got != tt.want {
			t.Errorf("%s: %d params, want %d", a, got, tt.want)
		}
	}
}

// TestDefaultSizesSpan checks the requirement that the default
// teacher sizes span at least 30× in parameter count, for both families and
// both input shapes (28×28×1 and 32×32×3).
func TestDefaultSizesSpan(t *testing.T) {
	cfg := config.Default()
	for _, family := range config.Families {
		tc := cfg.Teacher
		tc.Family = family
		for _, in := range [][3]int{{1, 28, 28}, {3, 32, 32}} {
			lo, hi := math.MaxInt, 0
			for _, name := range config.SortedNames(tc.Table()) {
				a, err := NewArch(family, tc.Table()[name], in[0], in[1], in[2], 10)
				if err != nil {
					t.Fatalf("%s %s: %v", family, name, err)
				}
				lo, hi = min(lo, a.NumParams()), max(hi, a.NumParams())
			}
			if hi < 30*lo {
				t.Errorf("%s on %v: sizes span %d..%d params, less than 30×", family, in, lo, hi)
			}
		}
	}
}

func TestNewArchErrors(t *testing.T) {
	tests := []struct {
		family string
		spec   config.ModelSpec
		h, w   int
		want   string
	}{
		{"rnn", config.ModelSpec{}, 28, 28, `unknown family "rnn"`},
		{"cnn", config.ModelSpec{"conv": []int{4, 4, 4}}, 4, 4, "too small for 3 conv stages"},
		{"cnn", config.ModelSpec{}, 28, 28, "at least one conv stage"},
		{"mlp", config.ModelSpec{"conv": []int{4}}, 28, 28, "no conv stages"},
		{"mlp", config.ModelSpec{"hidden": []int{0}}, 28, 28, "width 0"},
	}
	for _, tt := range tests {
		_, err := NewArch(tt.family, tt.spec, 1, tt.h, tt.w, 10)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewArch(%s, %+v): error %v, want %q", tt.family, tt.spec, err, tt.want)
		}
	}
}

func TestInitDeterministicAndBounded(t *testing.T) {
	a, _ := NewArch("cnn", config.ModelSpec{"conv": []int{3}, "hidden": []int{5}}, 1, 4, 4, 3)
	w1, w2, w3 := NewWeights(a, tensor.Float32), NewWeights(a, tensor.Float32), NewWeights(a, tensor.Float32)
	w1.Init(rand.New(rand.NewPCG(1, 2)))
	w2.Init(rand.New(rand.NewPCG(1, 2)))
	w3.Init(rand.New(rand.NewPCG(2, 2)))
	if !slices.Equal(w1.Flat(), w2.Flat()) {
		t.Error("same generator state gave different weights")
	}
	if slices.Equal(w1.Flat(), w3.Flat()) {
		t.Error("different seeds gave the same weights")
	}
	for i, p := range w1.Params {
		bound := math.Sqrt(6 / float64(p.FanIn)) // He uniform
		if p.Output {
			bound = math.Sqrt(6 / float64(p.FanIn+p.FanOut)) // Glorot uniform
		}
		for _, v := range w1.Float32s(i) {
			isBias := p.Kind == ConvBias || p.Kind == DenseBias
			if (isBias && v != 0) || math.Abs(float64(v)) > bound {
				t.Fatalf("%s: value %v outside its init range (bias 0, weight ±%.3f)", p.Name, v, bound)
			}
		}
	}
}

// TestInitTorch: the torch scheme draws weights and biases from
// U(±1/√fan_in), as torch 1.13's nn.Linear and nn.Conv2d reset_parameters
// (kaiming_uniform_(a=√5): bound √(3)·√(2/(1+5))/√fan_in = 1/√fan_in;
// bias bound 1/√fan_in). Checked per tensor: every value within the bound,
// the largest |value| above 0.9·bound (tensors of ≥ 50 values: P < 0.9⁵⁰ ≈ 0.5% otherwise) and the sample variance within 15% of
// bound²/3 (the uniform's variance; tensors of ≥ 400 values, where the
// sample variance's relative standard error is ≤ 0.9/√n < 5%).
func TestInitTorch(t *testing.T) {
	a, _ := NewArch("cnn", config.ModelSpec{"conv": []int{8}, "hidden": []int{50}}, 1, 8, 8, 10)
	w := NewWeights(a, tensor.Float64)
	if err := w.InitWith(rand.New(rand.NewPCG(1, 2)), "torch"); err != nil {
		t.Fatal(err)
	}
	for i, p := range w.Params {
		bound := 1 / math.Sqrt(float64(p.FanIn))
		d := w.T[i].Data().([]float64)
		var ss, mx float64
		for _, v := range d {
			if math.Abs(v) > bound {
				t.Fatalf("%s: %v outside ±%.4f", p.Name, v, bound)
			}
			ss += v * v
			mx = math.Max(mx, math.Abs(v))
		}
		if len(d) >= 50 && mx < 0.9*bound {
			t.Errorf("%s: largest |value| %.4f, want near the bound %.4f", p.Name, mx, bound)
		}
		if v, want := ss/float64(len(d)), bound*bound/3; len(d) >= 400 && math.Abs(v/want-1) > 0.15 {
			t.Errorf("%s: variance %.3g, want bound²/3 = %.3g (15%%)", p.Name, v, want)
		}
	}
	if err := w.InitWith(rand.New(rand.NewPCG(1, 2)), "xavier"); err == nil {
		t.Error("unknown init: no error")
	}
}

// randomWeights returns Float32 weights drawn from a fixed generator.
func randomWeights(t testing.TB, family string, spec config.ModelSpec, c, h, w, classes int) *Weights {
	t.Helper()
	a, err := NewArch(family, spec, c, h, w, classes)
	if err != nil {
		t.Fatal(err)
	}
	ws := NewWeights(a, tensor.Float32)
	ws.Init(rand.New(rand.NewPCG(3, 4)))
	// non-zero biases so that the export of biases is exercised
	rng := rand.New(rand.NewPCG(5, 6))
	for i, p := range ws.Params {
		if p.Kind == ConvBias || p.Kind == DenseBias {
			for j := range ws.Float32s(i) {
				ws.Float32s(i)[j] = float32(rng.NormFloat64() * 0.1)
			}
		}
	}
	return ws
}

func randomInputs(n, d int) []float32 {
	rng := rand.New(rand.NewPCG(8, 9))
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

func TestSafetensorsRoundTrip(t *testing.T) {
	w := randomWeights(t, "cnn", config.ModelSpec{"conv": []int{3, 5}, "hidden": []int{7}}, 2, 8, 6, 4)
	path := filepath.Join(t.TempDir(), "m.safetensors")
	meta := Meta{Dataset: "synthetic", Scale: 1, Mean: []float64{0.5, 0.25}, Std: []float64{2, 3}, Version: "test"}
	if err := Save(path, w, meta); err != nil {
		t.Fatal(err)
	}
	got, gm, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Arch.String() != w.Arch.String() {
		t.Errorf("arch %s, want %s", got.Arch, w.Arch)
	}
	if !slices.Equal(got.Flat(), w.Flat()) {
		t.Error("weights differ after a round trip")
	}
	if gm.Params != w.Arch.NumParams() || !slices.Equal(gm.Std, meta.Std) || gm.Dataset != "synthetic" || gm.Input != [3]int{2, 8, 6} {
		t.Errorf("metadata %+v", gm)
	}
	// PyTorch layout: dense weights (out, in), biases (out,)
	st, md, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if md["format"] != "pt" {
		t.Errorf("format %q, want pt", md["format"])
	}
	for name, want := range map[string][]uint64{"conv0.weight": {3, 2, 3, 3}, "conv1.bias": {5}, "fc0.weight": {7, 5 * 2 * 1}, "out.weight": {4, 7}, "out.bias": {4}} {
		tv, ok := st.Tensor(name)
		if !ok || !slices.Equal(tv.Shape(), want) {
			t.Errorf("%s: shape %v, want %v", name, tv.Shape(), want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.safetensors")
	if err := writeFile(bad, []byte("not a safetensors file")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(bad); err == nil || !strings.Contains(err.Error(), "bad.safetensors") {
		t.Errorf("error %v should name the file", err)
	}
	if _, _, err := Load(filepath.Join(dir, "absent.safetensors")); err == nil {
		t.Error("no error for a missing file")
	}
}

// TestEvaluatorOrder checks that batched logits come back in input order
// and do not depend on the batch size or on the other rows of a batch:
// batches of 7 (with a padded last batch) against one example at a time.
func TestEvaluatorOrder(t *testing.T) {
	for _, family := range []string{"mlp", "cnn"} {
		spec := config.ModelSpec{"hidden": []int{6}}
		if family == "cnn" {
			spec["conv"] = []int{3}
		}
		w := randomWeights(t, family, spec, 1, 6, 6, 5)
		const n = 17
		x := randomInputs(n, w.Arch.D())
		e7, err := NewEvaluator(w, 7)
		if err != nil {
			t.Fatal(err)
		}
		defer e7.Close()
		e1, err := NewEvaluator(w, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer e1.Close()
		all, err := e7.Logits(nil, x, n)
		if err != nil {
			t.Fatal(err)
		}
		d, c := w.Arch.D(), w.Arch.Classes
		for i := 0; i < n; i++ {
			one, err := e1.Logits(nil, x[i*d:(i+1)*d], 1)
			if err != nil {
				t.Fatal(err)
			}
			for k := 0; k < c; k++ {
				// float32 sums in another order: agree to a few ulps
				if math.Abs(float64(one[k]-all[i*c+k])) > 1e-5 {
					t.Fatalf("%s row %d class %d: batched %v, alone %v", family, i, k, all[i*c+k], one[k])
				}
			}
		}
	}
}

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o644) }
