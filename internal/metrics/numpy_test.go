package metrics

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"codeberg.org/sbinet/npyio"
	"gonum.org/v1/gonum/mat"
)

// python is Debian's interpreter with numpy (the python3 on PATH may lack it).
const python = "/usr/bin/python3"

// requireNumpy skips the test when numpy is absent (CI installs python3-numpy).
func requireNumpy(t *testing.T) {
	t.Helper()
	if err := exec.Command(python, "-c", "import numpy").Run(); err != nil {
		t.Skipf("numpy cross-check skipped: %s -c 'import numpy' failed (%v); install python3-numpy", python, err)
	}
}

func writeNpy(t *testing.T, path string, v any) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := npyio.Write(f, v); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func int64s(y []int) []int64 {
	out := make([]int64, len(y))
	for i, v := range y {
		out[i] = int64(v)
	}
	return out
}

// edgeSet returns C=16 probability rows whose top-label confidences are
// every edge k/15, the next float above it, and exactly 1.0; labels random.
func edgeSet(rng *rand.Rand) ([]float64, []int) {
	const c = 16
	var p []float64
	var y []int
	add := func(x float64) {
		row := make([]float64, c)
		row[0] = x
		for k := 1; k < c; k++ {
			row[k] = (1 - x) / (c - 1)
		}
		p = append(p, row...)
		y = append(y, rng.IntN(2)*rng.IntN(c)) // class 0 about half the time
	}
	for k := 1; k <= 15; k++ {
		x := float64(k) / 15
		add(x)
		add(x)
		if k < 15 {
			add(math.Nextafter(x, 2))
		}
	}
	return p, y
}

type pySummary struct {
	Summary
	Reliability []Bin `json:"reliability"`
}

// TestCrossCheckNumpy compares every metric and the reliability bins with
// an independent numpy implementation (testdata/crosscheck.py: searchsorted
// on arange(M+1)/M edges instead of ceil, bincount, argsort(kind=stable)),
// on random logits and on probabilities that sit exactly on bin edges, for
// M = 15 and M = 10. Tolerance 1e-12: both sum the same float64 values in
// different orders.
func TestCrossCheckNumpy(t *testing.T) {
	requireNumpy(t)
	dir := t.TempDir()
	z, y := synthetic(11, 5000, 10, 4)
	rng := rand.New(rand.NewPCG(12, 0))
	p, py := edgeSet(rng)
	writeNpy(t, filepath.Join(dir, "logits.npy"), mat.NewDense(len(y), 10, z))
	writeNpy(t, filepath.Join(dir, "labels.npy"), int64s(y))
	writeNpy(t, filepath.Join(dir, "probs.npy"), mat.NewDense(len(py), 16, p))
	writeNpy(t, filepath.Join(dir, "probs_labels.npy"), int64s(py))
	for _, m := range []int{15, 10} {
		out, err := exec.Command(python, "testdata/crosscheck.py", dir, strconv.Itoa(m)).Output()
		if err != nil {
			t.Fatalf("crosscheck.py: %v", err)
		}
		var ref map[string]pySummary
		if err := json.Unmarshal(out, &ref); err != nil {
			t.Fatalf("crosscheck.py output: %v\n%s", err, out)
		}
		s, rel := EvaluateReliability(z, y, 10, m)
		compareSummary(t, "logits M="+strconv.Itoa(m), s, ref["logits"].Summary, 1e-12)
		compareBins(t, "logits M="+strconv.Itoa(m), rel, ref["logits"].Reliability)
		s, rel = EvaluateProbsReliability(p, py, 16, m)
		compareSummary(t, "edge probs M="+strconv.Itoa(m), s, ref["probs"].Summary, 1e-12)
		compareBins(t, "edge probs M="+strconv.Itoa(m), rel, ref["probs"].Reliability)
	}
}

func compareBins(t *testing.T, name string, got, want []Bin) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d bins, numpy %d", name, len(got), len(want))
	}
	for b := range got {
		g, w := got[b], want[b]
		if g.Lo != w.Lo || g.Hi != w.Hi || g.Count != w.Count ||
			math.Abs(g.Accuracy-w.Accuracy) > 1e-12 || math.Abs(g.Confidence-w.Confidence) > 1e-12 {
			t.Errorf("%s: bin %d = %+v, numpy %+v", name, b, g, w)
		}
	}
}
