// Package calibratetest is the conformance suite that every
// calibrate.Calibrator passes, in the spirit of restic's backend test
// suite: one set of behavioural tests, run by each method's test.
//
//	func TestTemp(t *testing.T) {
//		calibratetest.Suite{New: func() calibrate.Calibrator { return &calibrate.Temp{} }}.Run(t)
//	}
package calibratetest

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kdcal/kdcal/internal/calibrate"
	"github.com/kdcal/kdcal/internal/metrics"
)

// Suite runs the conformance tests on calibrators made by New.
type Suite struct {
	// New returns a fresh, unfitted calibrator.
	New func() calibrate.Calibrator
	// Identity marks a method that leaves probabilities unchanged (none):
	// the suite then checks that NLL and ECE stay the same instead of falling.
	Identity bool
}

// Data is a synthetic classification set: labels are drawn from
// softmax(Z) with Z_ik ~ N(0, 1.5²) plus a class bias, and the logits
// returned are Scale·Z — over-confident by a factor Scale when Scale > 1.
// Seed fixes everything.
func Data(seed uint64, n, c int, scale float64) calibrate.Split {
	rng := rand.New(rand.NewPCG(seed, 0x6b6463616c))
	z := make([]float64, n*c)
	y := make([]int, n)
	p := make([]float64, c)
	for i := range n {
		row := z[i*c : (i+1)*c]
		for k := range row {
			row[k] = 1.5*rng.NormFloat64() + 0.3*float64(k%3)
		}
		metrics.Softmax(p, row, c)
		u, j := rng.Float64(), 0
		for ; j < c-1 && u >= p[j]; j++ {
			u -= p[j]
		}
		y[i] = j
		for k := range row {
			row[k] *= scale
		}
	}
	return calibrate.Split{Logits: z, Labels: y, C: c}
}

// Run runs every conformance test as a subtest.
func (s Suite) Run(t *testing.T) {
	val := Data(1, 4000, 5, 3)
	test := Data(2, 4000, 5, 3)
	t.Run("LowersValidationNLL", func(t *testing.T) { s.lowersNLL(t, val, test) })
	t.Run("Deterministic", func(t *testing.T) { s.deterministic(t, val, test) })
	t.Run("SaveLoadRoundTrip", func(t *testing.T) { s.roundTrip(t, val, test) })
	t.Run("ValidProbabilities", func(t *testing.T) { s.validProbs(t, val, test) })
	t.Run("InputsUnchanged", func(t *testing.T) { s.inputsUnchanged(t, val, test) })
	t.Run("LogitMapperConsistent", func(t *testing.T) { s.logitMapper(t, val, test) })
	t.Run("RefitReplaces", func(t *testing.T) { s.refit(t, val) })
	t.Run("PanicsOnMisuse", func(t *testing.T) { s.panics(t, val) })
	t.Run("TinyInputs", func(t *testing.T) { s.tiny(t) })
	t.Run("RejectsBadParams", func(t *testing.T) { s.rejects(t, val) })
}

func (s Suite) fit(t *testing.T, d calibrate.Split) (calibrate.Calibrator, calibrate.Report) {
	t.Helper()
	cal := s.New()
	rep, err := cal.Fit(context.Background(), d.Logits, d.Labels, d.C)
	if err != nil {
		t.Fatalf("%s: Fit: %v", cal.Method(), err)
	}
	return cal, rep
}

