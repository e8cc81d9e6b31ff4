package distill

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/kdcal/kdcal/internal/metrics"
)

// Loss is a knowledge-distillation loss: the term the trainer adds to
// ce_weight·CE(y, s). One file per loss (kd.go, dkd.go, mse.go), each
// registered by one line in registry; all share this constructor-free
// interface so that the trainer and the stages never special-case one
// (mdistiller's distillers/__init__.py is the model).
type Loss interface {
	// Name is the registry name, the value of kd.loss.
	Name() string
	// Targets turns the teacher's logits z (N×C, after the calibrator's
	// logit map for the calibrated arm; see CalibratedLogits) into the
	// rows the loss reads during training (N×C float32, by train-split
	// position): soft probabilities, scaled logits, whatever it needs.
	Targets(z []float64, c int, tau float64) ([]float32, error)
	// CheckTargets reports a row of targets that the loss cannot use
	// (e.g. probabilities that do not sum to 1), naming the row.
	CheckTargets(targets []float32, c int) error
	// Build adds the loss term to g for the student logits s (bs×C) and
	// returns it with the inputs it fills for every batch.
	Build(g *G.ExprGraph, s *G.Node, in Inputs) (Term, error)
	// Reference returns the term (weight 1, mean over the batch) and its
	// gradient with respect to s (N×C) in float64: the value the graph is
	// tested against.
	Reference(s []float64, targets []float32, labels []int, c int, tau float64) (float64, []float64)
	// Formula renders the term for the manifest, e.g. "4²·KL(softmax(t/4) ‖ softmax(s/4))",
	// where teacher names the teacher's logits after calibration ("t", "t/1.83", "hist(t)").
	Formula(tau float64, teacher string) string
	// EffectiveTemperature is the total division of the teacher's logits
	// the student sees: tau·calT for kd and dkd, calT for mse (which has
	// no temperature: temperature scaling rescales its target). calT is
	// the calibrator's softening (1: raw arm, or a calibrator without one).
	EffectiveTemperature(tau, calT float64) float64
}

// Inputs is what Build needs besides the student logits.
type Inputs struct {
	Tau     float64   // KD temperature τ (losses without one ignore it)
	Weight  float64   // kd_weight: the term's weight in the total loss
	Targets []float32 // N_train×C rows made by Targets, by train-split position
	C       int       // classes
}

// Term is a loss term in a graph.
type Term interface {
	// Node is the term (a scalar, weighted, mean over the valid rows).
	Node() *G.Node
	// Fill loads the batch: pos are the m ≤ bs valid rows' train-split
	// positions, labels their labels. Rows m… of the graph are padding and
	// must not contribute.
	Fill(pos, labels []int)
	// Constant is what the graph leaves out of the term of the last Fill
	// (terms in cross-entropy form drop Σ p log p): Node + Constant is the
	// true weighted loss. 0 for terms computed in full.
	Constant(pos []int) float64
}

// Params holds the settings of the losses that have some; all losses get
// the same Params so that New never special-cases one.
type Params struct {
	DKDAlpha, DKDBeta float64 // dkd: weights of TCKD and NCKD
}

type entry struct {
	name string
	make func(Params) Loss
}

// registry lists the losses in the order of config.KDLosses. A new loss
// is one file and one line here.
var registry = []entry{
	{"kd", func(Params) Loss { return Hinton{} }},
	{"dkd", func(p Params) Loss { return DKD{Alpha: p.DKDAlpha, Beta: p.DKDBeta} }},
	{"mse", func(Params) Loss { return MSE{} }},
}

// Register adds a loss to the registry (for tests and out-of-tree losses);
// it panics on a duplicate name.
func Register(name string, make func(Params) Loss) {
	if slices.ContainsFunc(registry, func(e entry) bool { return e.name == name }) {
		panic("distill: loss " + name + " registered twice")
	}
	registry = append(registry, entry{name, make})
}

// Names returns the registered loss names.
func Names() []string {
	out := make([]string, len(registry))
	for i, e := range registry {
		out[i] = e.name
	}
	return out
}

// New returns the named loss.
func New(name string, p Params) (Loss, error) {
	for _, e := range registry {
		if e.name == name {
			return e.make(p), nil
		}
	}
	return nil, fmt.Errorf("unknown KD loss %q: use one of %s", name, strings.Join(Names(), ", "))
}

// CalibratedLogits returns the teacher's logits after the calibrator cal
// (nil for the raw arm: z itself). A calibrator that maps logits gives its
// mapped logits (z/T for temp); one that only gives probabilities
// (hist, isotonic) gives log p_cal, floored at log 1e-12 (exact zeros would
// give −Inf logits), so that softmax of the result is p_cal.
func CalibratedLogits(z []float64, c int, cal any) ([]float64, error) {
	switch m := cal.(type) {
	case nil:
		return z, nil
	case LogitMapper:
		return m.MapLogits(z, c), nil
	case ProbCalibrator:
		p := m.Probs(z, c)
		out := make([]float64, len(p))
		for i, v := range p {
			out[i] = math.Log(math.Max(v, 1e-12))
		}
		return out, nil
	}
	return nil, fmt.Errorf("distill: calibrator %T neither maps logits nor gives probabilities", cal)
}

