package fastdense

import (
	"fmt"
	"hash"
	"sync/atomic"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/kdcal/kdcal/internal/opkit"
)

// Dense returns x·w + b for float32 matrices x (N,in), w (in,out) and
// b (1,out), followed by a ReLU when relu is set. The result is (N,out).
//
// It computes exactly what this gorgonia graph computes, values and
// gradients (see the package documentation for the ReLU derivative at 0):
//
//	h := G.BroadcastAdd(G.Must(G.Mul(x, w)), b, nil, []byte{0})
//	if relu { h = G.Rectify(h) }
//
// Only float32 is supported (a float64 graph, e.g. for gradient checks,
// keeps the ops above). Shape or dtype problems are returned as errors.
//
// The values of the returned node and of its gradient nodes live in buffers
// that the node reuses on every run: copy a value out before the next run
// if you keep it, as gorgonia-notes.md §6 asks for every value.
func Dense(x, w, b *G.Node, relu bool) (*G.Node, error) {
	sz, err := checkDense(x, w, b)
	if err != nil {
		return nil, err
	}
	sz.relu = relu
	op := &denseOp{id: nextID.Add(1), sz: sz, s: &scratch{}}
	out, err := G.ApplyOp(op, x, w, b)
	if err != nil {
		return nil, fmt.Errorf("fastdense: %w", err)
	}
	return out, nil
}

var nextID atomic.Uint64

// sizes are the dimensions of one layer: x (n,in), w (in,out), y (n,out).
type sizes struct {
	n, in, out int
	relu       bool
}

// checkDense validates the operands of Dense and returns the layer sizes.
func checkDense(x, w, b *G.Node) (sizes, error) {
	for _, n := range []struct {
		name string
		node *G.Node
	}{{"x", x}, {"w", w}, {"b", b}} {
		if n.node == nil {
			return sizes{}, fmt.Errorf("fastdense: %s is nil", n.name)
		}
		if dt := n.node.Dtype(); dt != tensor.Float32 {
			return sizes{}, fmt.Errorf("fastdense: %s has dtype %v, want float32", n.name, dt)
		}
		if d := n.node.Shape().Dims(); d != 2 {
			return sizes{}, fmt.Errorf("fastdense: %s has shape %v, want a matrix", n.name, n.node.Shape())
		}
	}
	xs, ws, bs := x.Shape(), w.Shape(), b.Shape()
	if xs[0] < 1 || xs[1] < 1 {
		return sizes{}, fmt.Errorf("fastdense: x has shape %v, want (N,in) with N, in ≥ 1", xs)
	}
	if ws[0] != xs[1] || ws[1] < 1 {
		return sizes{}, fmt.Errorf("fastdense: w has shape %v, want (%d,out) for x %v", ws, xs[1], xs)
	}
	if bs[0] != 1 || bs[1] != ws[1] {
		return sizes{}, fmt.Errorf("fastdense: b has shape %v, want (1,%d)", bs, ws[1])
	}
	return sizes{n: xs[0], in: xs[1], out: ws[1]}, nil
}

// scratch is the state one Dense node keeps between runs: the ReLU mask of
// the last forward pass (read by the backward pass) and reused buffers.
// Each Dense call owns its scratch, so independent graphs can run in
// different goroutines; one graph must not be run concurrently (gorgonia's
// own rule).
type scratch struct {
	mask []float32 // (n,out): 1 where the pre-activation is ≥ 0, else 0 (relu only)
	dpre []float32 // (n,out): gradient of the pre-activation (relu only)

	y, dx, dw, db []float32 // output buffers, reused across runs
	dxZero        bool      // dx holds zeros (needDX was false on the last run)
	dxNodes       []*G.Node // the dx nodes made by SymDiff (see needDX)
}

// matrix is the type of every operand and result: a matrix of one dtype.
var matrix = G.TensorType{Dims: 2, Of: hm.TypeVariable('a')}

// denseOp is the forward op: (x, w, b) → y.
type denseOp struct {
	id uint64
	sz sizes
	s  *scratch
}

var (
	_ G.SDOp = (*denseOp)(nil)
	_ G.ADOp = (*denseOp)(nil)
)

func (op *denseOp) Arity() int       { return 3 }
func (op *denseOp) Type() hm.Type    { return hm.NewFnType(matrix, matrix, matrix, matrix) }
func (op *denseOp) ReturnsPtr() bool { return false }

