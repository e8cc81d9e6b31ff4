package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"gorgonia.org/tensor"

	"github.com/kdcal/kdcal/internal/spec"
)

// Weights holds the parameter tensors of one architecture, in Arch.Params
// order. Graphs built from it bind these tensors (they do not copy them).
type Weights struct {
	Arch   Arch
	Dtype  tensor.Dtype // tensor.Float32 for training; Float64 for gradient checks
	Params []Param
	T      []*tensor.Dense
	// Buffers is the architecture's non-learnable state (spec.Arch.Buffers,
	// e.g. BatchNorm running statistics), which checkpoints and model files
	// carry: B[i] holds buffer i's values, or Counters[i] its count for a
	// Counter (an int64 scalar); the other is nil. Empty for mlp and cnn.
	Buffers  []Param
	B        []*tensor.Dense
	Counters []*int64

	// state is a family's own state bound to these tensors, for families
	// whose graphs need more than parameter nodes (resnet: the BatchNorm
	// statistics its fused ops update); nil for mlp and cnn.
	state familyState
}

// familyState is what a family with state of its own (registered in
// stateFamilies by its file's init) does in place of the generic code.
type familyState interface {
	// init draws the initial weights with the named scheme (spec.InitHe,
	// spec.InitTorch) and resets the buffers.
	init(rng *rand.Rand, scheme string) error
	// build sets gr.X, gr.Logits and gr.Params (its own nodes, bound to
	// the Weights' tensors) in the given mode.
	build(gr *Graph, mode Mode) error
}

// stateFamilies maps a family to the constructor of its state, which
// allocates (or aliases) w.T, w.B and w.Counters.
var stateFamilies = map[string]func(w *Weights) familyState{}

// NewWeights allocates zeroed parameter tensors of dtype dt (Float32 or Float64).
func NewWeights(a Arch, dt tensor.Dtype) *Weights {
	if dt != tensor.Float32 && dt != tensor.Float64 {
		panic("model: weights must be Float32 or Float64")
	}
	w := &Weights{Arch: a, Dtype: dt, Params: a.Params(), Buffers: a.desc.Buffers()}
	if f, ok := stateFamilies[a.Family]; ok {
		w.state = f(w)
		return w
	}
	for _, p := range w.Params {
		w.T = append(w.T, tensor.New(tensor.Of(dt), tensor.WithShape(p.Shape...)))
	}
	for _, p := range w.Buffers {
		if p.Kind == spec.Counter {
			w.B, w.Counters = append(w.B, nil), append(w.Counters, new(int64))
			continue
		}
		w.B, w.Counters = append(w.B, tensor.New(tensor.Of(dt), tensor.WithShape(p.Shape...))), append(w.Counters, nil)
	}
	return w
}

// Init draws the weights as InitWith(rng, spec.InitHe) does.
func (w *Weights) Init(rng *rand.Rand) {
	if err := w.InitWith(rng, spec.InitHe); err != nil {
		panic(err) // unreachable: he is known
	}
}

// InitWith draws every tensor, in Params order and row-major within a
// tensor, from rng with the named scheme (teacher.train.init,
// student.train.init):
//
//   - spec.InitHe: layers followed by a ReLU He (Kaiming) uniform,
//     U(−√(6/fan_in), √(6/fan_in)) (He et al. 2015, "Delving deep into
//     rectifiers"); the output layer Glorot uniform,
//     U(−√(6/(fan_in+fan_out)), +) (Glorot & Bengio 2010); biases zero.
//   - spec.InitTorch: torch 1.13's nn.Linear / nn.Conv2d
//     reset_parameters, weights and biases U(−1/√fan_in, 1/√fan_in)
//     (kaiming_uniform_(a=√5) has bound √(6/((1+a²)·fan_in)) = 1/√fan_in;
//     the bias bound is 1/√fan_in), fan_in = in_features or
//     in_channels·kh·kw.
//
// A Vector parameter (BatchNorm scale and shift) is set to torch's 1 and 0
// in both schemes, as the parameter's name says (".weight" 1, else 0).
// Values are drawn in float64 and rounded, so the same rng state gives
// the same weights on every machine. An unknown scheme is an error. A
// family with its own state initialises as it documents (resnet:
// fused.InitHe or fused.InitTorch).
func (w *Weights) InitWith(rng *rand.Rand, scheme string) error {
	if scheme != spec.InitHe && scheme != spec.InitTorch {
		return fmt.Errorf("model: unknown init %q (use %s or %s)", scheme, spec.InitHe, spec.InitTorch)
	}
	if w.state != nil {
		return w.state.init(rng, scheme)
	}
	for i, p := range w.Params {
		if p.Kind == spec.Vector {
			fill(w.T[i], vectorInit(p))
			continue
		}
		bound := initBound(p, scheme)
		switch d := w.T[i].Data().(type) {
		case []float32:
			for j := range d {
				d[j] = float32(bound * (2*rng.Float64() - 1))
			}
		case []float64:
			for j := range d {
				d[j] = bound * (2*rng.Float64() - 1)
			}
		}
	}
	return nil
}

