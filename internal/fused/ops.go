package fused

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Mode says which statistics the BatchNorm layers of a graph use. It is
// fixed when the graph is built: a training graph and an evaluation graph
// of the same ResNet are two graphs sharing its tensors (there is no
// global flag to flip, unlike gorgonia's BatchNorm op).
type Mode int

const (
	// Train normalises with the batch statistics, updates the running
	// statistics once per run of the graph and is differentiable.
	Train Mode = iota
	// Eval normalises with the running statistics, never changes them and
	// has no gradient.
	Eval
)

func (m Mode) String() string {
	switch m {
	case Train:
		return "train"
	case Eval:
		return "eval"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// kernel is the numeric part of one fused layer: its operand shapes, its
// forward pass and (in training mode) its backward pass. Operand 0 is the
// layer's activation input; the others are parameters.
type kernel[T Float] interface {
	name() string
	shapes() [][]int // operand shapes
	outShape() []int
	// forward computes the output into y from the operands.
	forward(in [][]T, y []T)
	// backward computes the gradient of every operand into grads for the
	// output gradient dy, after forward ran on the same operands.
	// grads[0] is nil when the input gradient is not needed.
	backward(in [][]T, dy []T, grads [][]T)
}

// fwdOp is the gorgonia op of a kernel's forward pass.
type fwdOp[T Float] struct {
	opBase
	k      kernel[T]
	mode   Mode
	shapes [][]int // k.shapes() and k.outShape(), fixed when the op is built
	yShape []int
	in     [][]T
	y      []T
	grads  [][]T     // gradient buffers, reused across runs
	dx     []*G.Node // the input-gradient nodes made by SymDiff
	dxZero bool      // grads[0] holds zeros (its gradient was skipped on the last run)
}

var (
	_ G.SDOp = (*fwdOp[float32])(nil)
	_ G.ADOp = (*fwdOp[float32])(nil)
)

// apply adds the forward op of k to the graph of the operands.
func apply[T Float](k kernel[T], mode Mode, operands ...*G.Node) (*G.Node, error) {
	shapes := k.shapes()
	if len(operands) != len(shapes) {
		return nil, fmt.Errorf("fused: %s takes %d operands, got %d", k.name(), len(shapes), len(operands))
	}
	dims := make([]int, len(shapes))
	for i, n := range operands {
		if n == nil {
			return nil, fmt.Errorf("fused: %s: operand %d is nil", k.name(), i)
		}
		if n.Dtype() != dtypeOf[T]() {
			return nil, fmt.Errorf("fused: %s: operand %s has dtype %v, want %v", k.name(), n.Name(), n.Dtype(), dtypeOf[T]())
		}
		if !n.Shape().Eq(tensor.Shape(shapes[i])) {
			return nil, fmt.Errorf("fused: %s: operand %s has shape %v, want %v", k.name(), n.Name(), n.Shape(), shapes[i])
		}
		dims[i] = len(shapes[i])
	}
	op := &fwdOp[T]{k: k, mode: mode, shapes: shapes, yShape: k.outShape(), in: make([][]T, len(shapes)), grads: make([][]T, len(shapes))}
	op.opBase = newBase(k.name(), fmt.Sprintf("%v→%v,%v", shapes[0], k.outShape(), mode), tensor.Shape(k.outShape()), dims...)
	out, err := G.ApplyOp(op, operands...)
	if err != nil {
		return nil, fmt.Errorf("fused: %s: %w", k.name(), err)
	}
	return out, nil
}

// operands extracts and checks the data of the inputs.
func operands[T Float](k kernel[T], shapes [][]int, dst [][]T, inputs []G.Value) error {
	for i, s := range shapes {
		d, err := values[T](inputs[i], s...)
		if err != nil {
			return withName(err, "%s operand %d", k.name(), i)
		}
		dst[i] = d
	}
	return nil
}

func (o *fwdOp[T]) Do(inputs ...G.Value) (G.Value, error) {
	if err := o.checkArgs(len(inputs)); err != nil {
		return nil, err
	}
	if err := operands(o.k, o.shapes, o.in, inputs); err != nil {
		return nil, err
	}
	y := wrap(&o.y, o.yShape...)
	o.k.forward(o.in, y.Data().([]T))
	return y, nil
}

// DiffWRT reports every operand differentiable, in Eval mode too: gorgonia
// then calls SymDiff, whose error says what to do, instead of failing with
// "Non Differentiable WRTs".
func (o *fwdOp[T]) DiffWRT(n int) []bool {
	d := make([]bool, n)
	for i := range d {
		d[i] = true
	}
	return d
}

// SymDiff returns the gradient nodes of every operand. One backward op
// computes all of them in a single pass; its value is the gradient of
// operand 1 (a parameter, always needed), and the others are picked from
// the buffers it leaves.
//
// The backward op also reads the forward output: the kernels' backward
// passes use state their forward pass left (masks, x̂, ReLU outputs), and
// without that input a tape could run the backward op first whenever the
// output gradient does not depend on the output (a loss linear in it).
// internal/fastdense had this edge; internal/fastconv and the ResNet ops
// did not (issue 15 item 6 resolved it here, for every op).
func (o *fwdOp[T]) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if o.mode != Train {
		return nil, fmt.Errorf("fused: %v is an evaluation-mode op and has no gradient; differentiate a Train graph", o)
	}
	if err := o.checkArgs(len(inputs)); err != nil {
		return nil, err
	}
	shapes := o.k.shapes()
	bop := &bwdOp[T]{f: o}
	outDims := len(o.k.outShape())
	dims := append(append([]int(nil), o.opBase.in...), outDims, outDims)
	bop.opBase = newBase(o.k.name()+"Grad", fmt.Sprintf("#%d", o.id), tensor.Shape(shapes[1]), dims...)
	bwd, err := G.ApplyOp(bop, append(append(G.Nodes(nil), inputs...), output, grad)...)
	if err != nil {
		return nil, fmt.Errorf("fused: %s gradient: %w", o.k.name(), err)
	}
	out := make(G.Nodes, len(inputs))
	out[1] = bwd
	for i := range inputs {
		if i == 1 {
			continue
		}
		if out[i], err = pick(bwd, o.id, fmt.Sprintf("d%d", i), tensor.Shape(shapes[i]), func() G.Value {
			return wrap(&o.grads[i], shapes[i]...)
		}); err != nil {
			return nil, err
		}
	}
	o.dx = append(o.dx, out[0])
	return out, nil
}

// DoDiff accumulates the gradient of every operand into its dual value
// (gorgonia's LispMachine path); operands without a gradient are skipped,
// and so is the input gradient when operand 0 has none.
func (o *fwdOp[T]) DoDiff(_ G.ExecutionContext, inputs G.Nodes, output *G.Node) error {
	if o.mode != Train {
		return fmt.Errorf("fused: %v is an evaluation-mode op and has no gradient; differentiate a Train graph", o)
	}
	if err := o.checkArgs(len(inputs)); err != nil {
		return err
	}
	vals := make([]G.Value, len(inputs))
	for i, n := range inputs {
		vals[i] = n.Value()
	}
	in := make([][]T, len(inputs))
	if err := operands(o.k, o.shapes, in, vals); err != nil {
		return err
	}
	gv, err := output.Grad()
	if err != nil {
		return fmt.Errorf("fused: gradient of %v: %w", o, err)
	}
	dy, err := values[T](gv, o.yShape...)
	if err != nil {
		return withName(err, "%s output gradient", o.k.name())
	}
	shapes := o.shapes
	targets := make([][]T, len(inputs))
	for i, n := range inputs {
		if d, err := n.Grad(); err == nil && d != nil {
			if targets[i], err = values[T](d, shapes[i]...); err != nil {
				return withName(err, "gradient of %s", n.Name())
			}
		}
	}
	grads := make([][]T, len(shapes))
	for i, s := range shapes {
		o.grads[i] = grow(o.grads[i], tensor.Shape(s).TotalSize())
		grads[i] = o.grads[i]
	}
	if targets[0] == nil {
		grads[0] = nil
	}
	o.dxZero = false
	o.k.backward(in, dy, grads)
	for i, t := range targets {
		if t != nil {
			axpy(t, grads[i])
		}
	}
	return nil
}

// bwdOp is the backward op of a fwdOp: (operands..., output, dy) →
// d(operand 1), leaving the other gradients in the forward op's buffers.
// The output is read for ordering only (see SymDiff).
type bwdOp[T Float] struct {
	opBase
	f     *fwdOp[T]
	in    [][]T
	grads [][]T
}

func (o *bwdOp[T]) Do(inputs ...G.Value) (G.Value, error) {
	if err := o.checkArgs(len(inputs)); err != nil {
		return nil, err
	}
	f := o.f
	nOp := len(inputs) - 2
	if o.in == nil {
		o.in = make([][]T, nOp)
	}
	if err := operands(f.k, f.shapes, o.in, inputs[:nOp]); err != nil {
		return nil, err
	}
	dy, err := values[T](inputs[nOp+1], f.yShape...)
	if err != nil {
		return nil, withName(err, "%s output gradient", f.k.name())
	}
	shapes := f.shapes
	if o.grads == nil {
		o.grads = make([][]T, len(shapes))
	}
	for i, s := range shapes {
		f.grads[i] = grow(f.grads[i], tensor.Shape(s).TotalSize())
		o.grads[i] = f.grads[i]
	}
	if anyUsed(f.dx) {
		f.dxZero = false
	} else {
		// The input gradient is not read (the input is data): skip its
		// work. Its pick, computed by the tape but never consumed, returns
		// zeros, cleared once rather than on every run (internal/fastdense
		// did this; internal/fastconv cleared on every run, and the ResNet
		// ops relied on a fresh buffer, stale if an earlier run wrote it).
		if !f.dxZero {
			clear(f.grads[0])
			f.dxZero = true
		}
		o.grads[0] = nil
	}
	f.k.backward(o.in, dy, o.grads)
	return wrap(&f.grads[1], shapes[1]...), nil
}
