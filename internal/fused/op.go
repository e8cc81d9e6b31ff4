package fused

import (
	"fmt"
	"hash"
	"hash/fnv"
	"sync/atomic"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Float is the element type of the fused ops: float32 for training,
// float64 for the finite-difference gradient checks (same code, same
// kernels; the GEMMs dispatch to Sgemm or Dgemm).
type Float interface{ float32 | float64 }

// dtypeOf returns the tensor dtype of T.
func dtypeOf[T Float]() tensor.Dtype {
	var z T
	if _, ok := any(z).(float32); ok {
		return tensor.Float32
	}
	return tensor.Float64
}

// nextID makes every op's hash unique: gorgonia merges nodes with equal
// hashes (ExprGraph.AddNode), and two blocks with the same shapes must stay
// two nodes.
var nextID atomic.Uint64

// tensorType is the gorgonia type of a dims-dimensional operand; all
// operands of one op share the type variable, i.e. one dtype.
func tensorType(dims int) hm.Type {
	return G.TensorType{Dims: dims, Of: hm.TypeVariable('a')}
}

// opBase implements the bookkeeping methods of G.Op shared by every op in
// this package. Embedders add Do (and DiffWRT/SymDiff for forward ops).
type opBase struct {
	id    uint64
	name  string       // e.g. "Block", "BlockGrad", "Pick(dx)"
	in    []int        // dims of each input
	out   tensor.Shape // output shape
	descr string       // human-readable shapes, for String
}

func newBase(name, descr string, out tensor.Shape, inDims ...int) opBase {
	return opBase{id: nextID.Add(1), name: name, in: inDims, out: out, descr: descr}
}

func (o *opBase) Arity() int { return len(o.in) }
func (o *opBase) Type() hm.Type {
	ts := make([]hm.Type, 0, len(o.in)+1)
	for _, d := range o.in {
		ts = append(ts, tensorType(d))
	}
	return hm.NewFnType(append(ts, tensorType(o.out.Dims()))...)
}
func (o *opBase) InferShape(...G.DimSizer) (tensor.Shape, error) { return o.out.Clone(), nil }
func (o *opBase) ReturnsPtr() bool                               { return false }

// CallsExtern reports false: the ops may call OpenBLAS through cgo, but
// like gorgonia's own matmul they run on the CPU device.
func (o *opBase) CallsExtern() bool     { return false }
func (o *opBase) OverwritesInput() int  { return -1 }
func (o *opBase) WriteHash(h hash.Hash) { fmt.Fprintf(h, "fused.%s#%d", o.name, o.id) }
func (o *opBase) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}
func (o *opBase) String() string { return "fused." + o.name + o.descr }

// checkArgs returns an error unless exactly n inputs were passed.
func (o *opBase) checkArgs(n int) error {
	if n != len(o.in) {
		return fmt.Errorf("fused: %v takes %d inputs, got %d", o, len(o.in), n)
	}
	return nil
}

// values returns the contiguous data of an operand after checking its
// type, dtype and shape. Its error completes a sentence whose subject, the
// operand's name, the caller adds (withName): names are built only on
// failure, since a formatted name per operand per run is garbage.
func values[T Float](v G.Value, shape ...int) ([]T, error) {
	t, ok := v.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("is a %T, want *tensor.Dense", v)
	}
	if !t.Shape().Eq(tensor.Shape(shape)) {
		return nil, fmt.Errorf("has shape %v, want %v", t.Shape(), shape)
	}
	if t.RequiresIterator() {
		t = t.Materialize().(*tensor.Dense)
	}
	d, ok := t.Data().([]T)
	if !ok {
		return nil, fmt.Errorf("has dtype %v, want %v", t.Dtype(), dtypeOf[T]())
	}
	return d, nil
}

// withName prefixes an error of values with the operand's name.
func withName(err error, format string, args ...any) error {
	return fmt.Errorf("fused: %s %w", fmt.Sprintf(format, args...), err)
}

// grow returns s resized to n elements, reallocating only when its
// capacity is too small (the contents are then not preserved).
func grow[E any](s []E, n int) []E {
	if cap(s) < n {
		return make([]E, n)
	}
	return s[:n]
}

// wrap returns a fresh *tensor.Dense header of the given shape over the
// reused buffer *buf (grown as needed). The header is new on every call
// because downstream ops (e.g. Reshape) may change a header in place; the
// backing array is reused.
func wrap[T Float](buf *[]T, shape ...int) *tensor.Dense {
	n := 1
	for _, d := range shape {
		n *= d
	}
	*buf = grow(*buf, n)
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking((*buf)[:n]))
}

// pickOp returns one gradient computed by a backward op: its only input is
// that op's output, which orders it after the backward pass (the design of
// gorgonia's maxPoolDiffOp, which reads the state its forward op left).
type pickOp struct {
	opBase
	get func() G.Value
}

func (o *pickOp) Do(...G.Value) (G.Value, error) { return o.get(), nil }

// pick adds a pick node reading get() after bwd has run.
func pick(bwd *G.Node, owner uint64, which string, shape tensor.Shape, get func() G.Value) (*G.Node, error) {
	op := &pickOp{opBase: newBase(fmt.Sprintf("Pick(%s of #%d)", which, owner), "", shape, bwd.Dims()), get: get}
	n, err := G.ApplyOp(op, bwd)
	if err != nil {
		return nil, fmt.Errorf("fused: %s: %w", which, err)
	}
	return n, nil
}

// anyUsed reports whether any of the nodes is used: consumed by another
// node, or the gradient of a node that asked for it (G.Grad w.r.t. it).
// The ops use it to skip an input gradient nobody reads (the gradient of
// the network's data input).
func anyUsed(nodes []*G.Node) bool {
	for _, n := range nodes {
		if len(n.DerivOf()) > 0 {
			return true
		}
		if to := n.Graph().To(n.ID()); to != nil && to.Len() > 0 {
			return true
		}
	}
	return false
}
