package spec

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The mlp and cnn families are one walk over layers: a CNN is conv stages
// followed by an MLP, an MLP is a CNN with no conv stage. This file is the
// one place that walks their layer shapes (parameters, cost, description).
//
//	mlp: x (N, D) → [Linear → ReLU] × len(hidden) → Linear → logits
//	cnn: per conv entry MaxPool2×2,s2(ReLU(Conv3×3,s1,p1(x) + b)), flatten(1), then as mlp
func init() {
	RegisterFamily(convFamily{name: "mlp"})
	RegisterFamily(convFamily{name: "cnn", conv: true})
}

// ConvSpec is the typed spec of the mlp and cnn families. Its JSON (field
// names Conv and Hidden) is what step hashes and summaries record.
type ConvSpec struct {
	Conv   []int `yaml:"conv,omitempty"`
	Hidden []int `yaml:"hidden"`
}

type convFamily struct {
	name string
	conv bool // conv stages allowed (and required)
}

func (f convFamily) Name() string { return f.name }

// Inits: he (kdcal's default) and torch (nn.Linear / nn.Conv2d
// reset_parameters); internal/model's Weights.InitWith draws them.
func (convFamily) Inits() []string { return []string{InitHe, InitTorch} }

func (f convFamily) Keys() []Key {
	conv := "output channels per conv stage (3x3 conv, ReLU, 2x2 max-pool)"
	if !f.conv {
		conv = "must be empty: an mlp has no conv stages"
	}
	return []Key{{"conv", conv}, {"hidden", "hidden dense layer widths, each followed by ReLU"}}
}

func (f convFamily) Check(s Spec) []Problem {
	cs, ps := decodeConv(s, f.Keys())
	switch {
	case f.conv && len(cs.Conv) == 0:
		ps = append(ps, Problem{"conv", "a cnn needs at least one conv stage (e.g. [8, 16])"})
	case !f.conv && len(cs.Conv) != 0:
		ps = append(ps, Problem{"conv", "an mlp has no conv stages; remove conv or use family cnn"})
	}
	for _, w := range append(slices.Clone(cs.Conv), cs.Hidden...) {
		if w <= 0 {
			ps = append(ps, Problem{"", fmt.Sprintf("layer width %d must be > 0", w)})
		}
	}
	return ps
}

func (f convFamily) HashKey(s Spec) any {
	cs, _ := decodeConv(s, nil)
	return cs
}

func (f convFamily) New(s Spec, in Shape) (Arch, error) {
	cs, _ := decodeConv(s, nil)
	a := ConvArch{family: f.name, Spec: cs, In: in}
	if _, fh, fw := a.FeatureShape(); fh < 1 || fw < 1 {
		return nil, fmt.Errorf("a %d×%d input is too small for %d conv stages (each halves height and width)",
			in.H, in.W, len(cs.Conv))
	}
	return a, nil
}

// decodeConv reads a spec's conv and hidden lists; with keys non-nil, keys
// outside keys and values that are not lists of whole numbers are problems.
// An absent list stays nil and an empty one empty, as the configuration had
// them (the step hashes record the difference).
func decodeConv(s Spec, keys []Key) (ConvSpec, []Problem) {
	var cs ConvSpec
	var ps []Problem
	for k, v := range s {
		var dst *[]int
		switch k {
		case "conv":
			dst = &cs.Conv
		case "hidden":
			dst = &cs.Hidden
		}
		if keys != nil && !slices.ContainsFunc(keys, func(x Key) bool { return x.Name == k }) {
			ps = append(ps, Problem{k, "unknown key" + suggestKey(k, keys)})
			continue
		}
		if dst == nil {
			continue
		}
		xs, ok := Ints(v)
		if !ok && keys != nil {
			ps = append(ps, Problem{k, fmt.Sprintf("%v is not a list of whole numbers (e.g. [8, 16])", v)})
		}
		*dst = xs
	}
	slices.SortFunc(ps, func(a, b Problem) int { return strings.Compare(a.Key, b.Key) })
	return cs, ps
}

