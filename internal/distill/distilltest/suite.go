// Package distilltest is the conformance suite every KD loss runs (as
// calibrate/calibratetest is for calibrators and restic's backend test
// suite for backends):
//
//	distilltest.Suite{New: func() distill.Loss { return distill.MSE{} }, ZeroAtTeacher: true}.Run(t)
package distilltest

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/distill"
)

// Suite checks one loss.
type Suite struct {
	New func() distill.Loss
	// ZeroAtTeacher: the term is 0 when the student's logits equal the
	// teacher's (true for kd, dkd and mse at any τ).
	ZeroAtTeacher bool
}

const (
	classes = 5
	train   = 9 // rows of the targets table
	bs      = 6 // graph batch size: 4 valid rows, 2 padded
)

var (
	pos    = []int{7, 2, 5, 0}
	labels = []int{1, 4, 0, 2}
)

// Run runs every check at τ ∈ {1, 4}, and checks that τ matters exactly
// when config.Tempered says the loss has one.
func (s Suite) Run(t *testing.T) {
	t.Run("temperature", s.temperature)
	for _, tau := range []float64{1, 4} {
		t.Run("value", func(t *testing.T) { s.value(t, tau) })
		t.Run("gradient", func(t *testing.T) { s.gradient(t, tau) })
		t.Run("batch-size", func(t *testing.T) { s.batchSize(t, tau) })
		if s.ZeroAtTeacher {
			t.Run("zero-at-teacher", func(t *testing.T) { s.zero(t, tau) })
		}
	}
}

// problem returns teacher logits (train×C), their targets and student logits (bs×C).
func (s Suite) problem(t *testing.T, tau float64) (l distill.Loss, z []float64, targets []float32, st []float64) {
	rng := rand.New(rand.NewPCG(1, 2))
	l = s.New()
	z = make([]float64, train*classes)
	for i := range z {
		z[i] = 3 * rng.NormFloat64()
	}
	targets, err := l.Targets(z, classes, tau)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CheckTargets(targets, classes); err != nil {
		t.Fatal(err)
	}
	st = make([]float64, bs*classes)
	for i := range st {
		st[i] = 2 * rng.NormFloat64()
	}
	return l, z, targets, st
}

// rows gathers the targets of pos.
func rows(targets []float32, pos []int) []float32 {
	var out []float32
	for _, p := range pos {
		out = append(out, targets[p*classes:(p+1)*classes]...)
	}
	return out
}

// graphTerm builds the loss on a float64 graph whose student logits are a
// bound input, fills pos/labels and returns value+constant and d/ds.
func graphTerm(t *testing.T, l distill.Loss, targets []float32, s []float64, n int, pos, labels []int, tau, w float64) (float64, []float64) {
	t.Helper()
	g := G.NewGraph()
	sn := G.NewMatrix(g, tensor.Float64, G.WithShape(n, classes), G.WithName("s"))
	if err := G.Let(sn, tensor.New(tensor.WithShape(n, classes), tensor.WithBacking(append([]float64(nil), s...)))); err != nil {
		t.Fatal(err)
	}
	term, err := l.Build(g, sn, distill.Inputs{Tau: tau, Weight: w, Targets: targets, C: classes})
	if err != nil {
		t.Fatal(err)
	}
	neg, err := G.Neg(term.Node())
	if err != nil {
		t.Fatal(err)
	}
	grads, err := G.Grad(term.Node(), sn)
	if err != nil {
		t.Fatal(err)
	}
	negGrad, err := G.Neg(grads[0])
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	term.Fill(pos, labels)
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	v := -neg.Value().Data().(float64) + term.Constant(pos)
	gd := negGrad.Value().Data().([]float64)
	out := make([]float64, len(gd))
	for i, x := range gd {
		out[i] = -x
	}
	return v, out
}

// value: the graph (weight 0.7, 2 padded rows, targets by position) equals
// 0.7 × the loss's float64 Reference; tolerance 1e-12.
func (s Suite) value(t *testing.T, tau float64) {
	l, _, targets, st := s.problem(t, tau)
	const w = 0.7
	got, _ := graphTerm(t, l, targets, st, bs, pos, labels, tau, w)
	ref, _ := l.Reference(st[:len(pos)*classes], rows(targets, pos), labels, classes, tau)
	if math.Abs(got-w*ref) > 1e-12*(1+math.Abs(ref)) {
		t.Errorf("%s τ=%v: graph %.15g, reference %.15g", l.Name(), tau, got, w*ref)
	}
}

