package fused

import "math"

// BatchNorm constants of torch.nn.BatchNorm2d's defaults, which He et al.
// 2016 and the common CIFAR ResNet code use.
const (
	BNMomentum = 0.1  // running = (1−momentum)·running + momentum·batch
	BNEpsilon  = 1e-5 // added to the variance before the square root
)

// batchNorm is one BatchNorm2d layer over a CNHW activation: c channels of
// m = N·H·W values each.
//
// Training (torch.nn.BatchNorm2d in train mode; Ioffe & Szegedy 2015, Alg. 1):
//
//	μ = Σa/m,  σ² = Σa²/m − μ² (biased),  x̂ = (a − μ)/√(σ² + ε),  z = γ·x̂ + β
//	running_mean ← (1−0.1)·running_mean + 0.1·μ
//	running_var  ← (1−0.1)·running_var  + 0.1·σ²·m/(m−1)   (unbiased, as torch)
//
// Σa and Σa² are accumulated in float64 by convForward while each chunk of
// the convolution output is in cache, and the running statistics are
// updated in float64 and rounded, as torch's CPU kernel does
// (batch_norm_cpu_update_stats_template). Evaluation uses the running
// statistics: z = γ·(a − running_mean)/√(running_var + ε) + β.
//
// The backward pass is the standard one for batch statistics (torch's
// batch_norm_backward): with dβ = Σdz and dγ = Σdz·x̂ per channel,
//
//	da = γ/√(σ² + ε) · (dz − dβ/m − x̂·dγ/m)
type batchNorm[T Float] struct {
	c, m             int
	runMean, runVar  []T       // the ResNet's buffers, shared by all its graphs
	s1, s2           []float64 // Σa, Σa² of the last training forward
	mean, invstd     []T       // μ and 1/√(σ² + ε) of the last training forward
	alpha, betaShift []T       // evaluation: z = a·alpha + betaShift
}

func newBatchNorm[T Float](c, m int, runMean, runVar []T) *batchNorm[T] {
	return &batchNorm[T]{c: c, m: m, runMean: runMean, runVar: runVar,
		s1: make([]float64, c), s2: make([]float64, c), mean: make([]T, c), invstd: make([]T, c),
		alpha: make([]T, c), betaShift: make([]T, c)}
}

// resetSums clears Σa and Σa² before a training forward.
func (b *batchNorm[T]) resetSums() {
	clear(b.s1)
	clear(b.s2)
}

// batchStats turns the sums accumulated by convForward into μ and
// 1/√(σ² + ε) (float64, rounded) and updates the running statistics, once
// per training forward.
func (b *batchNorm[T]) batchStats() {
	m := float64(b.m)
	for f := 0; f < b.c; f++ {
		mean := b.s1[f] / m
		v := max(b.s2[f]/m-mean*mean, 0)
		b.mean[f], b.invstd[f] = T(mean), T(1/math.Sqrt(v+BNEpsilon))
		b.runMean[f] = T(BNMomentum*mean + (1-BNMomentum)*float64(b.runMean[f]))
		b.runVar[f] = T(BNMomentum*v*m/(m-1) + (1-BNMomentum)*float64(b.runVar[f]))
	}
}

// evalCoefficients sets alpha = γ/√(running_var+ε) and betaShift =
// β − running_mean·alpha (float64, rounded) for the evaluation forward.
func (b *batchNorm[T]) evalCoefficients(gamma, beta []T) {
	for f := 0; f < b.c; f++ {
		al := float64(gamma[f]) / math.Sqrt(float64(b.runVar[f])+BNEpsilon)
		b.alpha[f] = T(al)
		b.betaShift[f] = T(float64(beta[f]) - float64(b.runMean[f])*al)
	}
}

// backwardRow turns the gradient dz of channel f's output row into da in
// place, given x̂ of the last training forward and the row's sums Σdz and
// Σdz·x̂ (gateSums), and writes dγ and dβ.
func (b *batchNorm[T]) backwardRow(f int, dz, xhat []T, sd, sdx float64, gamma, dgamma, dbeta []T) {
	m := float64(b.m)
	dgamma[f], dbeta[f] = T(sdx), T(sd)
	bnApply(dz, xhat, T(float64(gamma[f])*float64(b.invstd[f])), T(sd/m), T(sdx/m))
}