// lowersNLL: on an over-confident set (logits ×3), fitting lowers the
// validation NLL by a clear margin and the held-out ECE; the Report's
// NLLs are the real ones.
func (s Suite) lowersNLL(t *testing.T, val, test calibrate.Split) {
	cal, rep := s.fit(t, val)
	raw := metrics.NLL(val.Logits, val.Labels, val.C, 1)
	after := metrics.NLLProbs(cal.Probs(val.Logits, val.C), val.Labels, val.C)
	if math.Abs(rep.NLLBefore-raw) > 1e-12 {
		t.Errorf("Report.NLLBefore = %v, NLL of the raw logits = %v", rep.NLLBefore, raw)
	}
	if math.Abs(rep.NLLAfter-after) > 1e-9 {
		t.Errorf("Report.NLLAfter = %v, NLL of Probs = %v", rep.NLLAfter, after)
	}
	eceBefore := metrics.ECE(metrics.Softmax(nil, test.Logits, test.C), test.Labels, test.C, 15)
	eceAfter := metrics.ECE(cal.Probs(test.Logits, test.C), test.Labels, test.C, 15)
	if s.Identity {
		if math.Abs(after-raw) > 1e-12 || math.Abs(eceAfter-eceBefore) > 1e-12 {
			t.Errorf("identity changed NLL %v → %v or ECE %v → %v", raw, after, eceBefore, eceAfter)
		}
		return
	}
	if !(after < raw-0.05) {
		t.Errorf("validation NLL %v → %v, want a drop of at least 0.05 nats", raw, after)
	}
	if !(eceAfter < eceBefore/2) {
		t.Errorf("test ECE %v → %v, want at least halved", eceBefore, eceAfter)
	}
	t.Logf("%s: val NLL %.4f → %.4f, test ECE %.4f → %.4f (%s, %d iterations)",
		cal.Method(), raw, after, eceBefore, eceAfter, rep.Optimizer, rep.Iterations)
}

func (s Suite) deterministic(t *testing.T, val, test calibrate.Split) {
	a, ra := s.fit(t, val)
	b, rb := s.fit(t, val)
	ja, _ := calibrate.Marshal(a, &ra)
	jb, _ := calibrate.Marshal(b, &rb)
	if !bytes.Equal(ja, jb) {
		t.Errorf("two fits differ:\n%s\n%s", ja, jb)
	}
	if !bitsEqual(a.Probs(test.Logits, test.C), b.Probs(test.Logits, test.C)) {
		t.Error("two fits give different probabilities")
	}
}

func (s Suite) roundTrip(t *testing.T, val, test calibrate.Split) {
	cal, rep := s.fit(t, val)
	b, err := calibrate.Marshal(cal, &rep)
	if err != nil {
		t.Fatal(err)
	}
	got, grep, err := calibrate.Unmarshal(b)
	if err != nil {
		t.Fatalf("Unmarshal: %v\n%s", err, b)
	}
	if got.Method() != cal.Method() || got.Classes() != cal.Classes() || grep == nil || *grep != rep {
		t.Errorf("round trip: method %s classes %d report %+v, want %s %d %+v",
			got.Method(), got.Classes(), grep, cal.Method(), cal.Classes(), rep)
	}
	if !bitsEqual(got.Probs(test.Logits, test.C), cal.Probs(test.Logits, test.C)) {
		t.Error("loaded calibrator gives different probabilities")
	}
	if b2, _ := calibrate.Marshal(got, grep); !bytes.Equal(b, b2) {
		t.Errorf("re-encoding differs:\n%s\n%s", b, b2)
	}
	path := filepath.Join(t.TempDir(), "params.json")
	if err := calibrate.Save(path, cal, &rep); err != nil {
		t.Fatal(err)
	}
	fromFile, _, err := calibrate.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bitsEqual(fromFile.Probs(test.Logits, test.C), cal.Probs(test.Logits, test.C)) {
		t.Error("calibrator loaded from a file gives different probabilities")
	}
}

func (s Suite) validProbs(t *testing.T, val, test calibrate.Split) {
	cal, _ := s.fit(t, val)
	p := cal.Probs(test.Logits, test.C)
	if len(p) != len(test.Logits) {
		t.Fatalf("Probs returned %d values, want %d", len(p), len(test.Logits))
	}
	for i := 0; i < len(p); i += test.C {
		var sum float64
		for _, v := range p[i : i+test.C] {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("row %d: probability %v", i/test.C, v)
			}
			sum += v
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Fatalf("row %d sums to %v", i/test.C, sum)
		}
	}
}

