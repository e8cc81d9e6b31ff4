package model

// The resnet family's graph half: its descriptor is internal/spec's
// (spec.ResNetArch, registered there so that the configuration knows its
// size table), its numeric core internal/fused's ResNet, whose tensors the
// Weights alias. The graph is fused.ResNet.Build's: stem, one fused op per
// BasicBlock, head; BatchNorm with batch statistics in a Train graph (which
// updates the running statistics and num_batches_tracked once per run) and
// running statistics in an Eval graph.

import (
	"fmt"
	"math/rand/v2"

	"github.com/kdcal/kdcal/internal/fused"
	"github.com/kdcal/kdcal/internal/spec"
)

func init() {
	RegisterBuilder("resnet", buildResNet)
	stateFamilies["resnet"] = newResNetState
}

// resnetState is a Weights' fused.ResNet: w.T are its Params' tensors,
// w.B its running means and variances, and every num_batches_tracked
// counter of w.Counters its BatchesTracked (torch increments every BN
// layer's once per training forward, so they are always equal).
type resnetState struct{ r *fused.ResNet }

// fusedSpec returns the fused spec of a resnet architecture.
func fusedSpec(a Arch) fused.ResNetSpec {
	rs := a.desc.(spec.ResNetArch).Spec
	return fused.ResNetSpec{Depth: rs.Depth, Width: rs.Width, C: a.C, H: a.H, W: a.W, Classes: a.Classes}
}

func newResNetState(w *Weights) familyState {
	r, err := fused.NewResNet(fusedSpec(w.Arch), w.Dtype)
	if err != nil { // NewArch checked the spec with the same rules
		panic("model: " + err.Error())
	}
	lookup := func(p Param) fused.Tensor {
		t, ok := r.Lookup(p.Name)
		if !ok || tensorShape(t.Shape) != tensorShape(p.TorchShape()) {
			panic(fmt.Sprintf("model: resnet descriptor entry %s %v does not match fused's %v (spec/resnet.go walks the network as fused.NewResNet)", p.Name, p.TorchShape(), t.Shape))
		}
		return t
	}
	for i, p := range w.Params {
		if r.Params[i].Name != p.Name {
			panic("model: resnet parameter order differs from fused's at " + p.Name)
		}
		w.T = append(w.T, lookup(p).T)
	}
	for _, p := range w.Buffers {
		if p.Kind == spec.Counter {
			w.B, w.Counters = append(w.B, nil), append(w.Counters, &r.BatchesTracked)
			continue
		}
		w.B, w.Counters = append(w.B, lookup(p).T), append(w.Counters, nil)
	}
	return resnetState{r}
}

func tensorShape(s []int) string {
	if len(s) == 0 { // a Counter: stored as (1,), see counterShape
		return "[1]"
	}
	return fmt.Sprint(s)
}

// init draws the weights with fused.InitHe (conv and fc weights
// N(0, 2/fan_in), fc bias 0, as He et al. 2016 train the CIFAR ResNets)
// and resets the BatchNorm state to torch's (γ 1, β 0, mean 0, variance 1,
// num_batches_tracked 0).
func (s resnetState) init(rng *rand.Rand, scheme string) error {
	in, err := fused.ParseInit(scheme)
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	s.r.Init(rng, in)
	return nil
}

func (s resnetState) build(gr *Graph, mode Mode) error {
	fm := fused.Train
	if mode == Eval {
		fm = fused.Eval
	}
	fg, err := s.r.Build(gr.G, gr.BS, fm)
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	gr.X, gr.Logits, gr.Params = fg.X, fg.Logits, fg.Params
	return nil
}

// buildResNet is the resnet family's Builder: the graph of the Weights'
// fused.ResNet.
func buildResNet(gr *Graph, _ Arch, mode Mode) error {
	if gr.w == nil || gr.w.state == nil {
		return fmt.Errorf("model: a resnet graph needs Weights made by NewWeights")
	}
	return gr.w.state.build(gr, mode)
}
