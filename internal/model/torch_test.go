package model

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/npyfile"
	"github.com/kdcal/kdcal/internal/testutil"
)

// python is Debian's interpreter, which has numpy and torch (the python3 on
// PATH may be a pyenv without them).
const python = "/usr/bin/python3"

// requireTorch skips the test unless python has numpy and torch.
func requireTorch(t *testing.T) {
	t.Helper()
	if err := exec.Command(python, "-c", "import numpy, torch").Run(); err != nil {
		t.Skipf("skipping the PyTorch cross-check: %s cannot import numpy and torch (%v)", python, err)
	}
}

// TestTorchReproducesLogits saves models with model.Save, loads them in
// PyTorch from the safetensors file (parsed by hand in numpy, see
// testdata/torch_check.py) and checks that torch computes the same logits
// as the kdcal evaluator, to 1e-5 relative: both are float32 with sums in
// different orders.
func TestTorchReproducesLogits(t *testing.T) {
	testutil.Slow(t, "about 17 s: torch rebuilds every family and size")
	requireTorch(t)
	tests := []struct {
		family  string
		spec    config.ModelSpec
		c, h, w int
	}{
		{"mlp", config.ModelSpec{"hidden": []int{12, 8}}, 1, 5, 5},
		{"cnn", config.ModelSpec{"conv": []int{4, 6}, "hidden": []int{9}}, 1, 9, 7}, // odd sizes: floor pooling
		{"cnn", config.ModelSpec{"conv": []int{5}, "hidden": []int{}}, 3, 8, 8},     // RGB, no hidden layer
	}
	for _, tt := range tests {
		w := randomWeights(t, tt.family, tt.spec, tt.c, tt.h, tt.w, 4)
		t.Run(w.Arch.String(), func(t *testing.T) {
			dir := t.TempDir()
			const n = 23
			x := randomInputs(n, w.Arch.D())
			ev, err := NewEvaluator(w, 8)
			if err != nil {
				t.Fatal(err)
			}
			defer ev.Close()
			logits, err := ev.Logits(nil, x, n)
			if err != nil {
				t.Fatal(err)
			}
			mp, xp, lp := filepath.Join(dir, "model.safetensors"), filepath.Join(dir, "x.npy"), filepath.Join(dir, "logits.npy")
			if err := Save(mp, w, Meta{}); err != nil {
				t.Fatal(err)
			}
			if err := npyfile.WriteFloat32(xp, x, n, w.Arch.D()); err != nil {
				t.Fatal(err)
			}
			if err := npyfile.WriteFloat32(lp, logits, n, w.Arch.Classes); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(python, "testdata/torch_check.py", mp, xp, lp, "1e-5").CombinedOutput()
			if err != nil {
				t.Fatalf("torch_check.py: %v\n%s", err, out)
			}
			var r struct {
				N      int     `json:"n"`
				Diff   float64 `json:"max_abs_diff"`
				Params int     `json:"params"`
			}
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("torch_check.py output %q: %v", out, err)
			}
			if r.N != n || r.Params != w.Arch.NumParams() {
				t.Errorf("torch saw %d rows and %d params, want %d and %d", r.N, r.Params, n, w.Arch.NumParams())
			}
			t.Logf("max |torch − kdcal| = %.2g", r.Diff)
		})
	}
}