func (s Suite) inputsUnchanged(t *testing.T, val, test calibrate.Split) {
	z, y := slices.Clone(val.Logits), slices.Clone(val.Labels)
	tz := slices.Clone(test.Logits)
	cal, _ := s.fit(t, val)
	cal.Probs(test.Logits, test.C)
	if lm, ok := cal.(calibrate.LogitMapper); ok {
		lm.MapLogits(test.Logits, test.C)
	}
	if !slices.Equal(z, val.Logits) || !slices.Equal(y, val.Labels) || !slices.Equal(tz, test.Logits) {
		t.Error("Fit, Probs or MapLogits modified their input")
	}
}

func (s Suite) logitMapper(t *testing.T, val, test calibrate.Split) {
	cal, _ := s.fit(t, val)
	lm, ok := cal.(calibrate.LogitMapper)
	if !ok {
		t.Skipf("%s does not map logits", cal.Method())
	}
	want := metrics.Softmax(nil, lm.MapLogits(test.Logits, test.C), test.C)
	if !bitsEqual(cal.Probs(test.Logits, test.C), want) {
		t.Error("Probs differs from softmax(MapLogits)")
	}
}

func (s Suite) refit(t *testing.T, val calibrate.Split) {
	cal, _ := s.fit(t, val)
	other := Data(3, 500, 3, 2)
	if _, err := cal.Fit(context.Background(), other.Logits, other.Labels, other.C); err != nil {
		t.Fatal(err)
	}
	if cal.Classes() != 3 {
		t.Errorf("Classes() = %d after refitting on 3 classes", cal.Classes())
	}
	fresh, _ := s.fit(t, other)
	if !bitsEqual(cal.Probs(other.Logits, 3), fresh.Probs(other.Logits, 3)) {
		t.Error("refitting gives a different calibrator than a fresh fit")
	}
}

func (s Suite) panics(t *testing.T, val calibrate.Split) {
	mustPanic(t, "Probs before Fit", func() { s.New().Probs(val.Logits, val.C) })
	cal, _ := s.fit(t, val)
	mustPanic(t, "Probs with another C", func() { cal.Probs(val.Logits[:8], 4) })
	mustPanic(t, "Fit with a label ≥ C", func() { s.New().Fit(context.Background(), []float64{0, 1}, []int{2}, 2) })
	mustPanic(t, "Fit with a length mismatch", func() { s.New().Fit(context.Background(), []float64{0, 1, 2}, []int{0}, 2) })
	mustPanic(t, "Fit with no examples", func() { s.New().Fit(context.Background(), nil, nil, 2) })
	if s.New().Classes() != 0 {
		t.Error("an unfitted calibrator reports classes")
	}
}

// tiny: three examples, all correct (separable), still give a usable fit.
func (s Suite) tiny(t *testing.T) {
	z := []float64{2, 0, 0, 3, 1, -1}
	y := []int{0, 1, 0}
	cal, _ := s.fit(t, calibrate.Split{Logits: z, Labels: y, C: 2})
	for _, v := range cal.Probs(z, 2) {
		if !(v >= 0 && v <= 1) {
			t.Fatalf("probability %v", v)
		}
	}
}

func (s Suite) rejects(t *testing.T, val calibrate.Split) {
	method := s.New().Method()
	for _, bad := range []string{
		`{"method": "` + method + `", "params": {"bogus": 1}}`,
		`{"method": "` + method + `", "params": {"classes": 0}}`,
		`{"method": "` + method + `"}`,
		`{"method": "nope", "params": {}}`,
		`not json`,
	} {
		if _, _, err := calibrate.Unmarshal([]byte(bad)); err == nil {
			t.Errorf("Unmarshal(%s) accepted bad input", bad)
		}
	}
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: no panic", what)
		}
	}()
	f()
}

func bitsEqual(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}
