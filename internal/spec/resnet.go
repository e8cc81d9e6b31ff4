package spec

import (
	"fmt"
	"slices"
	"strings"
)

// The resnet family is the CIFAR ResNet of He et al. 2016 ("Deep Residual
// Learning for Image Recognition", §4.2), whose numeric core is
// internal/fused (see its package documentation for the network):
//
//	x → relu(bn1(conv1(x))) → layer1 (n blocks, w) → layer2 (n, 2w, stride 2)
//	  → layer3 (n, 4w, stride 2) → global average pool → fc → logits
//
// with depth 6n+2, 3×3 convolutions without bias, BatchNorm after each and
// the option-A (zero-padding) shortcut. Its spec is {depth, width}. This
// descriptor walks the same shapes as fused.NewResNet without importing it
// (internal/model's TestResNetDescriptorMatchesFused keeps the two equal).
func init() { RegisterFamily(resnetFamily{}) }

// ResNetSpec is the typed spec of the resnet family; its JSON is what step
// hashes and summaries record.
type ResNetSpec struct {
	Depth int `json:"depth" yaml:"depth"`
	Width int `json:"width" yaml:"width"`
}

// BlocksPerStage returns n = (Depth−2)/6.
func (s ResNetSpec) BlocksPerStage() int { return (s.Depth - 2) / 6 }

type resnetFamily struct{}

var resnetKeys = []Key{
	{"depth", "layers, 6n+2 with n ≥ 1 basic blocks per stage (8, 14, 20, 32, 44, 56, 110)"},
	{"width", "channels of stage 1 (stages 2 and 3 have 2·width and 4·width); even, ≥ 2"},
}

func (resnetFamily) Name() string { return "resnet" }

// Inits: he is fused.InitHe (He-normal N(0, 2/fan_in) for conv and fc
// weights, as torchvision's CIFAR ResNets do), torch is fused.InitTorch
// (torch 1.13's reset_parameters); BatchNorm scale 1, shift 0 in both.
func (resnetFamily) Inits() []string { return []string{InitHe, InitTorch} }
func (resnetFamily) Keys() []Key     { return resnetKeys }

func (resnetFamily) Check(s Spec) []Problem {
	rs, ps := decodeResNet(s, resnetKeys)
	if _, ok := s["depth"]; ok && (rs.Depth < 8 || (rs.Depth-2)%6 != 0) {
		ps = append(ps, Problem{"depth", fmt.Sprintf("%d is not 6n+2 with n ≥ 1 (8, 14, 20, 32, 44, 56, 110, …)", rs.Depth)})
	}
	if _, ok := s["width"]; ok && (rs.Width < 2 || rs.Width%2 != 0) {
		ps = append(ps, Problem{"width", fmt.Sprintf("%d must be even and ≥ 2: the option-A shortcut pads width/2 zero channels on each side where a stage doubles the width", rs.Width)})
	}
	return ps
}

func (resnetFamily) HashKey(s Spec) any {
	rs, _ := decodeResNet(s, nil)
	return rs
}

func (resnetFamily) New(s Spec, in Shape) (Arch, error) {
	rs, _ := decodeResNet(s, nil)
	return ResNetArch{Spec: rs, In: in}, nil
}

// decodeResNet reads depth and width; with keys non-nil, other keys,
// missing keys and values that are not one whole number are problems.
func decodeResNet(s Spec, keys []Key) (ResNetSpec, []Problem) {
	var rs ResNetSpec
	var ps []Problem
	for k, v := range s {
		var dst *int
		switch k {
		case "depth":
			dst = &rs.Depth
		case "width":
			dst = &rs.Width
		default:
			if keys != nil {
				ps = append(ps, Problem{k, "unknown key" + suggestKey(k, keys)})
			}
			continue
		}
		n, ok := wholeNumber(v)
		if !ok {
			if keys != nil {
				ps = append(ps, Problem{k, fmt.Sprintf("%v is not one whole number (e.g. %s: 16)", v, k)})
			}
			continue
		}
		*dst = n
	}
	if keys != nil {
		for _, k := range keys {
			if _, ok := s[k.Name]; !ok {
				ps = append(ps, Problem{k.Name, "missing: a resnet size needs depth and width (e.g. {depth: 20, width: 16})"})
			}
		}
	}
	slices.SortFunc(ps, func(a, b Problem) int { return strings.Compare(a.Key, b.Key) })
	return rs, ps
}

// wholeNumber reads a spec value that must be one whole number (an int
// from the configuration, a float64 from JSON metadata).
func wholeNumber(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case float64:
		return int(x), x == float64(int(x))
	}
	return 0, false
}

