package model

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kdcal/kdcal/internal/config"
)

// Arch is one concrete architecture: a family, its layer widths and the
// input it reads.
type Arch struct {
	Family  string           // config.FamilyMLP or config.FamilyCNN
	Spec    config.ModelSpec // conv channels per stage (CNN), dense hidden widths
	C, H, W int              // input channels, height, width
	Classes int              // outputs
}

// NewArch checks an architecture and returns it. Problems a user can cause
// (unknown family, non-positive widths, an image too small for the number of
// pooling stages) are errors naming the offending value.
func NewArch(family string, spec config.ModelSpec, c, h, w, classes int) (Arch, error) {
	a := Arch{Family: family, Spec: spec, C: c, H: h, W: w, Classes: classes}
	switch family {
	case config.FamilyMLP:
		if len(spec.Conv) > 0 {
			return Arch{}, fmt.Errorf("model: an mlp has no conv stages (got conv %v)", spec.Conv)
		}
	case config.FamilyCNN:
		if len(spec.Conv) == 0 {
			return Arch{}, fmt.Errorf("model: a cnn needs at least one conv stage")
		}
	default:
		return Arch{}, fmt.Errorf("model: unknown family %q (use %s)", family, strings.Join(config.Families, " or "))
	}
	if c < 1 || h < 1 || w < 1 || classes < 2 {
		return Arch{}, fmt.Errorf("model: input %d×%d×%d with %d classes is not a valid shape", c, h, w, classes)
	}
	for _, n := range append(append([]int{}, spec.Conv...), spec.Hidden...) {
		if n < 1 {
			return Arch{}, fmt.Errorf("model: layer width %d must be > 0", n)
		}
	}
	if _, fh, fw := a.featureShape(); fh < 1 || fw < 1 {
		return Arch{}, fmt.Errorf("model: a %d×%d input is too small for %d conv stages (each halves height and width)",
			h, w, len(spec.Conv))
	}
	return a, nil
}

// D returns the input dimension C·H·W.
func (a Arch) D() int { return a.C * a.H * a.W }

// featureShape returns the shape after the conv stages (the input itself for an MLP).
func (a Arch) featureShape() (c, h, w int) {
	c, h, w = a.C, a.H, a.W
	for _, out := range a.Spec.Conv {
		c, h, w = out, h/2, w/2
	}
	return c, h, w
}

// Kind says what a parameter tensor is.
type Kind int

// Parameter kinds.
const (
	ConvWeight  Kind = iota // (out, in, 3, 3), OIHW in gorgonia and torch
	ConvBias                // (1, out, 1, 1) in gorgonia, (out,) in torch
	DenseWeight             // (in, out) in gorgonia, (out, in) in torch
	DenseBias               // (1, out) in gorgonia, (out,) in torch
)

// Param describes one parameter tensor.
type Param struct {
	Name   string // torch state-dict name, e.g. "conv0.weight", "fc1.bias", "out.weight"
	Kind   Kind
	Shape  []int // gorgonia layout
	FanIn  int   // inputs per output unit
	FanOut int   // outputs per input unit
	Output bool  // part of the output layer (no ReLU after it)
}

// Size returns the number of elements.
func (p Param) Size() int {
	n := 1
	for _, d := range p.Shape {
		n *= d
	}
	return n
}

// TorchShape returns the parameter's shape in the PyTorch module.
func (p Param) TorchShape() []int {
	switch p.Kind {
	case DenseWeight:
		return []int{p.Shape[1], p.Shape[0]}
	case ConvBias:
		return []int{p.Shape[1]}
	case DenseBias:
		return []int{p.Shape[1]}
	}
	return append([]int(nil), p.Shape...)
}

// Params lists the parameter tensors in a fixed order: conv stages, hidden
// dense layers, output layer, each weight before its bias.
func (a Arch) Params() []Param {
	var ps []Param
	in := a.C
	for i, out := range a.Spec.Conv {
		pre := "conv" + strconv.Itoa(i)
		ps = append(ps,
			Param{Name: pre + ".weight", Kind: ConvWeight, Shape: []int{out, in, 3, 3}, FanIn: in * 9, FanOut: out * 9},
			Param{Name: pre + ".bias", Kind: ConvBias, Shape: []int{1, out, 1, 1}, FanIn: in * 9, FanOut: out * 9})
		in = out
	}
	c, h, w := a.featureShape()
	in = c * h * w
	for i, out := range a.Spec.Hidden {
		pre := "fc" + strconv.Itoa(i)
		ps = append(ps,
			Param{Name: pre + ".weight", Kind: DenseWeight, Shape: []int{in, out}, FanIn: in, FanOut: out},
			Param{Name: pre + ".bias", Kind: DenseBias, Shape: []int{1, out}, FanIn: in, FanOut: out})
		in = out
	}
	return append(ps,
		Param{Name: "out.weight", Kind: DenseWeight, Shape: []int{in, a.Classes}, FanIn: in, FanOut: a.Classes, Output: true},
		Param{Name: "out.bias", Kind: DenseBias, Shape: []int{1, a.Classes}, FanIn: in, FanOut: a.Classes, Output: true})
}

// NumParams returns the number of trainable parameters.
func (a Arch) NumParams() int {
	n := 0
	for _, p := range a.Params() {
		n += p.Size()
	}
	return n
}

// String describes the architecture, e.g.
// "cnn 1×28×28 conv[4 8] → 392 → dense[32] → 10".
func (a Arch) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d×%d×%d", a.Family, a.C, a.H, a.W)
	if len(a.Spec.Conv) > 0 {
		c, h, w := a.featureShape()
		fmt.Fprintf(&b, " conv%v → %d", a.Spec.Conv, c*h*w)
	}
	if len(a.Spec.Hidden) > 0 {
		fmt.Fprintf(&b, " → dense%v", a.Spec.Hidden)
	}
	fmt.Fprintf(&b, " → %d", a.Classes)
	return b.String()
}
