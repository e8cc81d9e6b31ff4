package calibrate

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/diff/fd"

	"github.com/kdcal/kdcal/internal/metrics"
	"github.com/kdcal/kdcal/internal/npyfile"
)

// sample returns N×C logits Z_ik ~ N(0, 1.5²) and labels drawn from
// softmax(Z): a perfectly calibrated model.
func sample(seed uint64, n, c int) ([]float64, []int) {
	rng := rand.New(rand.NewPCG(seed, 7))
	z := make([]float64, n*c)
	y := make([]int, n)
	p := make([]float64, c)
	for i := range n {
		row := z[i*c : (i+1)*c]
		for k := range row {
			row[k] = 1.5 * rng.NormFloat64()
		}
		metrics.Softmax(p, row, c)
		u, j := rng.Float64(), 0
		for ; j < c-1 && u >= p[j]; j++ {
			u -= p[j]
		}
		y[i] = j
	}
	return z, y
}

func scaled(z []float64, s float64) []float64 {
	out := make([]float64, len(z))
	for i, v := range z {
		out[i] = v * s
	}
	return out
}

// Temperature scaling recovers a known T: labels are drawn from softmax(Z)
// and the calibrator sees T0·Z, so the true calibrating temperature is T0.
// With finite N the fitted T is the MLE, not T0 itself: its standard error
// is sd(log T̂) ≈ 1/sqrt(N · mean_i Var_{softmax(Z_i)}(Z_i)) (the Fisher
// information of log T at the truth), which for N = 200,000 is about 0.2%,
// so the 1% tolerance is more than 4 standard errors (checked below).
func TestTempRecoversKnownTemperature(t *testing.T) {
	const n, c = 200000, 10
	z, y := sample(1, n, c)
	var info float64
	p := metrics.Softmax(nil, z, c)
	for i := range n {
		var m, m2 float64
		for k := range c {
			m += p[i*c+k] * z[i*c+k]
			m2 += p[i*c+k] * z[i*c+k] * z[i*c+k]
		}
		info += m2 - m*m
	}
	se := 1 / math.Sqrt(info)
	if 4*se > 0.01 {
		t.Fatalf("standard error of log T is %.4f: the design is too small for a 1%% test", se)
	}
	for _, t0 := range []float64{0.5, 1.5, 3} {
		var cal Temp
		rep, err := cal.Fit(context.Background(), scaled(z, t0), y, c)
		if err != nil {
			t.Fatal(err)
		}
		if rel := math.Abs(cal.T/t0 - 1); rel > 0.01 || !rep.Converged {
			t.Errorf("T0 = %v: fitted T = %.5f (off by %.3f%%, converged %v)", t0, cal.T, 100*rel, rep.Converged)
		}
		t.Logf("T0 = %v: T = %.5f (%+.3f%%, s.e. %.3f%%), %d iterations, %d passes, NLL %.4f → %.4f",
			t0, cal.T, 100*(cal.T/t0-1), 100*se, rep.Iterations, rep.Evaluations, rep.NLLBefore, rep.NLLAfter)
	}
}

// Temperature scaling never changes the predicted class, so accuracy is
// unchanged — checked row by row, including rows with tied logits.
func TestTempKeepsAccuracy(t *testing.T) {
	z, y := sample(2, 5000, 7)
	z = scaled(z, 4)
	copy(z[:7], []float64{1, 3, 3, 0, 3, -1, 2}) // a three-way tie for the max
	var cal Temp
	if _, err := cal.Fit(context.Background(), z, y, 7); err != nil {
		t.Fatal(err)
	}
	p := cal.Probs(z, 7)
	for i := range y {
		if a, b := metrics.Argmax(z[i*7:(i+1)*7]), metrics.Argmax(p[i*7:(i+1)*7]); a != b {
			t.Fatalf("row %d: argmax %d became %d", i, a, b)
		}
	}
	before := metrics.Accuracy(metrics.Softmax(nil, z, 7), y, 7)
	if after := metrics.Accuracy(p, y, 7); after != before {
		t.Errorf("accuracy %v → %v", before, after)
	}
}

// The analytic derivatives of F(u) match central finite differences.
func TestTempDerivatives(t *testing.T) {
	z, y := sample(3, 300, 4)
	z = scaled(z, 2.5)
	o := newTempObjective(z, y, 4)
	f := func(u float64) float64 { v, _, _ := o.eval(u); return v }
	g := func(u float64) float64 { _, v, _ := o.eval(u); return v }
	for _, u := range []float64{-2, -0.3, 0, 0.7, 2.5} {
		_, gu, hu := o.eval(u)
		if fg := fd.Derivative(f, u, &fd.Settings{Formula: fd.Central}); math.Abs(fg-gu) > 1e-6*math.Max(1, math.Abs(gu)) {
			t.Errorf("u = %v: F' = %v, finite difference %v", u, gu, fg)
		}
		if fh := fd.Derivative(g, u, &fd.Settings{Formula: fd.Central}); math.Abs(fh-hu) > 1e-6*math.Max(1, math.Abs(hu)) {
			t.Errorf("u = %v: F'' = %v, finite difference %v", u, hu, fh)
		}
	}
}

