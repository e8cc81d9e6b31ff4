package fused

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

const torchPython = "/usr/bin/python3"

// requireTorch skips the test when Debian's python3 with torch is absent.
func requireTorch(t *testing.T) {
	t.Helper()
	if err := exec.Command(torchPython, "-c", "import numpy, torch").Run(); err != nil {
		t.Skipf("skipping: %s cannot import numpy and torch (%v); install python3-torch to run the PyTorch cross-check", torchPython, err)
	}
}

func writeF32s(t *testing.T, path string, v []float32) {
	t.Helper()
	b, err := binary.Append(nil, binary.LittleEndian, v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readF32s(t *testing.T, path string, n int) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, n)
	if _, err := binary.Decode(b, binary.LittleEndian, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// TestStageMatchesTorch compares values and gradients with PyTorch 1.13
// (testdata/torch_stage.py: conv2d(padding=1) + bias, relu, max_pool2d(2)).
// Random data has no exact zeros, where the ReLU derivatives differ
// (gorgonia 1, torch 0). Tolerance relTol (∞-norm relative).
func TestStageMatchesTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the torch cross-check (torch start-up is tens of seconds on a loaded machine) in -short mode; make test-full (CI) runs it")
	}
	requireTorch(t)
	cases := []stNetCase{
		{n: 3, c: 1, h: 28, w: 28, outs: []int{4, 8}, seed: 31}, // 28 → 14 → 7
		{n: 2, c: 3, h: 7, w: 9, outs: []int{5}, seed: 32},      // odd, non-square
		{n: 4, c: 2, h: 14, w: 14, outs: []int{3, 4, 6}, seed: 33},
	}
	for _, nc := range cases {
		t.Run(fmt.Sprintf("%dx%dx%dx%d%v", nc.n, nc.c, nc.h, nc.w, nc.outs), func(t *testing.T) {
			d := nc.data()
			got := stRunTape(t, nc, d, Stage, true)
			dir := t.TempDir()
			spec, _ := json.Marshal(map[string]any{"n": nc.n, "c": nc.c, "h": nc.h, "w": nc.w, "outs": nc.outs})
			if err := os.WriteFile(filepath.Join(dir, "spec.json"), spec, 0o644); err != nil {
				t.Fatal(err)
			}
			writeF32s(t, filepath.Join(dir, "x.bin"), d.x)
			writeF32s(t, filepath.Join(dir, "r.bin"), d.r)
			for i, l := range d.layers {
				writeF32s(t, filepath.Join(dir, fmt.Sprintf("w%d.bin", i)), l.w)
				writeF32s(t, filepath.Join(dir, fmt.Sprintf("b%d.bin", i)), l.b)
			}
			out, err := exec.Command(torchPython, filepath.Join("testdata", "torch_stage.py"), dir).CombinedOutput()
			if err != nil {
				t.Fatalf("torch_stage.py: %v\n%s", err, out)
			}
			want := netResult{
				y:  readF32s(t, filepath.Join(dir, "y.bin"), len(got.y)),
				dx: readF32s(t, filepath.Join(dir, "dx.bin"), len(got.dx)),
			}
			for i := range d.layers {
				want.dw = append(want.dw, readF32s(t, filepath.Join(dir, fmt.Sprintf("dw%d.bin", i)), len(got.dw[i])))
				want.db = append(want.db, readF32s(t, filepath.Join(dir, fmt.Sprintf("db%d.bin", i)), len(got.db[i])))
			}
			compareNets(t, got, want, stRelTol)
		})
	}
}
