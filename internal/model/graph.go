package model

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	_ "github.com/kdcal/kdcal/internal/blasopt" // -tags openblas switches gorgonia to OpenBLAS
	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/fused"
	"github.com/kdcal/kdcal/internal/spec"
)

// Graph is the forward graph of an architecture for a fixed batch size.
type Graph struct {
	G      *G.ExprGraph
	X      *G.Node // input: (BS, C, H, W) for a CNN, (BS, C·H·W) for an MLP
	Logits *G.Node // (BS, Classes)
	Params G.Nodes // parameter nodes in Arch.Params order, bound to the Weights' tensors
	BS     int

	w *Weights // the weights the graph is built from (a family with state reads it)
}

// Mode says whether a graph trains (batch statistics, state updates) or
// evaluates (running statistics); families without such state ignore it.
type Mode int

// Graph modes.
const (
	Train Mode = iota
	Eval
)

// Builder adds a family's forward pass to gr.G: it sets gr.X (the input
// node) and gr.Logits from the parameter nodes gr.Params (in the family's
// Params order, already bound to the Weights' tensors).
type Builder func(gr *Graph, a Arch, mode Mode) error

var builders = map[string]Builder{}

// RegisterBuilder registers the graph builder of a family registered in
// internal/spec under the same name; a duplicate panics.
func RegisterBuilder(family string, b Builder) {
	if _, dup := builders[family]; dup {
		panic("model: builder of family " + family + " registered twice")
	}
	builders[family] = b
}

func builderOf(family string) (Builder, error) {
	b, ok := builders[family]
	if !ok {
		return nil, fmt.Errorf("model: family %q has no graph builder (RegisterBuilder)", family)
	}
	return b, nil
}

func init() {
	RegisterBuilder(config.FamilyMLP, buildConvNet)
	RegisterBuilder(config.FamilyCNN, buildConvNet)
}

// Build adds the forward pass of w's architecture for batches of bs
// examples to g, in training mode. The parameter nodes are bound to w's
// tensors, so any number of graphs (a training graph, an evaluation graph
// with another batch size) share one set of weights.
func Build(g *G.ExprGraph, w *Weights, bs int) (*Graph, error) { return BuildMode(g, w, bs, Train) }

// BuildMode is Build in the given mode.
func BuildMode(g *G.ExprGraph, w *Weights, bs int, mode Mode) (*Graph, error) {
	b, err := builderOf(w.Arch.Family)
	if err != nil {
		return nil, err
	}
	gr := &Graph{G: g, BS: bs, w: w}
	if w.state != nil { // the family binds its own parameter nodes
		if err := b(gr, w.Arch, mode); err != nil {
			return nil, err
		}
		return gr, nil
	}
	for i, p := range w.Params {
		gr.Params = append(gr.Params, G.NewTensor(g, w.Dtype, len(p.Shape), G.WithShape(p.Shape...),
			G.WithName(p.Name), G.WithValue(w.T[i])))
	}
	if err := b(gr, w.Arch, mode); err != nil {
		return nil, err
	}
	return gr, nil
}

// buildConvNet builds the mlp and cnn families (see the package doc).
func buildConvNet(gr *Graph, a Arch, _ Mode) error {
	g, bs, dt := gr.G, gr.BS, gr.Params[0].Dtype()
	ca := a.desc.(spec.ConvArch)
	var (
		h   *G.Node
		err error
	)
	if a.Family == config.FamilyCNN {
		gr.X = G.NewTensor(g, dt, 4, G.WithShape(bs, a.C, a.H, a.W), G.WithName("x"))
		h = gr.X
		for i := range ca.Spec.Conv {
			if h, err = convStage(h, gr.Params[2*i], gr.Params[2*i+1]); err != nil {
				return fmt.Errorf("model: conv stage %d: %w", i, err)
			}
		}
		c, fh, fw := ca.FeatureShape()
		if h, err = G.Reshape(h, tensor.Shape{bs, c * fh * fw}); err != nil {
			return fmt.Errorf("model: flatten: %w", err)
		}
	} else {
		gr.X = G.NewMatrix(g, dt, G.WithShape(bs, a.D()), G.WithName("x"))
		h = gr.X
	}
	first := 2 * len(ca.Spec.Conv)
	for i := range ca.Spec.Hidden {
		if h, err = dense(h, gr.Params[first+2*i], gr.Params[first+2*i+1], true); err != nil {
			return fmt.Errorf("model: dense layer %d: %w", i, err)
		}
	}
	n := len(gr.Params)
	if gr.Logits, err = dense(h, gr.Params[n-2], gr.Params[n-1], false); err != nil {
		return fmt.Errorf("model: output layer: %w", err)
	}
	return nil
}

