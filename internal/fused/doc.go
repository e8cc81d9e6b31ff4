// Package fused holds kdcal's hand-written gorgonia ops, one framework
// (ops.go: a kernel's forward and backward pass as a forward op, one
// backward op and pick ops) and one test harness (harness_test.go) for all
// of them:
//
//	Stage   maxpool2×2(relu(conv3×3(x, w) + b)), NCHW: the CNN family's layer (stage.go)
//	Dense   x·w + b, optionally ReLU: the MLP and CNN families' layer (dense.go)
//	Stem, Block, Head: the CIFAR ResNet (below; layers.go)
//
// Stage and Dense compute what the gorgonia graphs they replace compute
// (their doc comments give the graphs and the tie rules); they were
// internal/fastconv and internal/fastdense, with internal/opkit's plumbing,
// until issue 15 merged them here. The copies had drifted; the merged
// framework keeps, for every op, the better of each:
//
//   - the backward op reads the forward output (fastdense had this; it
//     orders the backward pass after the forward pass whose state it reads
//     even when the output gradient does not depend on the output);
//   - an input gradient nobody reads (the network's data input) is skipped,
//     and its pick returns zeros cleared once, not on every run (fastdense;
//     fastconv cleared every run, the ResNet ops never cleared a buffer that
//     an earlier run had filled);
//   - every op has the LispMachine path (DoDiff; fastconv and fastdense had
//     it, the ResNet ops did not);
//   - operand names are formatted only on error (fastconv and fastdense
//     passed constant names; a formatted name per operand per run would be
//     garbage on every step).
//
// Two differences are kept on purpose, because changing them would change
// trained models' bits: Stage sums its bias gradient in float64 (Dense sums
// rows in float32 in order, bit-identical to gorgonia's Sum), and Stage cuts
// its convolution into whole-image chunks of at most 128 KiB (stageChunkBytes,
// measured for the CNN) where the ResNet ops use 128 Ki-element chunks of
// images or row bands (chunkElems): dW's summation order follows the chunks.
//
// # The ResNet
//
// The ResNet ops are the numeric core of the CIFAR ResNet family (He et
// al. 2016, "Deep Residual Learning for Image Recognition", §4.2).
//
// # The network
//
// A ResNetSpec (depth 6n+2, width w, input C×H×W, classes K) describes
//
//	stem:    relu(bn1(conv1(x)))                    conv 3×3, C→w, stride 1, pad 1, no bias
//	stage 1: n BasicBlocks, w channels              (layer1.0 … layer1.{n−1})
//	stage 2: n BasicBlocks, 2w channels, the first with stride 2 (layer2.*)
//	stage 3: n BasicBlocks, 4w channels, the first with stride 2 (layer3.*)
//	head:    fc(global_average_pool(·))             Linear 4w→K
//
//	BasicBlock(x) = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
//
// with 3×3 convolutions (conv1 with the block's stride) and the paper's
// option-A shortcut: the identity, or, where a stage doubles the width,
// x[:, :, ::2, ::2] padded with w_in/2 zero channels on each side, as the
// common torch code writes it, F.pad(x[:, :, ::2, ::2], (0,0,0,0, planes//4,
// planes//4)); the split is exact for even widths, which Validate requires.
// Spatial sizes are ⌊(H−1)/2⌋+1 after each stride-2 stage (32→16→8,
// 28→14→7), equal for the strided convolution and the ::2 subsample.
//
// BatchNorm (bn.go) normalises with the batch statistics in training
// (biased variance), with the running statistics in evaluation; running =
// 0.9·running + 0.1·batch with the unbiased batch variance, ε = 1e-5, affine
// γ and β: torch.nn.BatchNorm2d's defaults. The torch module the tests
// check against is testdata/torch_resnet.py.
//
// # API (for the model-family integration)
//
//	r, err := fused.NewResNet(spec, tensor.Float32) // torch's initial BN state, zero weights
//	r.Init(rng, fused.InitHe)                       // or InitTorch; ParseInit("he"|"torch")
//	tr, err := r.Build(trainGraph, bs, fused.Train) // tr.X (bs,C,H,W), tr.Logits (bs,K), tr.Params
//	ev, err := r.Build(evalGraph, evalBS, fused.Eval)
//
// r.State lists every torch state_dict entry in torch's order, named as
// torch names them (conv1.weight, bn1.weight, bn1.bias, bn1.running_mean,
// bn1.running_var, bn1.num_batches_tracked, layer1.0.conv1.weight, …,
// fc.weight, fc.bias) and shaped as torch shapes them (fc.weight is
// (K, 4w), torch's Linear layout, also in the graph), so a safetensors
// export is a one-to-one mapping: every entry's T is a float32 tensor,
// except num_batches_tracked (an int64 scalar in torch), whose value is
// r.BatchesTracked. r.Params are the learnables (the optimizer's, in the
// order of Graph.Params), r.Buffers the running means and variances (a
// checkpoint must store them and BatchesTracked to resume exactly).
// Update all of them in place (CopyFrom, tensor.Copy): the graphs bind the
// tensors.
//
// Modes are explicit and per graph. A Train graph updates the running
// statistics and BatchesTracked in its forward pass, exactly once per run
// (RunAll), deterministically (fixed summation orders, no threads: the
// same state and inputs give bit-identical statistics); an Eval graph
// never changes them and refuses G.Grad. Training graphs need batches of
// at least 2 (one value per channel has no variance), and a padded last
// batch would change the batch statistics: drop partial training batches.
// Evaluation is per example (zero-padded batches are fine).
//
// # The ops
//
// Build applies three fused ops (layers.go): a stem op, one op per
// BasicBlock (conv-BN-ReLU-conv-BN-add-ReLU with the stride and the
// shortcut inside) and a head op (average pooling and fc), each with one
// backward op that computes every gradient of the layer in one pass
// (ops.go: the design of internal/fastconv). Activations after the stem are
// CNHW tensors of shape (C,N,H,W), so a channel is a contiguous row of
// N·H·W values for the BatchNorm reductions and the GEMMs; they flow only
// between these ops. The ops keep what their backward pass needs (x̂, the
// ReLU outputs) in buffers that live across runs, share scratch (column
// matrices, temporaries) within a graph, and allocate only tensor headers
// per step.
//
// Convolutions (conv.go) are im2col + GEMM through G.WhichBLAS() (OpenBLAS
// with -tags openblas), chunk by chunk so the column matrix stays in L2:
// the forward GEMM (f × 9c · 9c × pixels) accumulates the BatchNorm sums
// of each chunk while it is in cache; the weight gradient is one GEMM per
// chunk; the input gradient of a stride-1 convolution is the convolution
// of the output gradient with the flipped kernel (a GEMM with inner
// dimension 9f, not f), and that of a stride-2 one col2im(wᵀ·da). The
// elementwise passes (elementwise.go) run on SSE2 assembly on amd64,
// bit-identical to their portable loops.
//
// Only the float32 (training) and float64 (finite-difference checks)
// element types exist; the two use the same code.
//
// # Verification
//
//   - TestFusedOps (harness_test.go): every op (Stage, Dense, Stem, Block,
//     Head; the ResNet ops in float32 and float64) forward against a
//     float64 reference written as loops, every operand's gradient against
//     central finite differences of that reference, and against the same
//     computation in gorgonia's own ops where gorgonia has them; the
//     tolerances are stated there.
//   - stage_test.go, dense_test.go: networks of Stage or Dense layers
//     against gorgonia's graphs (several chunkings, shared inputs, ties at
//     exact zeros, repeated and concurrent runs, the LispMachine path,
//     forward-only programs, allocation per step) and a short training run
//     against gorgonia's; TestStageMatchesTorch against torch.
//   - TestResNetMatchesTorch: torch 1.13 loads the same state strictly;
//     eval and train logits, every parameter gradient, the running
//     statistics and num_batches_tracked after one training forward
//     agree to 3e-6 (forward) and 3e-5 (gradients) relative, measured
//     ≤ 3.4e-7 and ≤ 2.6e-6, for resnet8/14 at widths 4 and 8 on 3×32×32
//     and 1×28×28; parameter counts of ten (depth, width) pairs spanning
//     178× equal torch's.
//   - TestGradientsMatchFiniteDifferences: float64 gradients of every
//     parameter and of the input against central differences, 1e-6.
//   - TestBlockMatchesGorgonia, TestResNetMatchesGorgonia,
//     TestChunkingMatchesGorgonia: the fused block and network against
//     the same network built from gorgonia's Conv2d, Mean, broadcast and
//     Rectify ops (float64, values and gradients through gorgonia's own
//     differentiation, 1e-11).
//   - TestRunningStatistics, TestIm2col, TestElementwise*: the statistics'
//     update rule and determinism, im2col/col2im against their definition,
//     the assembly against the portable loops bit for bit.
//
// Speed: BenchmarkStage, BenchmarkCNNStep, BenchmarkDense, BenchmarkMLPStep,
// BenchmarkResNetStep and scripts/bench_resnet.sh (with
// scripts/torch_resnet_bench.py).
package fused