// ResNetArch is an architecture of the resnet family.
type ResNetArch struct {
	Spec ResNetSpec
	In   Shape
}

// Family implements Arch.
func (a ResNetArch) Family() string { return "resnet" }

// Input implements Arch.
func (a ResNetArch) Input() Shape { return a.In }

// DropPartialBatches says that training must skip a last batch smaller
// than the batch size: BatchNorm normalises with the batch's statistics,
// which zero-padded rows would change (train.Run drops it, as torch's
// DataLoader(drop_last=True) does).
func (a ResNetArch) DropPartialBatches() bool { return true }

// resnetConv is one 3×3 convolution with its BatchNorm.
type resnetConv struct {
	conv, bn     string // torch names
	cin, cout, s int    // channels in and out, stride
	h, w         int    // input plane
}

// convs walks the network: the stem, then conv1 and conv2 of every block.
func (a ResNetArch) convs() []resnetConv {
	w0, h, w := a.Spec.Width, a.In.H, a.In.W
	out := []resnetConv{{conv: "conv1", bn: "bn1", cin: a.In.C, cout: w0, s: 1, h: h, w: w}}
	cin := w0
	for stage := range 3 {
		cout := w0 << stage
		for i := range a.Spec.BlocksPerStage() {
			st := 1
			if stage > 0 && i == 0 {
				st = 2
			}
			pre := fmt.Sprintf("layer%d.%d.", stage+1, i)
			ho, wo := (h-1)/st+1, (w-1)/st+1
			out = append(out,
				resnetConv{conv: pre + "conv1", bn: pre + "bn1", cin: cin, cout: cout, s: st, h: h, w: w},
				resnetConv{conv: pre + "conv2", bn: pre + "bn2", cin: cout, cout: cout, s: 1, h: ho, w: wo})
			cin, h, w = cout, ho, wo
		}
	}
	return out
}

// Params implements Arch, in torch's state_dict order (fused.ResNet.Params):
// per convolution its weight (out, in, 3, 3), its BatchNorm's γ and β, then
// fc.weight (classes, 4·width) and fc.bias.
func (a ResNetArch) Params() []Param {
	var ps []Param
	for _, c := range a.convs() {
		ps = append(ps,
			Param{Name: c.conv + ".weight", Kind: ConvWeight, Shape: []int{c.cout, c.cin, 3, 3}, FanIn: 9 * c.cin, FanOut: 9 * c.cout},
			Param{Name: c.bn + ".weight", Kind: Vector, Shape: []int{c.cout}},
			Param{Name: c.bn + ".bias", Kind: Vector, Shape: []int{c.cout}})
	}
	f, k := 4*a.Spec.Width, a.In.Classes
	return append(ps,
		Param{Name: "fc.weight", Kind: Matrix, Shape: []int{k, f}, FanIn: f, FanOut: k, Output: true},
		Param{Name: "fc.bias", Kind: Vector, Shape: []int{k}, FanIn: f, FanOut: k, Output: true})
}

// Buffers implements Arch: every BatchNorm's running_mean, running_var
// (float32, (C)) and num_batches_tracked (int64 scalar), in state_dict order.
func (a ResNetArch) Buffers() []Param {
	var bs []Param
	for _, c := range a.convs() {
		bs = append(bs,
			Param{Name: c.bn + ".running_mean", Kind: Vector, Shape: []int{c.cout}},
			Param{Name: c.bn + ".running_var", Kind: Vector, Shape: []int{c.cout}},
			Param{Name: c.bn + ".num_batches_tracked", Kind: Counter, Shape: []int{}})
	}
	return bs
}

// Cost implements Arch: 3× the forward multiply-adds (forward, input and
// weight gradients), 9·Cin·Cout·Ho·Wo per convolution plus 4w·classes for
// fc; BatchNorm, ReLU and pooling are O(activations) and left out.
func (a ResNetArch) Cost() float64 {
	var macs float64
	for _, c := range a.convs() {
		ho, wo := (c.h-1)/c.s+1, (c.w-1)/c.s+1
		macs += 9 * float64(c.cin*c.cout*ho*wo)
	}
	macs += float64(4 * a.Spec.Width * a.In.Classes)
	return 3 * macs
}

// String implements Arch, e.g. "resnet20-w16 1×28×28 [16 32 64]×3 → 10".
func (a ResNetArch) String() string {
	w := a.Spec.Width
	return fmt.Sprintf("resnet%d-w%d %d×%d×%d [%d %d %d]×%d → %d", a.Spec.Depth, w, a.In.C, a.In.H, a.In.W,
		w, 2*w, 4*w, a.Spec.BlocksPerStage(), a.In.Classes)
}
