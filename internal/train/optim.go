package train

import (
	"fmt"
	"math"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/optkernel"
)

// Adam's fixed hyper-parameters (Kingma & Ba 2015; PyTorch's defaults).
const (
	adamBeta1 = 0.9
	adamBeta2 = 0.999
	adamEps   = 1e-8
)

// optimizer updates float32 parameters in place and zeroes their gradients
// (with dual values bound, gorgonia accumulates gradients across runs until
// they are zeroed; the trainer's graph overwrites them on every run). It
// implements the update rules of torch.optim.AdamW and torch.optim.SGD:
//
// adam (decoupled weight decay λ, Loshchilov & Hutter 2019), step t from 1:
//
//	w ← w·(1 − η·λ)
//	m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²
//	w ← w − (η/(1−β₁ᵗ)) · m / (√v/√(1−β₂ᵗ) + ε)
//
// sgd (momentum μ, coupled L2 weight decay λ):
//
//	d ← g + λw;  b ← μb + d;  w ← w − η·b
//
// Weight decay applies to every parameter, biases included, as in torch's
// defaults. gorgonia's own AdamW and Momentum+L2 solvers do not update
// correctly in v0.9.18 (gorgonia-notes §5), and its Adam allocates
// temporaries per step; this loop is allocation-free.
type optimizer struct {
	kind string  // adam | sgd
	mom  float64 // SGD momentum
	wd   float64 // weight decay λ
	t    int     // steps taken
	m    [][]float32
	v    [][]float32 // adam only
}

func newOptimizer(r config.Train, sizes []int) (*optimizer, error) {
	o := &optimizer{kind: r.Optimizer, mom: r.Momentum, wd: r.WeightDecay}
	switch r.Optimizer {
	case "adam":
		o.v = make([][]float32, len(sizes))
		for i, n := range sizes {
			o.v[i] = make([]float32, n)
		}
	case "sgd":
	default:
		return nil, fmt.Errorf("train: unknown optimizer %q (use adam or sgd)", r.Optimizer)
	}
	o.m = make([][]float32, len(sizes))
	for i, n := range sizes {
		o.m[i] = make([]float32, n)
	}
	return o, nil
}

// step applies one update with learning rate lr to params given grads,
// zeroes grads, and returns the L2 norm of all weights after the update
// (NaN or +Inf if a weight is not finite).
func (o *optimizer) step(params, grads [][]float32, lr float64) float64 {
	o.t++
	var ss float64
	if o.kind == "adam" {
		t := float64(o.t)
		stepSize := float32(lr / (1 - math.Pow(adamBeta1, t)))
		c2 := float32(math.Sqrt(1 - math.Pow(adamBeta2, t)))
		decay := float32(1 - lr*o.wd) // exactly 1 without weight decay
		for i, w := range params {
			ss += float64(adamKernel(w, grads[i], o.m[i], o.v[i], decay, stepSize, c2))
		}
	} else {
		mu, wd, eta := float32(o.mom), float32(o.wd), float32(lr)
		for i, w := range params {
			ss += float64(sgdKernel(w, grads[i], o.m[i], mu, wd, eta))
		}
	}
	return math.Sqrt(ss)
}

// Adam's constants in float32. (1−β) is formed from the untyped constants,
// so it is exact before rounding: float32(1) − float32(0.999) would be off
// by 1.3e-5 relative.
const (
	b1, a1 float32 = adamBeta1, 1 - adamBeta1
	b2, a2 float32 = adamBeta2, 1 - adamBeta2
	eps32  float32 = adamEps
)

// adamKernel applies one AdamW update to a tensor, zeroes its gradient and
// returns Σ w² of the updated weights. The loop is optkernel.Adam: on amd64
// an SSE2 kernel, four parameters per instruction, bit-identical to the
// scalar loop (optkernel.AdamScalar) it replaced here; it was 28% of an MLP
// step with OpenBLAS, and is about 3× faster.
func adamKernel(w, g, m, v []float32, decay, stepSize, c2 float32) float32 {
	c := optkernel.AdamConsts{B1: b1, A1: a1, B2: b2, A2: a2, Eps: eps32, Decay: decay, StepSize: stepSize, C2: c2}
	return optkernel.Adam(w, g, m, v, &c)
}

// sgdKernel applies one SGD-with-momentum update to a tensor, zeroes its
// gradient and returns Σ w² of the updated weights.
func sgdKernel(w, g, b []float32, mu, wd, eta float32) (ss float32) {
	g, b = g[:len(w)], b[:len(w)]
	for j, gj := range g {
		bj := mu*b[j] + (gj + wd*w[j])
		wj := w[j] - eta*bj
		b[j], w[j] = bj, wj
		ss += wj * wj
		g[j] = 0
	}
	return ss
}

// learningRate returns the learning rate of a step (0-based, over the whole
// run) in epoch (0-based) under recipe r, with total steps in the run:
//
//	constant: η
//	step:     η·γ^⌊epoch/step_every⌋
//	cosine:   η·(1 + cos(π·step/total))/2   (per step, no warm-up, no restarts;
//	          Loshchilov & Hutter 2017, "SGDR")
func learningRate(r config.Train, step, epoch, total int) float64 {
	switch r.Schedule {
	case "step":
		return r.LR * math.Pow(r.StepGamma, float64(epoch/r.StepEvery))
	case "cosine":
		return r.LR * (1 + math.Cos(math.Pi*float64(step)/float64(total))) / 2
	default:
		return r.LR
	}
}
