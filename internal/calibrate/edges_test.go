package calibrate

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"codeberg.org/sbinet/npyio"

	"github.com/kdcal/kdcal/internal/metrics"
	"github.com/kdcal/kdcal/internal/testutil"
)

// logitsWithConf returns C = 3 logits rows [l, 0, 0] whose softmax top
// probability is q: e^l / (e^l + 2) = q, l = log(2q / (1 − q)).
func logitsWithConf(qs []float64) []float64 {
	z := make([]float64, 0, 3*len(qs))
	for _, q := range qs {
		z = append(z, math.Log(2*q/(1-q)), 0, 0)
	}
	return z
}

// spread returns n confidences evenly inside (lo, hi).
func spread(n int, lo, hi float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = lo + (hi-lo)*float64(i+1)/float64(n+1)
	}
	return out
}

// labelsOf returns labels that make the first k of n examples correct (class 0) and the rest wrong.
func labelsOf(n, k int) []int {
	y := make([]int, n)
	for i := k; i < n; i++ {
		y[i] = 1
	}
	return y
}

// edgeSplit is a test split whose calibrated confidences (under
// edgeIsotonic and edgeHist) sit exactly on bin edges: 24 examples at 0.4
// (12 correct), 8 at 0.45 (2 correct), 10 at 0.6 (5 correct), 6 at 0.8
// (all correct). 0.4 = 6/15 = 4/10, 0.6 and 0.8 are edges for M = 15, 10
// and 5. The 0.45 group shares the bin above 0.4 and is over-confident
// while the 0.4 group is under-confident, so any 0.4 that slipped one ulp up
// would change the ECE.
func edgeSplit() Split {
	var conf []float64
	var y []int
	for _, g := range []struct {
		n, correct int
		lo, hi     float64
	}{{24, 12, 0.50, 0.545}, {8, 2, 0.55, 0.56}, {10, 5, 0.60, 0.645}, {6, 6, 0.70, 0.745}} {
		conf = append(conf, spread(g.n, g.lo, g.hi)...)
		y = append(y, labelsOf(g.n, g.correct)...)
	}
	return Split{Logits: logitsWithConf(conf), Labels: y, C: 3}
}

// Flat pieces of an isotonic map and histogram bins give exactly 0.4,
// 0.45, 0.6 and 0.8 on the groups of edgeSplit.
var (
	edgeIsotonic = &Isotonic{C: 3,
		X: []float64{0.50, 0.545, 0.55, 0.56, 0.60, 0.645, 0.70, 0.745},
		Y: []float64{0.4, 0.4, 0.45, 0.45, 0.6, 0.6, 0.8, 0.8}}
	edgeHist = &Hist{C: 3, Bins: 20, // bin b holds (b/20, (b+1)/20]
		Value: []float64{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.4, 0.45, 0.6, 0.6, 0.8, 0.8, 0, 0, 0, 0},
		Count: make([]int, 20)}
)

// ECE after hist and isotonic bins the calibrated confidence itself: the
// top probability of Probs is the calibrated value bit for bit, and the
// ECE is the hand-computed one. M = 10 (0.4 in (0.3, 0.4], 0.45 in
// (0.4, 0.5], 0.6 in (0.5, 0.6], 0.8 in (0.7, 0.8]):
//
//	(24·|12/24 − .4| + 8·|2/8 − .45| + 10·|5/10 − .6| + 6·|1 − .8|) / 48
//	= (2.4 + 1.6 + 1 + 1.2) / 48 = 6.2/48
//
// and the same for M = 15 (0.4 = 6/15 closes bin 5, 0.45 opens bin 6). Had
// the 24 examples at 0.4 landed in the 0.45 bin, ECE would be 3/48.
func TestTopLabelECEAtBinEdges(t *testing.T) {
	s := edgeSplit()
	want := map[float64]int{0.4: 24, 0.45: 8, 0.6: 10, 0.8: 6}
	for _, cal := range []Calibrator{edgeIsotonic, edgeHist} {
		p := cal.Probs(s.Logits, 3)
		got := map[float64]int{}
		for i := range s.Labels {
			row := p[3*i : 3*i+3]
			got[row[0]]++
			if sum := row[0] + row[1] + row[2]; math.Abs(sum-1) > 1e-15 || metrics.Argmax(row) != 0 {
				t.Errorf("%s: row %d = %v: sum %v, argmax %d", cal.Method(), i, row, sum, metrics.Argmax(row))
			}
		}
		for q, n := range want {
			if got[q] != n {
				t.Errorf("%s: %d rows have top probability exactly %v, want %d (all: %v)", cal.Method(), got[q], q, n, got)
			}
		}
		for _, m := range []int{10, 15} {
			r := Result(cal, Report{}, s, nil, m)
			if e := r.Val.After.ECE; math.Abs(e-6.2/48) > 1e-15 {
				t.Errorf("%s M=%d: ECE after = %.17g, want 6.2/48 = %.17g", cal.Method(), m, e, 6.2/48)
			}
		}
	}
}