// CallsExtern reports false: the op may call OpenBLAS through cgo, but like
// gorgonia's own matmul it runs on the CPU device.
func (op *denseOp) CallsExtern() bool    { return false }
func (op *denseOp) OverwritesInput() int { return -1 }
func (op *denseOp) Hashcode() uint32     { return opkit.Hash32(op) }
func (op *denseOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "fastdense.Dense#%d", op.id)
}
func (op *denseOp) String() string {
	act := ""
	if op.sz.relu {
		act = ",relu"
	}
	return fmt.Sprintf("fastdense.Dense{%d,%d→%d%s}", op.sz.n, op.sz.in, op.sz.out, act)
}

func (op *denseOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.sz.n, op.sz.out}, nil
}

// operands extracts and checks the data of x and w.
func (op *denseOp) operands(x, w G.Value) (xd, wd []float32, err error) {
	z := op.sz
	if xd, err = opkit.Float32s("fastdense", x, "x", z.n, z.in); err != nil {
		return
	}
	wd, err = opkit.Float32s("fastdense", w, "w", z.in, z.out)
	return
}

// Do runs the forward pass and records the ReLU mask for the backward pass.
func (op *denseOp) Do(inputs ...G.Value) (G.Value, error) {
	if len(inputs) != 3 {
		return nil, fmt.Errorf("fastdense: %v takes 3 inputs, got %d", op, len(inputs))
	}
	xd, wd, err := op.operands(inputs[0], inputs[1])
	if err != nil {
		return nil, err
	}
	bd, err := opkit.Float32s("fastdense", inputs[2], "b", 1, op.sz.out)
	if err != nil {
		return nil, err
	}
	z := op.sz
	y := opkit.Tensor(&op.s.y, z.n, z.out)
	if z.relu {
		op.s.mask = opkit.Grow(op.s.mask, z.n*z.out)
	}
	forward(xd, wd, bd, y.Float32s(), op.s.mask, z)
	return y, nil
}

func (op *denseOp) DiffWRT(int) []bool { return []bool{true, true, true} }

// SymDiff returns the gradient nodes of x, w and b. One backward op computes
// all three in a single pass; its value is db, and dx and dw are picked from
// the state it leaves (the design of fastconv.Stage). The backward op also
// reads the forward output, which only orders it after the forward op (whose
// ReLU mask it uses) even when the output gradient does not depend on the
// output, as for a loss linear in it.
func (op *denseOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 3 {
		return nil, fmt.Errorf("fastdense: %v takes 3 inputs, got %d", op, len(inputs))
	}
	bwd, err := G.ApplyOp(&denseGradOp{op}, inputs[0], inputs[1], output, grad)
	if err != nil {
		return nil, fmt.Errorf("fastdense: %w", err)
	}
	dx, err := G.ApplyOp(&pickOp{dense: op, which: pickDX}, bwd)
	if err != nil {
		return nil, fmt.Errorf("fastdense: %w", err)
	}
	dw, err := G.ApplyOp(&pickOp{dense: op, which: pickDW}, bwd)
	if err != nil {
		return nil, fmt.Errorf("fastdense: %w", err)
	}
	op.s.dxNodes = append(op.s.dxNodes, dx)
	return G.Nodes{dx, dw, bwd}, nil
}

// DoDiff accumulates the gradients into the dual values of x, w and b
// (gorgonia's LispMachine path). Inputs without a gradient are skipped.
func (op *denseOp) DoDiff(_ G.ExecutionContext, inputs G.Nodes, output *G.Node) error {
	if len(inputs) != 3 {
		return fmt.Errorf("fastdense: %v takes 3 inputs, got %d", op, len(inputs))
	}
	xd, wd, err := op.operands(inputs[0].Value(), inputs[1].Value())
	if err != nil {
		return err
	}
	gv, err := output.Grad()
	if err != nil {
		return fmt.Errorf("fastdense: gradient of %v: %w", op, err)
	}
	z := op.sz
	gy, err := opkit.Float32s("fastdense", gv, "output gradient", z.n, z.out)
	if err != nil {
		return err
	}
	shapes := [][]int{{z.n, z.in}, {z.in, z.out}, {1, z.out}}
	targets := make([][]float32, 3)
	for i, in := range inputs {
		if d, err := in.Grad(); err == nil && d != nil {
			if targets[i], err = opkit.Float32s("fastdense", d, "gradient of "+in.Name(), shapes[i]...); err != nil {
				return err
			}
		}
	}
	s := op.s
	s.dw, s.db = opkit.Grow(s.dw, z.in*z.out), opkit.Grow(s.db, z.out)
	var dx []float32
	if targets[0] != nil {
		s.dx = opkit.Grow(s.dx, z.n*z.in)
		s.dxZero = false
		dx = s.dx
	}
	s.backward(xd, wd, gy, dx, s.dw, s.db, z)
	for i, src := range [][]float32{dx, s.dw, s.db} {
		if targets[i] != nil {
			addTo(targets[i], src)
		}
	}
	return nil
}

