package fastconv

import (
	"fmt"
	"hash"
	"sync/atomic"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/kdcal/kdcal/internal/opkit"
)

// Stage returns maxpool2×2(relu(conv3×3(x, w) + b)) for NCHW float32
// tensors: x (N,C,H,W), w (F,C,3,3) in OIHW layout, b (1,F,1,1). The
// convolution has stride 1 and padding 1; the pooling has kernel 2, stride 2
// and no padding, so the output is (N,F,⌊H/2⌋,⌊W/2⌋) like
// torch.nn.MaxPool2d(2); H and W must be at least 2 (gorgonia's MaxPool2D
// rejects smaller inputs too).
//
// It computes exactly what this gorgonia graph computes, values and
// gradients (see the package documentation for the one tie rule):
//
//	c := G.Conv2d(x, w, tensor.Shape{3, 3}, []int{1, 1}, []int{1, 1}, []int{1, 1})
//	c = G.BroadcastAdd(c, b, nil, []byte{0, 2, 3})
//	y := G.MaxPool2D(G.Rectify(c), tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2})
//
// Only float32 is supported (a float64 graph, e.g. for gradient checks,
// keeps the ops above). Shape or dtype problems are returned as errors.
//
// The values of the returned node and of its gradient nodes live in buffers
// that the node reuses on every run (this is where the allocation saving
// comes from): copy a value out before the next run if you keep it, as
// gorgonia-notes.md §6 asks for every value.
func Stage(x, w, b *G.Node) (*G.Node, error) {
	g, err := checkStage(x, w, b)
	if err != nil {
		return nil, err
	}
	op := &stageOp{id: nextID.Add(1), g: g, s: &scratch{}}
	out, err := G.ApplyOp(op, x, w, b)
	if err != nil {
		return nil, fmt.Errorf("fastconv: %w", err)
	}
	return out, nil
}

var nextID atomic.Uint64

// checkStage validates the operands of Stage and returns the stage sizes.
func checkStage(x, w, b *G.Node) (geom, error) {
	for _, n := range []struct {
		name string
		node *G.Node
	}{{"x", x}, {"w", w}, {"b", b}} {
		if n.node == nil {
			return geom{}, fmt.Errorf("fastconv: %s is nil", n.name)
		}
		if dt := n.node.Dtype(); dt != tensor.Float32 {
			return geom{}, fmt.Errorf("fastconv: %s has dtype %v, want float32", n.name, dt)
		}
		if d := n.node.Shape().Dims(); d != 4 {
			return geom{}, fmt.Errorf("fastconv: %s has shape %v, want 4 dimensions", n.name, n.node.Shape())
		}
	}
	xs, ws, bs := x.Shape(), w.Shape(), b.Shape()
	if ws[0] < 1 || ws[1] != xs[1] || ws[2] != 3 || ws[3] != 3 {
		return geom{}, fmt.Errorf("fastconv: w has shape %v, want (F,%d,3,3) for x %v", ws, xs[1], xs)
	}
	if bs[0] != 1 || bs[1] != ws[0] || bs[2] != 1 || bs[3] != 1 {
		return geom{}, fmt.Errorf("fastconv: b has shape %v, want (1,%d,1,1)", bs, ws[0])
	}
	if xs[0] < 1 || xs[1] < 1 || xs[2] < 2 || xs[3] < 2 {
		return geom{}, fmt.Errorf("fastconv: x has shape %v, want N, C ≥ 1 and H, W ≥ 2 (2×2 pooling)", xs)
	}
	return newGeom(xs[0], xs[1], xs[2], xs[3], ws[0]), nil
}

// scratch is the state one Stage node keeps between runs: the pooling mask
// of the last forward pass (read by the backward pass) and reused buffers.
// Each Stage call owns its scratch, so independent graphs can run in
// different goroutines; one graph must not be run concurrently (gorgonia's
// own rule).
type scratch struct {
	mask     []int32   // (N,F,Ho,Wo): in-plane index of the pooled pixel, -1 for zero gradient
	col, pre []float32 // chunk buffers: im2col / dCol (K×J) and pre-activation / dPre (F×J)
	dbAcc    []float64

	y, dx, dw, db []float32 // output buffers, reused across runs
	dxNodes       []*G.Node // the dx nodes made by SymDiff (see needDX)
}

func (s *scratch) ensure(g geom) {
	j := g.nb * g.p()
	s.mask = opkit.Grow(s.mask, g.n*g.f*g.q())
	s.col = opkit.Grow(s.col, g.k()*j)
	s.pre = opkit.Grow(s.pre, g.f*j)
	s.dbAcc = opkit.Grow(s.dbAcc, g.f)
}

// fourD is the type of every operand and result: a 4-d tensor of one dtype.
var fourD = G.TensorType{Dims: 4, Of: hm.TypeVariable('a')}

