// Package model defines kdcal's two architecture families and everything
// that depends only on an architecture and its weights: parameter shapes
// and counts, seeded initialisation, the gorgonia forward graph, batched
// inference, and safetensors checkpoints that PyTorch can load.
//
// # Families
//
// An MLP is a stack of dense layers with ReLU followed by a dense output
// layer:
//
//	x (N, D) → [Linear → ReLU] × len(Hidden) → Linear → logits (N, Classes)
//
// A CNN first applies one stage per Conv entry to an NCHW image,
//
//	stage(x) = MaxPool2×2,stride 2(ReLU(Conv3×3,stride 1,pad 1(x) + b)),
//
// then flattens in (C, H, W) order (torch's x.flatten(1)) and continues as an
// MLP. Odd spatial sizes are floored by the pool, as in torch.
//
// # Layout
//
// Parameters live in *tensor.Dense values owned by Weights; every graph built
// from the same Weights binds the same tensors (see Forward), so an in-place
// optimizer step is seen by the evaluation graph at once. Dense weights are
// stored (in, out) as gorgonia multiplies x·W; conv weights are OIHW. The
// safetensors export transposes dense weights to torch's (out, in) and
// flattens biases, so the file loads into the equivalent torch module.
//
// All CNN stages are built by convStage and all dense layers by dense, so a
// faster implementation of either can be swapped in at one place.
package model