// softTargets returns softmax(z/τ) as float32, the soft targets of kd and dkd.
func softTargets(z []float64, c int, tau float64) ([]float32, error) {
	if !(tau > 0) {
		return nil, fmt.Errorf("distill: KD temperature %v must be > 0", tau)
	}
	scaled := make([]float64, len(z))
	for i, v := range z {
		scaled[i] = v / tau
	}
	p := metrics.Softmax(nil, scaled, c)
	out := make([]float32, len(p))
	for i, v := range p {
		if math.IsNaN(v) {
			return nil, fmt.Errorf("distill: soft targets contain NaN (non-finite teacher logits?)")
		}
		out[i] = float32(v)
	}
	return out, nil
}

// checkProbs reports the first row of p that is not a probability vector.
func checkProbs(p []float32, c int) error {
	for i := 0; i < len(p)/c; i++ {
		var s float64
		for _, v := range p[i*c : (i+1)*c] {
			if !(v >= 0) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("KD target row %d has the value %g; targets must be probabilities", i, v)
			}
			s += float64(v)
		}
		if math.Abs(s-1) > 1e-3 {
			return fmt.Errorf("KD target row %d sums to %g, not 1; targets must be probabilities (softmax of the teacher's logits)", i, s)
		}
	}
	return nil
}

// checkFinite reports the first non-finite target.
func checkFinite(t []float32, c int) error {
	for i, v := range t {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("KD target row %d has the value %g; teacher logits must be finite", i/c, v)
		}
	}
	return nil
}

// input makes a bs×C (or bs×1) input node of s's dtype bound to a tensor
// the term refills for every batch.
func input(g *G.ExprGraph, s *G.Node, cols int, name string) (*G.Node, *tensor.Dense, error) {
	dt, bs := s.Dtype(), s.Shape()[0]
	n := G.NewMatrix(g, dt, G.WithShape(bs, cols), G.WithName(name))
	t := tensor.New(tensor.Of(dt), tensor.WithShape(bs, cols))
	if err := G.Let(n, t); err != nil {
		return nil, nil, err
	}
	return n, t, nil
}

// fill64 lets f write a float32 or float64 tensor in float64, rounding once.
func fill64(t *tensor.Dense, f func(dst []float64)) {
	switch d := t.Data().(type) {
	case []float64:
		f(d)
	case []float32:
		tmp := make([]float64, len(d))
		f(tmp)
		for i, v := range tmp {
			d[i] = float32(v)
		}
	}
}

// constant returns x as a constant of s's dtype.
func constant(s *G.Node, x float64) *G.Node {
	if s.Dtype() == tensor.Float32 {
		return G.NewConstant(float32(x))
	}
	return G.NewConstant(x)
}

// LogSoftmax returns the row-wise log softmax of x (N, C) computed with the
// max shift, z = x − max_k x_k, log softmax(x) = z − log Σ_k exp z_k, which
// neither overflows nor underflows to −Inf for the largest entry. (gorgonia's
// LogSoftMax starts every row's max search at the tensor's first element,
// which gives +Inf for rows far below it.)
func LogSoftmax(x *G.Node) (*G.Node, error) {
	z, lse, err := shiftedLSE(x)
	if err != nil {
		return nil, err
	}
	return G.BroadcastSub(z, lse, nil, []byte{1})
}

// shiftedLSE returns z = x − max_k x_k (N×C) and log Σ_k exp z_k (N×1).
func shiftedLSE(x *G.Node) (z, lse *G.Node, err error) {
	n := x.Shape()[0]
	mx, err := G.Max(x, 1)
	if err != nil {
		return nil, nil, err
	}
	if mx, err = G.Reshape(mx, tensor.Shape{n, 1}); err != nil {
		return nil, nil, err
	}
	if z, err = G.BroadcastSub(x, mx, nil, []byte{1}); err != nil {
		return nil, nil, err
	}
	e, err := G.Exp(z)
	if err != nil {
		return nil, nil, err
	}
	s, err := G.Sum(e, 1)
	if err != nil {
		return nil, nil, err
	}
	if lse, err = G.Log(s); err != nil {
		return nil, nil, err
	}
	if lse, err = G.Reshape(lse, tensor.Shape{n, 1}); err != nil {
		return nil, nil, err
	}
	return z, lse, nil
}

// WeightedXent returns −Σ_ik w_ik·logp_ik: the batch cross-entropy when w
// holds each valid row's target distribution times its row weight.
func WeightedXent(logp, w *G.Node) (*G.Node, error) {
	p, err := G.HadamardProd(logp, w)
	if err != nil {
		return nil, err
	}
	s, err := G.Sum(p)
	if err != nil {
		return nil, err
	}
	return G.Neg(s)
}

// fmtG formats a number as strconv 'g' -1 (shortest exact form).
func fmtG(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
