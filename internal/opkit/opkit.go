// Package opkit holds the plumbing shared by kdcal's hand-written gorgonia
// ops (internal/fastconv, internal/fastdense): reusable float32 buffers
// exposed as tensors, checked access to operand data, and op hashing.
package opkit

import (
	"fmt"
	"hash"
	"hash/fnv"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Grow returns s resized to n elements, reallocating only when its capacity
// is too small (the contents are then not preserved).
func Grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// Tensor wraps the reusable buffer *buf (grown as needed) in a fresh
// *tensor.Dense header of the given shape. The header is new on every call
// because downstream ops (e.g. Reshape) may change a header in place; the
// backing array is reused.
func Tensor(buf *[]float32, shape ...int) *tensor.Dense {
	n := 1
	for _, d := range shape {
		n *= d
	}
	*buf = Grow(*buf, n)
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking((*buf)[:n]))
}

// Float32s returns the contiguous float32 data of an operand after checking
// its type, dtype and shape; errors are prefixed with pkg (e.g. "fastconv")
// and name the operand.
func Float32s(pkg string, v G.Value, name string, shape ...int) ([]float32, error) {
	t, ok := v.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("%s: %s is a %T, want *tensor.Dense", pkg, name, v)
	}
	if t.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("%s: %s has dtype %v, want float32", pkg, name, t.Dtype())
	}
	if !t.Shape().Eq(tensor.Shape(shape)) {
		return nil, fmt.Errorf("%s: %s has shape %v, want %v", pkg, name, t.Shape(), shape)
	}
	if t.RequiresIterator() {
		t = t.Materialize().(*tensor.Dense)
	}
	return t.Float32s(), nil
}

// Hash32 is an op's Hashcode: FNV-1a of what its WriteHash writes.
func Hash32(op interface{ WriteHash(hash.Hash) }) uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

// AnyUsed reports whether any of the nodes is used: consumed by another
// node, or the gradient of a node that asked for it (G.Grad w.r.t. it).
// The fused ops use it to skip the input gradient when the input is data.
func AnyUsed(nodes []*G.Node) bool {
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
