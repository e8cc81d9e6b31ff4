package modeltest_test

// A toy family, linear softmax regression, in one file with one
// registration line each for its descriptor and its graph builder: the
// proof that a family is "one new file plus one registration line", run
// through the same suite as mlp and cnn.

import (
	"fmt"
	"strings"

	G "gorgonia.org/gorgonia"

	"testing"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/model"
	"github.com/kdcal/kdcal/internal/model/modeltest"
	"github.com/kdcal/kdcal/internal/spec"
)

func init() {
	spec.RegisterFamily(linearFamily{})
	model.RegisterBuilder("linear", buildLinear)
}

// linearFamily: logits = x·W + b. Its spec has one key, scale, unused by
// the graph (a stand-in for a size knob: it only multiplies the cost), so
// that the suite's "cost grows with size" has sizes to compare.
type linearFamily struct{}

func (linearFamily) Name() string     { return "linear" }
func (linearFamily) Keys() []spec.Key { return []spec.Key{{Name: "hidden", Comment: "must be empty"}} }
func (linearFamily) Check(s spec.Spec) []spec.Problem {
	if xs, _ := spec.Ints(s["hidden"]); len(xs) > 1 {
		return []spec.Problem{{Key: "hidden", Msg: "a linear model takes at most one entry (a cost multiplier)"}}
	}
	return nil
}
func (linearFamily) HashKey(s spec.Spec) any { return s }
func (linearFamily) New(s spec.Spec, in spec.Shape) (spec.Arch, error) {
	xs, _ := spec.Ints(s["hidden"])
	k := 1
	if len(xs) == 1 {
		k = xs[0]
	}
	return linearArch{in: in, k: k}, nil
}

type linearArch struct {
	in spec.Shape
	k  int
}

func (a linearArch) Family() string        { return "linear" }
func (a linearArch) Input() spec.Shape     { return a.in }
func (a linearArch) Buffers() []spec.Param { return nil }
func (a linearArch) Cost() float64         { return 3 * float64(a.k*a.in.D()*a.in.Classes) }
func (a linearArch) String() string {
	return fmt.Sprintf("linear %d → %d ×%d", a.in.D(), a.in.Classes, a.k)
}
func (a linearArch) Params() []spec.Param {
	d, k := a.in.D(), a.in.Classes
	return []spec.Param{
		{Name: "out.weight", Kind: spec.DenseWeight, Shape: []int{d, k}, FanIn: d, FanOut: k, Output: true},
		{Name: "out.bias", Kind: spec.DenseBias, Shape: []int{1, k}, FanIn: d, FanOut: k, Output: true},
	}
}

func buildLinear(gr *model.Graph, a model.Arch, _ model.Mode) error {
	gr.X = G.NewMatrix(gr.G, gr.Params[0].Dtype(), G.WithShape(gr.BS, a.D()), G.WithName("x"))
	h, err := G.Mul(gr.X, gr.Params[0])
	if err != nil {
		return err
	}
	gr.Logits, err = G.BroadcastAdd(h, gr.Params[1], nil, []byte{0})
	return err
}

func TestToyLinearFamily(t *testing.T) {
	modeltest.Suite{Family: "linear", Input: small,
		Sizes: []config.ModelSpec{{}, {"hidden": []int{4}}}}.Run(t)
}

// The toy family is configured like a built-in one, with no config field of
// its own: teacher.linear.<size>, its keys checked by the family.
func TestToyLinearFamilyConfig(t *testing.T) {
	c, err := config.Load(config.Source{Set: map[string]string{"teacher.family": "linear", "teacher.sizes": "one",
		"teacher.linear.one.hidden": "2", "data.dataset": "synthetic"}})
	if err != nil {
		t.Fatal(err)
	}
	m, ok := c.Teacher.Spec("one")
	if !ok {
		t.Fatal("teacher.linear.one is not in the size table")
	}
	sh, _ := c.Data.Shape()
	a, err := model.NewArch("linear", m, sh.C, sh.H, sh.W, sh.Classes)
	if err != nil || a.Desc().Cost() != 3*2*16*4 {
		t.Fatalf("NewArch: %v, cost %v", err, a.Desc().Cost())
	}
	_, err = config.Load(config.Source{Set: map[string]string{"teacher.linear.one.width": "2"}})
	if err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Fatalf("a key the family does not have: %v", err)
	}
}