// denseGradOp is the backward op: (x, w, y, dy) → db, leaving dx and dw in
// the layer's scratch for the pick ops. y is read for ordering only.
type denseGradOp struct{ dense *denseOp }

func (op *denseGradOp) Arity() int { return 4 }
func (op *denseGradOp) Type() hm.Type {
	return hm.NewFnType(matrix, matrix, matrix, matrix, matrix)
}
func (op *denseGradOp) ReturnsPtr() bool      { return false }
func (op *denseGradOp) CallsExtern() bool     { return false }
func (op *denseGradOp) OverwritesInput() int  { return -1 }
func (op *denseGradOp) Hashcode() uint32      { return opkit.Hash32(op) }
func (op *denseGradOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "fastdense.DenseGrad#%d", op.dense.id) }
func (op *denseGradOp) String() string        { return "fastdense.DenseGrad" }
func (op *denseGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{1, op.dense.sz.out}, nil
}

func (op *denseGradOp) Do(inputs ...G.Value) (G.Value, error) {
	d := op.dense
	if len(inputs) != 4 {
		return nil, fmt.Errorf("fastdense: %v takes 4 inputs, got %d", op, len(inputs))
	}
	xd, wd, err := d.operands(inputs[0], inputs[1])
	if err != nil {
		return nil, err
	}
	z := d.sz
	gy, err := opkit.Float32s("fastdense", inputs[3], "output gradient", z.n, z.out)
	if err != nil {
		return nil, err
	}
	s := d.s
	s.dw = opkit.Grow(s.dw, z.in*z.out)
	db := opkit.Tensor(&s.db, 1, z.out)
	var dx []float32
	if s.needDX() {
		s.dx = opkit.Grow(s.dx, z.n*z.in)
		s.dxZero = false
		dx = s.dx
	} else if !s.dxZero {
		// The dx node is computed by the tape but unused: give it zeros
		// once instead of a GEMM on every run.
		s.dx = opkit.Grow(s.dx, z.n*z.in)
		clear(s.dx)
		s.dxZero = true
	}
	s.backward(xd, wd, gy, dx, s.dw, db.Float32s(), z)
	return db, nil
}

// needDX reports whether any dx node is used: consumed by another node, or
// the gradient of a node that asked for it (G.Grad w.r.t. x). It is not when
// x is a data input (the first layer of an MLP), and then the backward pass
// skips the dx GEMM, which gorgonia's own Mul always computes.
func (s *scratch) needDX() bool {
	return opkit.AnyUsed(s.dxNodes)
}

// pickOp returns dx or dw computed by the layer's backward op (its input,
// which orders it after that op).
type pickOp struct {
	dense *denseOp
	which pick
}

type pick int

const (
	pickDX pick = iota
	pickDW
)

func (p pick) String() string { return [...]string{"dx", "dw"}[p] }

func (op *pickOp) Arity() int           { return 1 }
func (op *pickOp) Type() hm.Type        { return hm.NewFnType(matrix, matrix) }
func (op *pickOp) ReturnsPtr() bool     { return false }
func (op *pickOp) CallsExtern() bool    { return false }
func (op *pickOp) OverwritesInput() int { return -1 }
func (op *pickOp) Hashcode() uint32     { return opkit.Hash32(op) }
func (op *pickOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "fastdense.Pick%v#%d", op.which, op.dense.id)
}
func (op *pickOp) String() string { return "fastdense.Pick" + op.which.String() }

func (op *pickOp) shape() []int {
	z := op.dense.sz
	if op.which == pickDX {
		return []int{z.n, z.in}
	}
	return []int{z.in, z.out}
}

func (op *pickOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape(op.shape()), nil
}

func (op *pickOp) Do(...G.Value) (G.Value, error) {
	s := op.dense.s
	if op.which == pickDX {
		return opkit.Tensor(&s.dx, op.shape()...), nil
	}
	return opkit.Tensor(&s.dw, op.shape()...), nil
}