// stageOp is the forward op: (x, w, b) → y.
type stageOp struct {
	id uint64
	g  geom
	s  *scratch
}

var (
	_ G.SDOp = (*stageOp)(nil)
	_ G.ADOp = (*stageOp)(nil)
)

func (op *stageOp) Arity() int       { return 3 }
func (op *stageOp) Type() hm.Type    { return hm.NewFnType(fourD, fourD, fourD, fourD) }
func (op *stageOp) ReturnsPtr() bool { return false }

// CallsExtern reports false: the op may call OpenBLAS through cgo, but like
// gorgonia's own matmul it runs on the CPU device.
func (op *stageOp) CallsExtern() bool    { return false }
func (op *stageOp) OverwritesInput() int { return -1 }
func (op *stageOp) Hashcode() uint32     { return opkit.Hash32(op) }
func (op *stageOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "fastconv.Stage#%d", op.id)
}
func (op *stageOp) String() string {
	return fmt.Sprintf("fastconv.Stage{%d,%d,%d,%d→%d}", op.g.n, op.g.c, op.g.h, op.g.w, op.g.f)
}

func (op *stageOp) outShape() []int { return []int{op.g.n, op.g.f, op.g.ho, op.g.wo} }

func (op *stageOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape(op.outShape()), nil
}

// operands extracts and checks the data of x, w and b.
func (op *stageOp) operands(x, w, b G.Value) (xd, wd, bd []float32, err error) {
	g := op.g
	if xd, err = opkit.Float32s("fastconv", x, "x", g.n, g.c, g.h, g.w); err != nil {
		return
	}
	if wd, err = opkit.Float32s("fastconv", w, "w", g.f, g.c, 3, 3); err != nil {
		return
	}
	bd, err = opkit.Float32s("fastconv", b, "b", 1, g.f, 1, 1)
	return
}

// Do runs the forward pass and records the pooling mask for the backward pass.
func (op *stageOp) Do(inputs ...G.Value) (G.Value, error) {
	if len(inputs) != 3 {
		return nil, fmt.Errorf("fastconv: %v takes 3 inputs, got %d", op, len(inputs))
	}
	xd, wd, bd, err := op.operands(inputs[0], inputs[1], inputs[2])
	if err != nil {
		return nil, err
	}
	op.s.ensure(op.g)
	y := opkit.Tensor(&op.s.y, op.outShape()...)
	op.s.forward(xd, wd, bd, y.Float32s(), op.g)
	return y, nil
}

func (op *stageOp) DiffWRT(int) []bool { return []bool{true, true, true} }

// SymDiff returns the gradient nodes of x, w and b. One backward op computes
// all three in a single pass over the batch; its value is db, and dx and dw
// are picked from the state it leaves (same design as gorgonia's maxPoolOp,
// whose diff op reads the mask its forward op recorded).
func (op *stageOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 3 {
		return nil, fmt.Errorf("fastconv: %v takes 3 inputs, got %d", op, len(inputs))
	}
	bwd, err := G.ApplyOp(&stageGradOp{op}, inputs[0], inputs[1], grad)
	if err != nil {
		return nil, fmt.Errorf("fastconv: %w", err)
	}
	dx, err := G.ApplyOp(&pickOp{stage: op, which: pickDX}, bwd)
	if err != nil {
		return nil, fmt.Errorf("fastconv: %w", err)
	}
	dw, err := G.ApplyOp(&pickOp{stage: op, which: pickDW}, bwd)
	if err != nil {
		return nil, fmt.Errorf("fastconv: %w", err)
	}
	op.s.dxNodes = append(op.s.dxNodes, dx)
	return G.Nodes{dx, dw, bwd}, nil
}

// DoDiff accumulates the gradients into the dual values of x, w and b
// (gorgonia's LispMachine path). Inputs without a gradient are skipped.
func (op *stageOp) DoDiff(_ G.ExecutionContext, inputs G.Nodes, output *G.Node) error {
	if len(inputs) != 3 {
		return fmt.Errorf("fastconv: %v takes 3 inputs, got %d", op, len(inputs))
	}
	xd, wd, _, err := op.operands(inputs[0].Value(), inputs[1].Value(), inputs[2].Value())
	if err != nil {
		return err
	}
	gv, err := output.Grad()
	if err != nil {
		return fmt.Errorf("fastconv: gradient of %v: %w", op, err)
	}
	gy, err := opkit.Float32s("fastconv", gv, "output gradient", op.outShape()...)
	if err != nil {
		return err
	}
	g := op.g
	xs := []int{g.n, g.c, g.h, g.w}
	shapes := [][]int{xs, {g.f, g.c, 3, 3}, {1, g.f, 1, 1}}
	targets := make([][]float32, 3)
	for i, in := range inputs {
		if d, err := in.Grad(); err == nil && d != nil {
			if targets[i], err = opkit.Float32s("fastconv", d, "gradient of "+in.Name(), shapes[i]...); err != nil {
				return err
			}
		}
	}
	op.s.ensure(g)
	dw, db := opkit.Grow(op.s.dw, g.f*g.k()), opkit.Grow(op.s.db, g.f)
	op.s.dw, op.s.db = dw, db
	var dx []float32
	if targets[0] != nil {
		dx = opkit.Grow(op.s.dx, g.n*g.c*g.p())
		op.s.dx = dx
	}
	op.s.backward(xd, wd, gy, dx, dw, db, g)
	for i, src := range [][]float32{dx, dw, db} {
		if targets[i] != nil {
			addTo(targets[i], src)
		}
	}
	return nil
}