// initBound is the half-width of the uniform distribution parameter p is
// drawn from under scheme (0: the parameter is zero).
func initBound(p Param, scheme string) float64 {
	bias := p.Kind == ConvBias || p.Kind == DenseBias
	switch {
	case scheme == spec.InitTorch:
		return 1 / math.Sqrt(float64(p.FanIn))
	case bias:
		return 0
	case p.Output:
		return math.Sqrt(6 / float64(p.FanIn+p.FanOut))
	}
	return math.Sqrt(6 / float64(p.FanIn))
}

// vectorInit is torch's initial value of a BatchNorm vector: 1 for its
// weight (γ, and the running variance), 0 otherwise (β, running mean).
func vectorInit(p Param) float64 {
	if strings.HasSuffix(p.Name, ".weight") || strings.HasSuffix(p.Name, "running_var") {
		return 1
	}
	return 0
}

func fill(t *tensor.Dense, v float64) {
	switch d := t.Data().(type) {
	case []float32:
		for j := range d {
			d[j] = float32(v)
		}
	case []float64:
		for j := range d {
			d[j] = v
		}
	}
}

// Float32s returns the backing array of parameter i (Float32 weights only).
func (w *Weights) Float32s(i int) []float32 { return w.T[i].Data().([]float32) }

// CopyFrom copies the values of o into w's tensors in place (so graphs bound
// to w see them). The architectures must match.
func (w *Weights) CopyFrom(o *Weights) error {
	if len(o.T) != len(w.T) {
		return fmt.Errorf("model: cannot copy %d parameter tensors into %d", len(o.T), len(w.T))
	}
	for i := range w.T {
		if !w.T[i].Shape().Eq(o.T[i].Shape()) || w.T[i].Dtype() != o.T[i].Dtype() {
			return fmt.Errorf("model: parameter %s is %v %v, not %v %v", w.Params[i].Name,
				o.T[i].Dtype(), o.T[i].Shape(), w.T[i].Dtype(), w.T[i].Shape())
		}
		if err := tensor.Copy(w.T[i], o.T[i]); err != nil {
			return fmt.Errorf("model: copy %s: %w", w.Params[i].Name, err)
		}
	}
	if len(o.Buffers) != len(w.Buffers) {
		return fmt.Errorf("model: cannot copy %d buffers into %d", len(o.Buffers), len(w.Buffers))
	}
	for i := range w.Buffers {
		if w.Counters[i] != nil {
			*w.Counters[i] = *o.Counters[i]
			continue
		}
		if err := tensor.Copy(w.B[i], o.B[i]); err != nil {
			return fmt.Errorf("model: copy %s: %w", w.Buffers[i].Name, err)
		}
	}
	return nil
}

// Flat returns all parameters as one float64 vector in Params order.
func (w *Weights) Flat() []float64 {
	var out []float64
	for _, t := range w.T {
		switch d := t.Data().(type) {
		case []float32:
			for _, v := range d {
				out = append(out, float64(v))
			}
		case []float64:
			out = append(out, d...)
		}
	}
	return out
}

// SetFlat sets all parameters from a vector laid out as Flat returns it.
func (w *Weights) SetFlat(x []float64) {
	k := 0
	for _, t := range w.T {
		switch d := t.Data().(type) {
		case []float32:
			for j := range d {
				d[j] = float32(x[k])
				k++
			}
		case []float64:
			k += copy(d, x[k:])
		}
	}
	if k != len(x) {
		panic("model: SetFlat length mismatch")
	}
}