// Isotonic regression fitted by kdcal and by scikit-learn
// (IsotonicRegression(out_of_bounds="clip")) on the same validation
// confidences gives the same calibrated test confidences, and kdcal's ECE
// after isotonic equals numpy's ECE on sklearn's calibrated confidences
// (testdata/crosscheck_isotonic.py), to 1e-15, for M = 10 and 15. The
// validation set is built so that PAV pools blocks with means exactly
// 0.4 = 4/10, 0.6 and 0.8, which put 24, 10 and 6 test confidences on
// bin edges.
func TestIsotonicEdgesMatchSklearn(t *testing.T) {
	testutil.Slow(t, "about 8 s: the sklearn peer")
	testutil.RequirePython(t, "numpy", "sklearn")
	// Validation: within each group the correct examples have the lowest
	// confidences, so PAV pools the whole group into one block.
	var vconf []float64
	var vy []int
	for _, g := range []struct {
		n, correct int
		lo, hi     float64
	}{{10, 4, 0.495, 0.55}, {10, 6, 0.595, 0.65}, {10, 8, 0.695, 0.75}} {
		vconf = append(vconf, spread(g.n, g.lo, g.hi)...)
		vy = append(vy, labelsOf(g.n, g.correct)...)
	}
	val := Split{Logits: logitsWithConf(vconf), Labels: vy, C: 3}
	test := edgeSplit()
	var iso Isotonic
	if _, err := iso.Fit(context.Background(), val.Logits, val.Labels, 3); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, v []float64) {
		t.Helper()
		var b bytes.Buffer
		if err := npyio.Write(&b, v); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	vc, vok := topLabel(val.Logits, val.Labels, 3)
	tc, tok := topLabel(test.Logits, test.Labels, 3)
	write("val_conf.npy", vc)
	write("val_correct.npy", floats01(vok))
	write("test_conf.npy", tc)
	write("test_correct.npy", floats01(tok))
	out, err := exec.Command(testutil.Python, "testdata/crosscheck_isotonic.py", dir, "10", "15").Output()
	if err != nil {
		t.Fatalf("crosscheck_isotonic.py: %v", err)
	}
	var refs map[string]struct {
		ECE    float64   `json:"ece"`
		Conf   []float64 `json:"conf"`
		OnEdge int       `json:"on_edge"`
	}
	if err := json.Unmarshal(out, &refs); err != nil {
		t.Fatalf("crosscheck_isotonic.py output: %v\n%s", err, out)
	}
	p := iso.Probs(test.Logits, 3)
	for _, m := range []int{10, 15} {
		ref := refs[strconv.Itoa(m)]
		if ref.OnEdge < 40 {
			t.Errorf("M=%d: only %d sklearn confidences on a bin edge; the test needs ≥ 40", m, ref.OnEdge)
		}
		for i, q := range ref.Conf {
			if p[3*i] != q {
				t.Errorf("row %d: kdcal calibrated confidence %.17g, sklearn %.17g", i, p[3*i], q)
			}
		}
		r := Result(&iso, Report{}, val, &test, m)
		if math.Abs(r.Test.After.ECE-ref.ECE) > 1e-15 {
			t.Errorf("M=%d: ECE after isotonic %.17g, numpy on sklearn's confidences %.17g", m, r.Test.After.ECE, ref.ECE)
		}
	}
}

func floats01(b []bool) []float64 {
	out := make([]float64, len(b))
	for i, v := range b {
		if v {
			out[i] = 1
		}
	}
	return out
}