// stageGradOp is the backward op: (x, w, dy) → db, leaving dx and dw in the
// stage's scratch for the pick ops.
type stageGradOp struct{ stage *stageOp }

func (op *stageGradOp) Arity() int            { return 3 }
func (op *stageGradOp) Type() hm.Type         { return hm.NewFnType(fourD, fourD, fourD, fourD) }
func (op *stageGradOp) ReturnsPtr() bool      { return false }
func (op *stageGradOp) CallsExtern() bool     { return false }
func (op *stageGradOp) OverwritesInput() int  { return -1 }
func (op *stageGradOp) Hashcode() uint32      { return opkit.Hash32(op) }
func (op *stageGradOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "fastconv.StageGrad#%d", op.stage.id) }
func (op *stageGradOp) String() string        { return "fastconv.StageGrad" }
func (op *stageGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{1, op.stage.g.f, 1, 1}, nil
}

func (op *stageGradOp) Do(inputs ...G.Value) (G.Value, error) {
	st := op.stage
	if len(inputs) != 3 {
		return nil, fmt.Errorf("fastconv: %v takes 3 inputs, got %d", op, len(inputs))
	}
	g := st.g
	xd, err := opkit.Float32s("fastconv", inputs[0], "x", g.n, g.c, g.h, g.w)
	if err != nil {
		return nil, err
	}
	wd, err := opkit.Float32s("fastconv", inputs[1], "w", g.f, g.c, 3, 3)
	if err != nil {
		return nil, err
	}
	gy, err := opkit.Float32s("fastconv", inputs[2], "output gradient", st.outShape()...)
	if err != nil {
		return nil, err
	}
	s := st.s
	s.ensure(g)
	s.dw = opkit.Grow(s.dw, g.f*g.k())
	db := opkit.Tensor(&s.db, 1, g.f, 1, 1)
	var dx []float32
	if s.needDX() {
		s.dx = opkit.Grow(s.dx, g.n*g.c*g.p())
		dx = s.dx
	} else {
		s.dx = opkit.Grow(s.dx, g.n*g.c*g.p())
		clear(s.dx)
	}
	s.backward(xd, wd, gy, dx, s.dw, db.Float32s(), g)
	return db, nil
}

// needDX reports whether any dx node is used: consumed by another node, or
// the gradient of a node that asked for it (G.Grad w.r.t. x). It is not when
// x is a data input (the first stage of a network), and then the backward
// pass skips the dCol GEMM and col2im, which gorgonia's own Conv2d always
// computes.
func (s *scratch) needDX() bool {
	return opkit.AnyUsed(s.dxNodes)
}

// pickOp returns dx or dw computed by the stage's backward op (its input,
// which orders it after that op).
type pickOp struct {
	stage *stageOp
	which pick
}

type pick int

const (
	pickDX pick = iota
	pickDW
)

func (p pick) String() string { return [...]string{"dx", "dw"}[p] }

func (op *pickOp) Arity() int            { return 1 }
func (op *pickOp) Type() hm.Type         { return hm.NewFnType(fourD, fourD) }
func (op *pickOp) ReturnsPtr() bool      { return false }
func (op *pickOp) CallsExtern() bool     { return false }
func (op *pickOp) OverwritesInput() int  { return -1 }
func (op *pickOp) Hashcode() uint32      { return opkit.Hash32(op) }
func (op *pickOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "fastconv.Pick%v#%d", op.which, op.stage.id) }
func (op *pickOp) String() string        { return "fastconv.Pick" + op.which.String() }

func (op *pickOp) shape() []int {
	g := op.stage.g
	if op.which == pickDX {
		return []int{g.n, g.c, g.h, g.w}
	}
	return []int{g.f, g.c, 3, 3}
}

func (op *pickOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape(op.shape()), nil
}

func (op *pickOp) Do(...G.Value) (G.Value, error) {
	s := op.stage.s
	if op.which == pickDX {
		return opkit.Tensor(&s.dx, op.shape()...), nil
	}
	return opkit.Tensor(&s.dw, op.shape()...), nil
}
