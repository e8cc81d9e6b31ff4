// Package fastconv provides a fused CNN stage for gorgonia:
// y = maxpool2×2(relu(conv3×3(x, w) + b)) in NCHW float32, as gorgonia ops
// with symbolic (TapeMachine) and automatic (LispMachine) differentiation.
//
// Why: in gorgonia v0.9.18, a Conv2d + BroadcastAdd + Rectify + MaxPool2D
// stage spends most of its time moving data (NHWC↔NCHW transposes inside
// Conv2d, im2col/col2im, the materialised bias, pooling) and allocates all
// intermediates on every step; the matrix products are a minority of the
// time (/work/shared/docs/gorgonia-notes.md §8). Stage does the same
// arithmetic with one GEMM per chunk of images in each direction:
//
//	forward:  col = im2col(x)             (C·9 × nb·H·W, NCHW, no transposes)
//	          pre = W·col                 (F × nb·H·W)
//	          y, mask = pool(relu(pre+b)) (one pass; mask = argmax or -1)
//	backward: dPre = scatter(dy, mask);   db = Σ dPre
//	          dW += dPre·im2col(x)ᵀ;      dx = col2im(Wᵀ·dPre)
//
// Chunks of nb images keep the column matrix in cache; scratch buffers and
// output buffers are owned by the node and reused across runs, so a step
// allocates only tensor headers. The GEMMs go through G.WhichBLAS(), so
// a build that switches gorgonia to OpenBLAS (internal/blasopt, -tags
// openblas) switches these ops too.
//
// Semantics are gorgonia's, including the tie rules: the pooled maximum
// is the first in row-major order among equal values, and the ReLU
// derivative is 1 at a pre-activation of exactly 0 (gorgonia's Rectify is
// x·(x ≥ 0)); PyTorch uses 0 there. The two agree except on exact zeros.
//
// The gradient of x is skipped at run time when nothing uses it (x is the
// data input of the first stage): see scratch.needDX.
//
// Measured on the medium CNN teacher (conv16-pool-conv32-pool-fc128-fc10,
// batch 128, one thread, medians of interleaved runs on a shared 2-core
// box): a training step is about 7× faster than with gorgonia's ops with
// OpenBLAS (about 0.5× PyTorch 1.13's time) and about 2× faster in pure Go,
// where gonum's sgemm is then ~85% of the step; it allocates about 2 MB
// per step instead of 130 MB. Commands: BenchmarkStage, BenchmarkCNNStep
// and scripts/torch_conv_bench.py.
package fastconv
