// Package modeltest is the conformance suite every model family runs
// (calibratetest is the model): a family registered in internal/spec with a
// graph builder in internal/model passes it or is not done.
package modeltest

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/model"
	"github.com/kdcal/kdcal/internal/spec"
)

// Suite runs one family through the checks.
type Suite struct {
	Family string
	// Sizes are valid specs in increasing size (at least two).
	Sizes []config.ModelSpec
	// Input is the shape the family is checked on (small: the suite trains).
	Input spec.Shape
}

// Run runs every check as a subtest.
func (s Suite) Run(t *testing.T) {
	t.Helper()
	if len(s.Sizes) < 2 {
		t.Fatal("modeltest: give at least two sizes")
	}
	t.Run("Registered", s.registered)
	t.Run("ParamCount", s.paramCount)
	t.Run("CostGrows", s.costGrows)
	t.Run("GraphModes", s.graphModes)
	t.Run("SGDLowersLoss", s.sgdLowersLoss)
	t.Run("CheckpointRoundTrip", s.checkpoint)
	t.Run("UniqueNames", s.uniqueNames)
}

func (s Suite) arch(t *testing.T, m config.ModelSpec) model.Arch {
	t.Helper()
	a, err := model.NewArch(s.Family, m, s.Input.C, s.Input.H, s.Input.W, s.Input.Classes)
	if err != nil {
		t.Fatalf("NewArch(%v): %v", m, err)
	}
	return a
}

func (s Suite) registered(t *testing.T) {
	if !slices.Contains(spec.FamilyNames(), s.Family) {
		t.Fatalf("family %q is not in spec.FamilyNames() = %v", s.Family, spec.FamilyNames())
	}
	if _, err := spec.LookupFamily(s.Family + "-nope"); err == nil {
		t.Error("an unknown family name is not an error")
	}
}

// paramCount: NumParams is the sum of the parameter shapes' sizes, and the
// architecture's torch shapes have as many elements as its gorgonia shapes.
func (s Suite) paramCount(t *testing.T) {
	for _, m := range s.Sizes {
		a := s.arch(t, m)
		n := 0
		for _, p := range a.Params() {
			tn := 1
			for _, d := range p.TorchShape() {
				tn *= d
			}
			if tn != p.Size() {
				t.Errorf("%s: torch shape %v has %d elements, gorgonia shape %v %d", p.Name, p.TorchShape(), tn, p.Shape, p.Size())
			}
			n += p.Size()
		}
		if a.NumParams() != n || n == 0 {
			t.Errorf("%v: NumParams = %d, sum of shapes %d", m, a.NumParams(), n)
		}
	}
}

func (s Suite) costGrows(t *testing.T) {
	prev := 0.0
	for _, m := range s.Sizes {
		c := s.arch(t, m).Desc().Cost()
		if !(c > prev) || math.IsInf(c, 0) {
			t.Errorf("%v: cost %g, not above the previous size's %g", m, c, prev)
		}
		prev = c
	}
}

func weights(a model.Arch, seed uint64) *model.Weights {
	w := model.NewWeights(a, tensor.Float32)
	w.Init(rand.New(rand.NewPCG(seed, 1)))
	return w
}

func (s Suite) graphModes(t *testing.T) {
	w := weights(s.arch(t, s.Sizes[0]), 1)
	for _, mode := range []model.Mode{model.Train, model.Eval} {
		gr, err := model.BuildMode(G.NewGraph(), w, 3, mode)
		if err != nil {
			t.Fatalf("mode %d: %v", mode, err)
		}
		if got := gr.Logits.Shape(); !got.Eq(tensor.Shape{3, s.Input.Classes}) {
			t.Errorf("mode %d: logits shape %v, want (3, %d)", mode, got, s.Input.Classes)
		}
		if len(gr.Params) != len(w.Params) {
			t.Errorf("mode %d: %d parameter nodes for %d parameters", mode, len(gr.Params), len(w.Params))
		}
	}
}

// batch returns a seeded batch of n examples with labels.
func (s Suite) batch(n int) ([]float32, []int) {
	rng := rand.New(rand.NewPCG(7, 7))
	x := make([]float32, n*s.Input.D())
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	y := make([]int, n)
	for i := range y {
		y[i] = i % s.Input.Classes
	}
	return x, y
}

// sgdLowersLoss: 20 plain SGD steps (lr 0.05) on one batch of 8 lower the
// mean cross-entropy on that batch, through the family's own gradients.
func (s Suite) sgdLowersLoss(t *testing.T) {
	const bs = 8
	w := weights(s.arch(t, s.Sizes[0]), 2)
	g := G.NewGraph()
	gr, err := model.BuildMode(g, w, bs, model.Train)
	if err != nil {
		t.Fatal(err)
	}
	x, y := s.batch(bs)
	onehot := make([]float32, bs*s.Input.Classes)
	for i, c := range y {
		onehot[i*s.Input.Classes+c] = 1
	}
	yt := G.NewMatrix(g, tensor.Float32, G.WithShape(bs, s.Input.Classes), G.WithName("y"),
		G.WithValue(tensor.New(tensor.WithShape(bs, s.Input.Classes), tensor.WithBacking(onehot))))
	logp := G.Must(G.LogSoftMax(gr.Logits))
	loss := G.Must(G.Neg(G.Must(G.Mean(G.Must(G.Sum(G.Must(G.HadamardProd(logp, yt)), 1))))))
	if _, err := G.Grad(loss, gr.Params...); err != nil {
		t.Fatal(err)
	}
	if err := G.Let(gr.X, tensor.New(tensor.WithShape(gr.X.Shape()...), tensor.WithBacking(x))); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(gr.Params...))
	defer vm.Close()
	var first, last float64
	for step := range 20 {
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		l := float64(loss.Value().Data().(float32))
		if step == 0 {
			first = l
		}
		last = l
		for i, p := range gr.Params {
			gv, err := p.Grad()
			if err != nil {
				t.Fatal(err)
			}
			wd, gd := w.Float32s(i), gv.Data().([]float32)
			for j := range wd {
				wd[j] -= 0.05 * gd[j]
			}
		}
		vm.Reset()
	}
	if !(last < first) {
		t.Errorf("loss %g after 20 SGD steps, %g before", last, first)
	}
}

// checkpoint: Save → Load gives the same architecture and bit-identical
// logits.
func (s Suite) checkpoint(t *testing.T) {
	a := s.arch(t, s.Sizes[len(s.Sizes)-1])
	w := weights(a, 3)
	x, _ := s.batch(5)
	logits := func(w *model.Weights) []float32 {
		ev, err := model.NewEvaluator(w, 4)
		if err != nil {
			t.Fatal(err)
		}
		defer ev.Close()
		out, err := ev.Logits(nil, x, 5)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := logits(w)
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := model.Save(path, w, model.Meta{Dataset: "synthetic", Scale: 1}); err != nil {
		t.Fatal(err)
	}
	w2, meta, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Family != s.Family || w2.Arch.String() != a.String() {
		t.Fatalf("loaded %s %s, saved %s", meta.Family, w2.Arch, a)
	}
	got := logits(w2)
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("logit %d: %v after restore, %v before", i, got[i], want[i])
		}
	}
}

func (s Suite) uniqueNames(t *testing.T) {
	for _, m := range s.Sizes {
		a := s.arch(t, m)
		seen := map[string]bool{}
		for _, p := range append(a.Params(), a.Desc().Buffers()...) {
			if seen[p.Name] {
				t.Errorf("%v: tensor name %q is used twice", m, p.Name)
			}
			seen[p.Name] = true
		}
	}
}