// gradient: Reference's gradient equals central finite differences of
// Reference (gonum/diff/fd), and the graph's gradient equals Reference's
// on the valid rows and is 0 on padded rows; tolerance 1e-6.
func (s Suite) gradient(t *testing.T, tau float64) {
	l, _, targets, st := s.problem(t, tau)
	m := len(pos) * classes
	tb := rows(targets, pos)
	_, ref := l.Reference(st[:m], tb, labels, classes, tau)
	num := fd.Gradient(nil, func(x []float64) float64 {
		v, _ := l.Reference(x, tb, labels, classes, tau)
		return v
	}, st[:m], &fd.Settings{Formula: fd.Central})
	_, gg := graphTerm(t, l, targets, st, bs, pos, labels, tau, 1)
	for i := range gg {
		want := 0.0
		if i < m {
			want = ref[i]
			if math.Abs(ref[i]-num[i]) > 1e-6 {
				t.Errorf("%s τ=%v: ∂/∂s[%d] = %.9g, finite differences %.9g", l.Name(), tau, i, ref[i], num[i])
			}
		}
		if math.Abs(gg[i]-want) > 1e-6 {
			t.Errorf("%s τ=%v: graph ∂/∂s[%d] = %.9g, reference %.9g", l.Name(), tau, i, gg[i], want)
		}
	}
}

// batchSize: the term is a mean over the batch: the same rows in a graph
// of batch size 4 and of 6 (2 padded), and the batch repeated twice in the
// reference, give the same value; tolerance 1e-12.
func (s Suite) batchSize(t *testing.T, tau float64) {
	l, _, targets, st := s.problem(t, tau)
	m := len(pos) * classes
	a, _ := graphTerm(t, l, targets, st[:m], len(pos), pos, labels, tau, 1)
	b, _ := graphTerm(t, l, targets, st, bs, pos, labels, tau, 1)
	tb := rows(targets, pos)
	r1, _ := l.Reference(st[:m], tb, labels, classes, tau)
	r2, _ := l.Reference(append(append([]float64(nil), st[:m]...), st[:m]...), append(append([]float32(nil), tb...), tb...),
		append(append([]int(nil), labels...), labels...), classes, tau)
	if math.Abs(a-b) > 1e-12*(1+math.Abs(a)) || math.Abs(r1-r2) > 1e-12*(1+math.Abs(r1)) {
		t.Errorf("%s τ=%v: batch 4 %.15g vs batch 6 (padded) %.15g; reference ×1 %.15g vs ×2 %.15g", l.Name(), tau, a, b, r1, r2)
	}
}

// zero: with the student's logits equal to the teacher's, the term is 0
// (to the float32 rounding of the targets: tolerance 1e-6).
func (s Suite) zero(t *testing.T, tau float64) {
	l, z, targets, _ := s.problem(t, tau)
	st := make([]float64, 0, len(pos)*classes)
	for _, p := range pos {
		st = append(st, z[p*classes:(p+1)*classes]...)
	}
	v, _ := l.Reference(st, rows(targets, pos), labels, classes, tau)
	g, _ := graphTerm(t, l, targets, st, len(pos), pos, labels, tau, 1)
	if math.Abs(v) > 1e-6 || math.Abs(g) > 1e-6 {
		t.Errorf("%s τ=%v: term at student = teacher: reference %.3g, graph %.3g, want 0", l.Name(), tau, v, g)
	}
}

// temperature: a loss config lists as untempered (the plan trains it once,
// with τ = 0, whatever the τ grid) gives the same graph term at τ = 0, 1
// and 4; a tempered loss whose nonzero term does not change between τ = 1
// and 4 should be listed (it would train duplicate students). Tolerance
// 1e-12, relative.
func (s Suite) temperature(t *testing.T) {
	term := func(tau float64) float64 {
		l, _, targets, st := s.problem(t, tau)
		v, _ := graphTerm(t, l, targets, st, bs, pos, labels, tau, 1)
		return v
	}
	name := s.New().Name()
	v1, v4 := term(1), term(4)
	same := math.Abs(v1-v4) <= 1e-12*(1+math.Abs(v1))
	switch {
	case !config.Tempered(name):
		if v0 := term(0); !same || math.Abs(v0-v1) > 1e-12*(1+math.Abs(v1)) {
			t.Errorf("%s is listed in config.UntemperedLosses but its term depends on τ: %.15g (τ=0), %.15g (τ=1), %.15g (τ=4)",
				name, v0, v1, v4)
		}
	case same && v1 != 0:
		t.Errorf("%s: τ = 1 and 4 give the same term %.15g: list it in config.UntemperedLosses", name, v1)
	}
}