// convStage is one CNN stage on NCHW input:
//
//	MaxPool2×2,stride 2(ReLU(Conv3×3,stride 1,pad 1(x; w) + b))
//
// with w (out, in, 3, 3) and b (1, out, 1, 1). Every conv stage is built
// here, so a faster fused implementation replaces it in one place.
func convStage(x, w, b *G.Node) (*G.Node, error) {
	if x.Dtype() == tensor.Float32 {
		// The fused op (same values and gradients, ~7× faster with OpenBLAS and
		// ~50× less allocation per step); gorgonia's own ops (fused.StageOps)
		// serve float64, which the gradient checks use.
		return fused.Stage(x, w, b)
	}
	return fused.StageOps(x, w, b)
}

// dense is one fully connected layer, x·w + b with w (in, out) and b
// (1, out), followed by a ReLU when relu is set. Every dense layer is built
// here.
func dense(x, w, b *G.Node, relu bool) (*G.Node, error) {
	if x.Dtype() == tensor.Float32 {
		// The fused op (same values and gradients, one GEMM per direction and
		// operand, no dx GEMM for the input layer, reused buffers); gorgonia's
		// own ops (fused.DenseOps) serve float64, which the gradient checks use.
		return fused.Dense(x, w, b, relu)
	}
	return fused.DenseOps(x, w, b, relu)
}

// Evaluator computes logits in batches on a forward-only graph that shares
// a Weights' tensors: it sees every in-place update of the weights and never
// touches gradients. It is not safe for concurrent use.
type Evaluator struct {
	w   *Weights
	gr  *Graph
	vm  G.VM
	xt  *tensor.Dense
	buf []float32
}

// NewEvaluator builds an evaluation graph for Float32 weights with batches
// of bs examples.
func NewEvaluator(w *Weights, bs int) (*Evaluator, error) {
	if w.Dtype != tensor.Float32 {
		panic("model: Evaluator needs Float32 weights")
	}
	gr, err := BuildMode(G.NewGraph(), w, bs, Eval)
	if err != nil {
		return nil, err
	}
	e := &Evaluator{w: w, gr: gr, buf: make([]float32, bs*w.Arch.D())}
	e.xt = tensor.New(tensor.WithShape(gr.X.Shape()...), tensor.WithBacking(e.buf))
	if err := G.Let(gr.X, e.xt); err != nil {
		return nil, fmt.Errorf("model: bind input: %w", err)
	}
	e.vm = G.NewTapeMachine(gr.G)
	return e, nil
}

// Logits writes the logits of the n examples in x (n × C·H·W, row-major) to
// dst (n × Classes, allocated when nil or too short) in the same order and
// returns it. The last batch is zero-padded; padded rows are discarded.
func (e *Evaluator) Logits(dst, x []float32, n int) ([]float32, error) {
	d, k, bs := e.w.Arch.D(), e.w.Arch.Classes, e.gr.BS
	if len(x) != n*d {
		panic("model: Logits input length is not n·D")
	}
	if len(dst) < n*k {
		dst = make([]float32, n*k)
	}
	for off := 0; off < n; off += bs {
		m := min(bs, n-off)
		copy(e.buf, x[off*d:(off+m)*d])
		clear(e.buf[m*d:])
		if err := e.vm.RunAll(); err != nil {
			e.vm.Reset()
			return nil, fmt.Errorf("model: forward pass: %w", err)
		}
		out := e.gr.Logits.Value().Data().([]float32)
		copy(dst[off*k:(off+m)*k], out[:m*k])
		e.vm.Reset()
	}
	return dst[:n*k], nil
}

// Close releases the evaluation VM.
func (e *Evaluator) Close() { e.vm.Close() }
