package calibrate

import (
	"context"
	"math"
	"testing"

	"github.com/kdcal/kdcal/internal/metrics"
)

// Hand-computed PAV. Points (x, y), equal x pooled first:
//
//	x:  .1 .1 | .2 .2 .2 | .3 | .4
//	y:   1  0 |  0  1  1 |  0 |  1
//
// pooled: (.1, 1/2, w2) (.2, 2/3, w3) (.3, 0, w1) (.4, 1, w1). (.2) and
// (.3) violate: merge → (.2–.3, 2/4 = .5, w4); now (.1, .5) ≥ (.5):
// merge → (.1–.3, 3/6 = .5, w6); then (.4, 1).
// Breakpoints: (.1, .5), (.3, .5), (.4, 1).
func TestPAVHandComputed(t *testing.T) {
	x := []float64{0.2, 0.1, 0.3, 0.2, 0.1, 0.4, 0.2}
	y := []float64{0, 1, 0, 1, 0, 1, 1}
	bx, by := pav(x, y)
	wantX, wantY := []float64{0.1, 0.3, 0.4}, []float64{0.5, 0.5, 1}
	if !equal(bx, wantX) || !equal(by, wantY) {
		t.Errorf("pav = %v, %v; want %v, %v", bx, by, wantX, wantY)
	}
	// Equal x are pooled before PAV, never merged into a block that
	// already holds smaller x (a naive stack would give 0.6 everywhere):
	// (.1, 1/2, w2) (.2, 2/3, w3) is already monotone.
	bx, by = pav([]float64{0.1, 0.1, 0.2, 0.2, 0.2}, []float64{1, 0, 0, 1, 1})
	if !equal(bx, []float64{0.1, 0.2}) || !equal(by, []float64{0.5, 2.0 / 3}) {
		t.Errorf("pav with ties = %v, %v; want [.1 .2], [.5 .667]", bx, by)
	}
}

// Between breakpoints the isotonic map interpolates linearly; outside it clips.
func TestIsotonicInterpolation(t *testing.T) {
	s := &Isotonic{C: 2, X: []float64{0.5, 0.7, 0.9}, Y: []float64{0.4, 0.4, 0.8}}
	for _, tt := range []struct{ conf, want float64 }{
		{0.3, 0.4}, {0.5, 0.4}, {0.6, 0.4}, {0.7, 0.4}, {0.8, 0.6}, {0.85, 0.7}, {0.9, 0.8}, {1, 0.8},
	} {
		if got := s.at(tt.conf); math.Abs(got-tt.want) > 1e-15 {
			t.Errorf("at(%v) = %v, want %v", tt.conf, got, tt.want)
		}
	}
}

// Hist: C=2 logits whose top-label confidences land in bins of M=2
// ((0, .5], (.5, 1]); all have confidence > .5 so bin 0 is empty and keeps
// its midpoint .25; bin 1's value is the accuracy 2/3.
func TestHistHandComputed(t *testing.T) {
	z := []float64{2, 0, 0, 1, 3, 0}
	y := []int{0, 0, 0}
	h := &Hist{Bins: 2}
	rep, err := h.Fit(context.Background(), z, y, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(h.Value, []float64{0.25, 2.0 / 3}) || h.Count[0] != 0 || h.Count[1] != 3 {
		t.Errorf("values %v counts %v, want [.25 .667] [0 3]", h.Value, h.Count)
	}
	if rep.Note == "" {
		t.Error("no note about the empty bin")
	}
	p := h.Probs(z, 2)
	want := []float64{2.0 / 3, 1.0 / 3, 1.0 / 3, 2.0 / 3, 2.0 / 3, 1.0 / 3}
	for i := range want {
		if math.Abs(p[i]-want[i]) > 1e-15 {
			t.Errorf("probs = %v, want %v", p, want)
			break
		}
	}
}

// retemper gives softmax(β z) with top probability q: the predicted class
// and the order of all classes are kept; q at or below 1/C gives a
// nearly uniform vector; q beyond the reach of tied top classes gives 1/k each.
func TestRetemper(t *testing.T) {
	z := []float64{2, 0.5, -1, 1.5}
	for _, q := range []float64{0.3, 0.45, 0.6, 0.9, 0.999999} {
		out := make([]float64, 4)
		retemper(out, z, func(float64) float64 { return q })
		if math.Abs(out[0]-q) > 1e-12 {
			t.Errorf("q = %v: top probability %v", q, out[0])
		}
		if !(out[0] > out[3] && out[3] > out[1] && out[1] > out[2]) {
			t.Errorf("q = %v: order of classes changed: %v", q, out)
		}
		if s := out[0] + out[1] + out[2] + out[3]; math.Abs(s-1) > 1e-12 {
			t.Errorf("q = %v: sums to %v", q, s)
		}
	}
	// The identity: q(conf) = conf returns softmax(z) (β = 1).
	out := make([]float64, 4)
	retemper(out, z, func(conf float64) float64 { return conf })
	p := []float64{math.Exp(2), math.Exp(0.5), math.Exp(-1), math.Exp(1.5)}
	s := p[0] + p[1] + p[2] + p[3]
	for k := range p {
		if math.Abs(out[k]-p[k]/s) > 1e-14 {
			t.Errorf("identity: %v, want softmax %v", out, p)
			break
		}
	}
	// At or below chance: uniform to within 1e-9, order kept.
	below := make([]float64, 4)
	retemper(below, []float64{3, 1, 0, 0}, func(float64) float64 { return 0.2 })
	if !(below[0] > below[1] && below[1] > below[2] && below[2] == below[3]) || math.Abs(below[0]-0.25) > 1e-8 {
		t.Errorf("below chance: %v, want ≈ uniform with the order kept", below)
	}
	for _, tt := range []struct {
		name string
		row  []float64
		q    float64
		want []float64
	}{
		{"certain: one-hot", []float64{3, 1, 0, 0}, 1, []float64{1, 0, 0, 0}},
		{"tied top beyond reach", []float64{1, 3, 3, 0}, 0.7, []float64{0, 0.5, 0.5, 0}},
	} {
		out := make([]float64, len(tt.row))
		retemper(out, tt.row, func(float64) float64 { return tt.q })
		if !equal(out, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, out, tt.want)
		}
	}
}

// hist and isotonic keep the predicted class of every example, even where
// validation accuracy is low (here about 45%).
func TestTopLabelMethodsKeepPredictions(t *testing.T) {
	z, y := sample(13, 4000, 10)
	z = scaled(z, 2.5)
	for _, cal := range []Calibrator{&Hist{Bins: 15}, &Isotonic{}} {
		if _, err := cal.Fit(context.Background(), z, y, 10); err != nil {
			t.Fatal(err)
		}
		p := cal.Probs(z, 10)
		for i := range y {
			if a, b := metrics.Argmax(z[i*10:(i+1)*10]), metrics.Argmax(p[i*10:(i+1)*10]); a != b {
				t.Fatalf("%s: row %d: predicted class %d became %d", cal.Method(), i, a, b)
			}
		}
	}
}
