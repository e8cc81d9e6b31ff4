// Package fastdense provides a fused fully connected layer for gorgonia:
// y = x·W + b with an optional ReLU, float32 matrices, as gorgonia ops with
// symbolic (TapeMachine) and automatic (LispMachine) differentiation.
//
// Why: in gorgonia v0.9.18, a G.Mul + G.BroadcastAdd + G.Rectify layer
// materialises the repeated bias, the product, the comparison mask and the
// product with it, allocates all of them on every step, and its backward
// pass always computes the input gradient, also of the first layer whose
// input is data (a third of that layer's backward GEMM work). Dense does
//
//	forward:  y = x·W (one GEMM into a reused buffer);
//	          y = (y + b)·mask, mask = [y + b ≥ 0] (one pass)
//	backward: dpre = dy ⊙ mask;  db = Σ_rows dpre  (one pass)
//	          dW = xᵀ·dpre;      dx = dpre·Wᵀ      (two GEMMs)
//
// with all outputs and scratch owned by the node and reused across runs, so
// a step allocates only tensor headers. The GEMMs go through G.WhichBLAS(),
// so a build that switches gorgonia to OpenBLAS (internal/blasopt, -tags
// openblas) switches these ops too. The design (one backward op whose value
// is db, pick ops for dx and dW, dx skipped when unused) is that of
// internal/fastconv.
//
// Semantics are gorgonia's: the bias is added after the product (same
// rounding), the ReLU is the product with the mask [v ≥ 0], so its
// derivative is 1 at a pre-activation of exactly 0 (PyTorch uses 0 there;
// the two agree except on exact zeros) and NaN or −∞ pre-activations give
// NaN as in gorgonia, and db sums the rows in order in float32.
//
// The gradient of x is skipped at run time when nothing uses it (x is the
// data input of the first layer): see scratch.needDX.
package fastdense