// Ints reads a spec value as a list of whole numbers: a list of them, or
// one whole number as a one-element list.
func Ints(v any) ([]int, bool) {
	switch x := v.(type) {
	case []int:
		return x, true
	case int:
		return []int{x}, true
	case float64:
		if x != float64(int(x)) {
			return nil, false
		}
		return []int{int(x)}, true
	case []any:
		out := make([]int, 0, len(x))
		for _, e := range x {
			switch i := e.(type) {
			case int:
				out = append(out, i)
			case float64: // a spec read back from JSON (safetensors metadata)
				if i != float64(int(i)) {
					return nil, false
				}
				out = append(out, int(i))
			default:
				return nil, false
			}
		}
		return out, true
	case nil:
		return nil, true
	}
	return nil, false
}

func suggestKey(k string, keys []Key) string {
	names := make([]string, len(keys))
	for i, x := range keys {
		names[i] = x.Name
	}
	return " (keys: " + strings.Join(names, ", ") + ")"
}

// ConvArch is an architecture of the mlp or cnn family.
type ConvArch struct {
	family string
	Spec   ConvSpec
	In     Shape
}

// Family implements Arch.
func (a ConvArch) Family() string { return a.family }

// Input implements Arch.
func (a ConvArch) Input() Shape { return a.In }

// Buffers implements Arch: these families have no non-learnable state.
func (a ConvArch) Buffers() []Param { return nil }

// FeatureShape returns the shape after the conv stages (the input itself
// for an MLP).
func (a ConvArch) FeatureShape() (c, h, w int) {
	c, h, w = a.In.C, a.In.H, a.In.W
	for _, out := range a.Spec.Conv {
		c, h, w = out, h/2, w/2
	}
	return c, h, w
}

// Params implements Arch: conv stages, hidden dense layers, output layer,
// each weight before its bias.
func (a ConvArch) Params() []Param {
	var ps []Param
	in := a.In.C
	for i, out := range a.Spec.Conv {
		pre := "conv" + strconv.Itoa(i)
		ps = append(ps,
			Param{Name: pre + ".weight", Kind: ConvWeight, Shape: []int{out, in, 3, 3}, FanIn: in * 9, FanOut: out * 9},
			Param{Name: pre + ".bias", Kind: ConvBias, Shape: []int{1, out, 1, 1}, FanIn: in * 9, FanOut: out * 9})
		in = out
	}
	c, h, w := a.FeatureShape()
	in = c * h * w
	for i, out := range a.Spec.Hidden {
		pre := "fc" + strconv.Itoa(i)
		ps = append(ps,
			Param{Name: pre + ".weight", Kind: DenseWeight, Shape: []int{in, out}, FanIn: in, FanOut: out},
			Param{Name: pre + ".bias", Kind: DenseBias, Shape: []int{1, out}, FanIn: in, FanOut: out})
		in = out
	}
	k := a.In.Classes
	return append(ps,
		Param{Name: "out.weight", Kind: DenseWeight, Shape: []int{in, k}, FanIn: in, FanOut: k, Output: true},
		Param{Name: "out.bias", Kind: DenseBias, Shape: []int{1, k}, FanIn: in, FanOut: k, Output: true})
}

// Cost implements Arch: 3× the forward multiply-adds (forward + backward),
// 9·Cin·Cout·H·W per 3×3 conv stage (same padding, before pooling) plus
// in·out per dense layer.
func (a ConvArch) Cost() float64 {
	c, h, w := a.In.C, a.In.H, a.In.W
	var macs float64
	for _, out := range a.Spec.Conv {
		macs += 9 * float64(c*out*h*w)
		c, h, w = out, h/2, w/2
	}
	in := c * h * w
	for _, out := range append(slices.Clone(a.Spec.Hidden), a.In.Classes) {
		macs += float64(in * out)
		in = out
	}
	return 3 * macs
}

// String implements Arch, e.g. "cnn 1×28×28 conv[4 8] → 392 → dense[32] → 10".
func (a ConvArch) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d×%d×%d", a.family, a.In.C, a.In.H, a.In.W)
	if len(a.Spec.Conv) > 0 {
		c, h, w := a.FeatureShape()
		fmt.Fprintf(&b, " conv%v → %d", a.Spec.Conv, c*h*w)
	}
	if len(a.Spec.Hidden) > 0 {
		fmt.Fprintf(&b, " → dense%v", a.Spec.Hidden)
	}
	fmt.Fprintf(&b, " → %d", a.In.Classes)
	return b.String()
}
