package fused

import (
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// StageOps is the layer Stage computes, built from gorgonia's own ops
// (Conv2d, BroadcastAdd, Rectify, MaxPool2D) for any dtype: the reference
// Stage is tested against, and internal/model's float64 conv stage.
func StageOps(x, w, b *G.Node) (*G.Node, error) {
	c, err := G.Conv2d(x, w, tensor.Shape{3, 3}, []int{1, 1}, []int{1, 1}, []int{1, 1})
	if err != nil {
		return nil, err
	}
	if c, err = G.BroadcastAdd(c, b, nil, []byte{0, 2, 3}); err != nil {
		return nil, err
	}
	if c, err = G.Rectify(c); err != nil {
		return nil, err
	}
	return G.MaxPool2D(c, tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2})
}

// DenseOps is the layer Dense computes, x·w + b and an optional ReLU, built
// from gorgonia's own ops (Mul, BroadcastAdd, Rectify) for any dtype: the
// reference Dense is tested against, and internal/model's float64 dense
// layer.
func DenseOps(x, w, b *G.Node, relu bool) (*G.Node, error) {
	h, err := G.Mul(x, w)
	if err != nil {
		return nil, err
	}
	if h, err = G.BroadcastAdd(h, b, nil, []byte{0}); err != nil {
		return nil, err
	}
	if relu {
		return G.Rectify(h)
	}
	return h, nil
}
