// Package optkernel holds the elementwise update loops of kdcal's
// optimizers (internal/train), written so that the common amd64 case runs
// four floats per instruction.
//
// Why: after the fused layers (internal/fused: Dense, Stage), the
// AdamW update was the second-largest cost of an MLP training step with
// OpenBLAS (28% of the step for 670k parameters, about 2.6 ns per
// parameter): Go does not vectorise loops, and the update needs a square
// root and a division per parameter, which the scalar loop issues one at a
// time. The amd64 kernel (adam_amd64.s) uses SSE2, which every amd64 CPU has,
// so no CPU detection is needed, and performs the same IEEE operations in
// the same order as the scalar Go loop (AdamScalar) without fused
// multiply-adds: the updated weights and moments are bit-identical on every
// amd64 machine and equal to the portable loop used elsewhere (and with
// the conventional -tags purego, which drops the assembly).
//
// No library covers this: gonum's vectorised float32 kernels (axpy, dot,
// scal) are internal to gonum, and gorgonia.org/vecf32's assembly (add,
// mul, div, sqrt) needs a build tag and would take about eight passes over
// memory instead of one.
package optkernel