// When the minimum lies beyond the hard bounds, T is pinned and the
// report says why.
func TestTempBounds(t *testing.T) {
	// Separable: every example correct with a margin → NLL falls as T → 0.
	z := []float64{3, 0, 0, 0, 2, 1, 1, 0, 4}
	y := []int{0, 1, 2}
	var cal Temp
	rep, err := cal.Fit(context.Background(), z, y, 3)
	if err != nil {
		t.Fatal(err)
	}
	if cal.T != tempMin || rep.Converged || !strings.Contains(rep.Note, "pinned") {
		t.Errorf("separable set: T = %v, converged %v, note %q", cal.T, rep.Converged, rep.Note)
	}
	// No signal: every logit row appears once with each label, so the
	// labels say nothing about the logits and NLL falls as T → ∞.
	base, _ := sample(4, 400, 5)
	var zs []float64
	var labels []int
	for i := range 400 {
		for k := range 5 {
			zs = append(zs, base[i*5:(i+1)*5]...)
			labels = append(labels, k)
		}
	}
	rep, err = cal.Fit(context.Background(), zs, labels, 5)
	if err != nil {
		t.Fatal(err)
	}
	if cal.T != tempMax || rep.Converged || !strings.Contains(rep.Note, "no") {
		t.Errorf("random labels: T = %v, converged %v, note %q", cal.T, rep.Converged, rep.Note)
	}
}

// TestTempCrossCheckNumpy compares the fitted T with an independent numpy
// golden-section search (testdata/crosscheck_temp.py), on float32 logits
// written to .npy. Golden section locates log T only to about sqrt(machine
// ε) because NLL is flat at its minimum, hence the 1e-6 relative tolerance
// on T; the NLLs agree to 1e-12.
func TestTempCrossCheckNumpy(t *testing.T) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import numpy").Run(); err != nil {
		t.Skipf("numpy cross-check skipped: %s -c 'import numpy' failed (%v); install python3-numpy", python, err)
	}
	z, y := sample(6, 20000, 10)
	z = scaled(z, 2.2)
	f32 := make([]float32, len(z))
	for i, v := range z {
		f32[i] = float32(v)
		z[i] = float64(f32[i]) // fit on exactly what numpy reads
	}
	dir := t.TempDir()
	lp, yp := filepath.Join(dir, "logits.npy"), filepath.Join(dir, "labels.npy")
	if err := npyfile.WriteFloat32(lp, f32, len(y), 10); err != nil {
		t.Fatal(err)
	}
	if err := npyfile.WriteInt64(yp, y); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, "testdata/crosscheck_temp.py", lp, yp).Output()
	if err != nil {
		t.Fatalf("crosscheck_temp.py: %v", err)
	}
	var ref struct {
		Temperature float64 `json:"temperature"`
		NLLBefore   float64 `json:"nll_before"`
		NLLAfter    float64 `json:"nll_after"`
	}
	if err := json.Unmarshal(out, &ref); err != nil {
		t.Fatal(err)
	}
	var cal Temp
	rep, err := cal.Fit(context.Background(), z, y, 10)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(cal.T/ref.Temperature-1) > 1e-6 {
		t.Errorf("T = %.10f, numpy %.10f", cal.T, ref.Temperature)
	}
	if math.Abs(rep.NLLBefore-ref.NLLBefore) > 1e-12 || math.Abs(rep.NLLAfter-ref.NLLAfter) > 1e-12 {
		t.Errorf("NLL %v → %v, numpy %v → %v", rep.NLLBefore, rep.NLLAfter, ref.NLLBefore, ref.NLLAfter)
	}
	t.Logf("T = %.9f (numpy golden section %.9f), NLL %.6f → %.6f", cal.T, ref.Temperature, rep.NLLBefore, rep.NLLAfter)
}

// When T is pinned at its upper bound the note says why: logits on a huge
// (finite) scale are too large, logits unrelated to the labels carry no
// information. (Before, both were called "carrying almost no information".)
func TestTempPinnedHighNote(t *testing.T) {
	const n, c = 2000, 4
	z, y := sample(3, n, c)
	huge := scaled(z, 1e7) // still finite, but one-hot even at T = 1e4
	noise := make([]int, n)
	for i := range noise {
		noise[i] = (i * 7) % c // labels unrelated to the logits
	}
	tests := []struct {
		name   string
		logits []float64
		labels []int
		want   string
	}{
		{"huge finite logits", huge, y, "the logits are too large"},
		{"labels unrelated", scaled(z, 1e-3), noise, "carry almost no information"},
	}
	for _, tt := range tests {
		rep, err := (&Temp{}).Fit(context.Background(), tt.logits, tt.labels, c)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if rep.Converged || !strings.Contains(rep.Note, tt.want) {
			t.Errorf("%s: converged %v, note %q; want a note with %q", tt.name, rep.Converged, rep.Note, tt.want)
		}
	}
}
