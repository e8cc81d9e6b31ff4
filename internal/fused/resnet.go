package fused

import (
	"fmt"
	"math"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ResNetSpec is one CIFAR ResNet (He et al. 2016, §4.2): depth 6n+2 with
// n BasicBlocks per stage, stage widths Width, 2·Width and 4·Width, on
// inputs of C×H×W with Classes outputs.
type ResNetSpec struct {
	Depth, Width int
	C, H, W      int
	Classes      int
}

// Validate reports what is wrong with a spec, naming the value.
func (s ResNetSpec) Validate() error {
	if s.Depth < 8 || (s.Depth-2)%6 != 0 {
		return fmt.Errorf("fused: resnet depth %d is not 6n+2 with n ≥ 1 (8, 14, 20, 32, 44, 56, 110, …)", s.Depth)
	}
	if s.Width < 2 || s.Width%2 != 0 {
		return fmt.Errorf("fused: resnet width %d must be even and ≥ 2: the option-A shortcut pads width/2 zero channels on each side when a stage doubles the width, as torch's F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes//4, planes//4)) does", s.Width)
	}
	if s.C < 1 || s.H < 1 || s.W < 1 {
		return fmt.Errorf("fused: resnet input %d×%d×%d is not a valid image shape", s.C, s.H, s.W)
	}
	if s.Classes < 2 {
		return fmt.Errorf("fused: resnet needs at least 2 classes, got %d", s.Classes)
	}
	return nil
}

// BlocksPerStage returns n = (Depth−2)/6.
func (s ResNetSpec) BlocksPerStage() int { return (s.Depth - 2) / 6 }

// String names the spec as the project's sizes do, e.g. "resnet20-w16".
func (s ResNetSpec) String() string { return fmt.Sprintf("resnet%d-w%d", s.Depth, s.Width) }

// blockSpec is one BasicBlock of the network.
type blockSpec struct {
	prefix       string // torch module path, e.g. "layer2.0"
	cin, cout, s int    // channels in and out, stride of conv1
	h, w         int    // input plane
}

// blocks walks the architecture: every block with its torch name, its
// channels, stride and input size (the one place the layer shapes are
// derived).
func (s ResNetSpec) blocks() []blockSpec {
	var out []blockSpec
	cin, h, w := s.Width, s.H, s.W
	for stage := range 3 {
		cout := s.Width << stage
		for i := range s.BlocksPerStage() {
			st := 1
			if stage > 0 && i == 0 {
				st = 2
			}
			out = append(out, blockSpec{prefix: fmt.Sprintf("layer%d.%d", stage+1, i), cin: cin, cout: cout, s: st, h: h, w: w})
			cin, h, w = cout, (h-1)/st+1, (w-1)/st+1
		}
	}
	return out
}

// featureShape returns the channels and plane of the last stage's output.
func (s ResNetSpec) featureShape() (c, h, w int) {
	b := s.blocks()
	last := b[len(b)-1]
	return last.cout, (last.h-1)/last.s + 1, (last.w-1)/last.s + 1
}

// Kind says what a state_dict entry is.
type Kind int

// State entry kinds.
const (
	ConvWeight       Kind = iota // (out, in, 3, 3), learnable
	BNWeight                     // γ (C), learnable
	BNBias                       // β (C), learnable
	BNRunningMean                // (C), buffer
	BNRunningVar                 // (C), buffer
	BNBatchesTracked             // torch's int64 scalar num_batches_tracked: ResNet.BatchesTracked
	FCWeight                     // (classes, features), torch Linear layout, learnable
	FCBias                       // (classes), learnable
)

// Learnable reports whether the optimizer updates entries of kind k.
func (k Kind) Learnable() bool {
	switch k {
	case ConvWeight, BNWeight, BNBias, FCWeight, FCBias:
		return true
	}
	return false
}

// Tensor is one entry of the network's state, named and shaped as in the
// state_dict of the torch module of the package documentation, so that a
// safetensors export is a one-to-one mapping.
type Tensor struct {
	Name  string // torch state_dict key, e.g. "layer2.0.bn1.running_var"
	Kind  Kind
	Shape []int         // torch shape, also the gorgonia node's; [] for num_batches_tracked
	FanIn int           // inputs per output unit (conv: in·9, fc: features); 0 for BN entries
	T     *tensor.Dense // the values; nil for BNBatchesTracked (see ResNet.BatchesTracked)
}

// Size returns the number of elements.
func (t Tensor) Size() int { return tensor.Shape(t.Shape).TotalSize() }

// ResNet holds the state of one CIFAR ResNet: its learnable parameters
// and its BatchNorm running statistics. Graphs built from it (Build) bind
// these tensors rather than copying them, so a training graph, an
// evaluation graph of another batch size and an optimizer all see one set
// of values; update them in place (never replace a Tensor's T).
type ResNet struct {
	Spec  ResNetSpec
	Dtype tensor.Dtype
	// State is every state_dict entry in torch's order (a module's
	// parameters, then its buffers, then its children).
	State []Tensor
	// Params are the learnable entries of State, in State's order; the
	// Params of a Graph are their nodes in the same order.
	Params []Tensor
	// Buffers are the running means and variances, in State's order.
	Buffers []Tensor
	// BatchesTracked is every BN layer's num_batches_tracked: the number
	// of training forward passes so far (torch increments it per layer,
	// and every layer sees every pass). With momentum 0.1 it does not
	// enter the arithmetic; it is kept for the state_dict and checkpoints.
	BatchesTracked int64

	index map[string]int // State index by name
}

// NewResNet allocates the state of a spec with torch's initial BatchNorm
// state (γ = 1, β = 0, running mean 0, running variance 1) and zero conv
// and fc weights; call Init to draw them. dt is tensor.Float32 for
// training or tensor.Float64 for gradient checks.
func NewResNet(s ResNetSpec, dt tensor.Dtype) (*ResNet, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if dt != tensor.Float32 && dt != tensor.Float64 {
		return nil, fmt.Errorf("fused: resnet dtype %v, want float32 or float64", dt)
	}
	r := &ResNet{Spec: s, Dtype: dt, index: map[string]int{}}
	add := func(name string, k Kind, fanIn int, shape ...int) {
		t := Tensor{Name: name, Kind: k, Shape: shape, FanIn: fanIn}
		if k != BNBatchesTracked {
			t.T = tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
		}
		r.index[name] = len(r.State)
		r.State = append(r.State, t)
	}
	convBN := func(conv, bn string, cin, cout int) {
		add(conv+".weight", ConvWeight, cin*9, cout, cin, 3, 3)
		add(bn+".weight", BNWeight, 0, cout)
		add(bn+".bias", BNBias, 0, cout)
		add(bn+".running_mean", BNRunningMean, 0, cout)
		add(bn+".running_var", BNRunningVar, 0, cout)
		add(bn+".num_batches_tracked", BNBatchesTracked, 0)
	}
	convBN("conv1", "bn1", s.C, s.Width)
	for _, b := range s.blocks() {
		convBN(b.prefix+".conv1", b.prefix+".bn1", b.cin, b.cout)
		convBN(b.prefix+".conv2", b.prefix+".bn2", b.cout, b.cout)
	}
	feat, _, _ := s.featureShape()
	add("fc.weight", FCWeight, feat, s.Classes, feat)
	add("fc.bias", FCBias, feat, s.Classes)
	for _, t := range r.State {
		switch {
		case t.Kind.Learnable():
			r.Params = append(r.Params, t)
		case t.Kind == BNRunningMean || t.Kind == BNRunningVar:
			r.Buffers = append(r.Buffers, t)
		}
	}
	r.resetBN()
	return r, nil
}

// Lookup returns the state entry with the given torch name.
func (r *ResNet) Lookup(name string) (Tensor, bool) {
	i, ok := r.index[name]
	if !ok {
		return Tensor{}, false
	}
	return r.State[i], true
}

// NumParams returns the number of learnable parameters (torch's
// sum(p.numel() for p in model.parameters())).
func (r *ResNet) NumParams() int {
	n := 0
	for _, t := range r.Params {
		n += t.Size()
	}
	return n
}

// String describes the network, e.g. "resnet20-w16 3×32×32 → 10 (272474 params)".
func (r *ResNet) String() string {
	s := r.Spec
	return fmt.Sprintf("%v %d×%d×%d → %d (%d params)", s, s.C, s.H, s.W, s.Classes, r.NumParams())
}

// Init says how Init draws the conv and fc weights.
type Init int

const (
	// InitHe draws every conv and fc weight from N(0, 2/fan_in) and sets the
	// fc bias to 0: He et al. 2015 ("Delving deep into rectifiers", §2.2),
	// which He et al. 2016 use for the CIFAR ResNets, and torch's
	// kaiming_normal_(w) (mode fan_in, gain √2) as the common CIFAR ResNet
	// code applies it (akamaster/pytorch_resnet_cifar10, which leaves the
	// fc bias at torch's default instead).
	InitHe Init = iota
	// InitTorch is torch 1.13's reset_parameters: conv and fc weights
	// U(−1/√fan_in, 1/√fan_in) (kaiming_uniform_ with a = √5), fc bias
	// U(−1/√fan_in, 1/√fan_in).
	InitTorch
)

// ParseInit returns the Init named s ("he" or "torch", as Init.String
// writes them).
func ParseInit(s string) (Init, error) {
	switch s {
	case "he":
		return InitHe, nil
	case "torch":
		return InitTorch, nil
	}
	return 0, fmt.Errorf("fused: unknown init %q (use he or torch)", s)
}

func (i Init) String() string {
	switch i {
	case InitHe:
		return "he"
	case InitTorch:
		return "torch"
	}
	return fmt.Sprintf("Init(%d)", int(i))
}

// CopyFrom copies o's state (every tensor and BatchesTracked) into r in
// place, so graphs built from r see it (a checkpoint restore, a best-epoch
// snapshot). The specs and dtypes must match.
func (r *ResNet) CopyFrom(o *ResNet) error {
	if r.Spec != o.Spec || r.Dtype != o.Dtype {
		return fmt.Errorf("fused: cannot copy a %v %v into a %v %v", o.Spec, o.Dtype, r.Spec, r.Dtype)
	}
	for i, t := range r.State {
		if t.T == nil {
			continue
		}
		if err := tensor.Copy(t.T, o.State[i].T); err != nil {
			return fmt.Errorf("fused: copy %s: %w", t.Name, err)
		}
	}
	r.BatchesTracked = o.BatchesTracked
	return nil
}

// Init resets the BatchNorm state (γ = 1, β = 0, running mean 0, running
// variance 1, BatchesTracked 0, as torch.nn.BatchNorm2d) and draws the
// conv and fc weights from rng as init says, entry by entry in State order
// and row-major within an entry. Values are drawn in float64 and rounded,
// so the same rng state gives the same weights on every machine.
func (r *ResNet) Init(rng *rand.Rand, init Init) {
	r.resetBN()
	for _, t := range r.State {
		var draw func() float64
		switch {
		case t.Kind != ConvWeight && t.Kind != FCWeight && t.Kind != FCBias:
			continue
		case init == InitTorch:
			bound := 1 / math.Sqrt(float64(t.FanIn))
			draw = func() float64 { return bound * (2*rng.Float64() - 1) }
		case t.Kind == FCBias:
			draw = func() float64 { return 0 }
		default:
			std := math.Sqrt(2 / float64(t.FanIn))
			draw = func() float64 { return std * rng.NormFloat64() }
		}
		switch d := t.T.Data().(type) {
		case []float32:
			for j := range d {
				d[j] = float32(draw())
			}
		case []float64:
			for j := range d {
				d[j] = draw()
			}
		}
	}
}

// resetBN sets torch's initial BatchNorm state.
func (r *ResNet) resetBN() {
	r.BatchesTracked = 0
	for _, t := range r.State {
		var v float64
		switch t.Kind {
		case BNWeight, BNRunningVar:
			v = 1
		case BNBias, BNRunningMean:
		default:
			continue
		}
		switch d := t.T.Data().(type) {
		case []float32:
			for j := range d {
				d[j] = float32(v)
			}
		case []float64:
			for j := range d {
				d[j] = v
			}
		}
	}
}

// Graph is the forward graph of a ResNet for a fixed batch size.
type Graph struct {
	X      *G.Node // input (BS, C, H, W), NCHW
	Logits *G.Node // (BS, Classes)
	// Params are the parameter nodes in ResNet.Params order, bound to its
	// tensors. In a Train graph, after G.Grad and a run, p.Grad() is the
	// gradient of the run.
	Params G.Nodes
	Mode   Mode
	BS     int
}

// Build adds the forward pass of r for batches of bs examples to g.
//
// A Train graph normalises with batch statistics and updates r's running
// statistics and BatchesTracked exactly once per run of the graph (in its
// forward pass, deterministically: the same inputs give bit-identical
// statistics); differentiate it with G.Grad. An Eval graph uses the running
// statistics and changes nothing. Build as many graphs as needed (a
// training graph, an evaluation graph with another batch size): they share
// r's tensors, and must not run concurrently. Each fused op reuses its
// buffers across runs, so copy a value out before the next run if you keep
// it (gorgonia-notes.md §6).
func (r *ResNet) Build(g *G.ExprGraph, bs int, mode Mode) (*Graph, error) {
	if bs < 1 {
		return nil, fmt.Errorf("fused: batch size %d must be ≥ 1", bs)
	}
	if mode != Train && mode != Eval {
		return nil, fmt.Errorf("fused: unknown mode %v", mode)
	}
	if _, h, w := r.Spec.featureShape(); mode == Train && bs*h*w < 2 {
		return nil, fmt.Errorf("fused: a training batch of %d gives the last stage %d×%d planes, one value per channel: batch statistics need at least 2 (torch refuses too); use a batch of at least 2", bs, h, w)
	}
	if r.Dtype == tensor.Float32 {
		return build[float32](r, g, bs, mode)
	}
	return build[float64](r, g, bs, mode)
}

func build[T Float](r *ResNet, g *G.ExprGraph, bs int, mode Mode) (*Graph, error) {
	s := r.Spec
	gr := &Graph{Mode: mode, BS: bs}
	nodes := map[string]*G.Node{}
	for _, p := range r.Params {
		n := G.NewTensor(g, r.Dtype, len(p.Shape), G.WithShape(p.Shape...), G.WithName(p.Name), G.WithValue(p.T))
		gr.Params = append(gr.Params, n)
		nodes[p.Name] = n
	}
	data := func(name string) []T {
		t, _ := r.Lookup(name)
		return t.T.Data().([]T)
	}
	norm := func(bn string, c, m int) *batchNorm[T] {
		return newBatchNorm(c, m, data(bn+".running_mean"), data(bn+".running_var"))
	}
	ws := &workspace[T]{}
	gr.X = G.NewTensor(g, r.Dtype, 4, G.WithShape(bs, s.C, s.H, s.W), G.WithName("x"))
	stem := &stemKernel[T]{cv: newConv(bs, s.C, s.H, s.W, s.Width, 1), mode: mode, ws: ws,
		bn: norm("bn1", s.Width, bs*s.H*s.W), tracked: &r.BatchesTracked}
	h, err := apply[T](stem, mode, gr.X, nodes["conv1.weight"], nodes["bn1.weight"], nodes["bn1.bias"])
	if err != nil {
		return nil, err
	}
	for _, b := range s.blocks() {
		ho, wo := (b.h-1)/b.s+1, (b.w-1)/b.s+1
		m := bs * ho * wo
		k, err := newBlockKernel(bs, b.cin, b.h, b.w, b.cout, b.s, mode,
			norm(b.prefix+".bn1", b.cout, m), norm(b.prefix+".bn2", b.cout, m), ws)
		if err != nil {
			return nil, err
		}
		p := func(n string) *G.Node { return nodes[b.prefix+"."+n] }
		if h, err = apply[T](k, mode, h, p("conv1.weight"), p("bn1.weight"), p("bn1.bias"),
			p("conv2.weight"), p("bn2.weight"), p("bn2.bias")); err != nil {
			return nil, fmt.Errorf("%s: %w", b.prefix, err)
		}
	}
	c, fh, fw := s.featureShape()
	head := &headKernel[T]{n: bs, c: c, h: fh, w: fw, p: fh * fw, k: s.Classes}
	if gr.Logits, err = apply[T](head, mode, h, nodes["fc.weight"], nodes["fc.bias"]); err != nil {
		return nil, err
	}
	return gr, nil
}
