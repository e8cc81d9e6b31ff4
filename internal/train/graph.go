package train

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/kdcal/kdcal/internal/distill"
	"github.com/kdcal/kdcal/internal/model"
)

// lossGraph is a model's forward graph plus the training loss for a fixed
// batch size. Inputs are bound once (Let) to tensors whose backing arrays
// are refilled for every batch.
type lossGraph struct {
	*model.Graph
	d, c   int
	xt     *tensor.Dense // (bs, input...) inputs
	yt     *tensor.Dense // (bs, C) CE targets × row weight × w_ce; nil without a CE term
	term   distill.Term  // the KD loss's term; nil without one
	ce, kd *G.Node       // the two loss terms (either may be nil)
	loss   *G.Node
	// negLogits is −logits as a terminal node. The tape machine lets a
	// node's last consumer overwrite its buffer in place, so after a run the
	// logits node itself may hold a log-softmax or a scaled copy; a node that
	// nothing consumes is never overwritten.
	negLogits *G.Node
	// negLoss and negKD are −loss and −(KD term), terminal for the same reason.
	negLoss, negKD *G.Node
	vm             G.VM
}

// lossSpec says which terms the loss has.
type lossSpec struct {
	ce bool         // include the cross-entropy term
	kd distill.Loss // the KD loss; nil: no KD term
	in distill.Inputs
}

// newLossGraph builds the loss graph for weights w and batch size bs. With
// grad, the VM also computes the gradients of every parameter: after a run,
// a parameter node's Grad() is that run's gradient (each run overwrites it;
// nothing accumulates across runs).
func newLossGraph(w *model.Weights, bs int, ls lossSpec, grad bool) (*lossGraph, error) {
	if !ls.ce && ls.kd == nil {
		panic("train: loss without terms")
	}
	g := G.NewGraph()
	mg, err := model.Build(g, w, bs)
	if err != nil {
		return nil, err
	}
	lg := &lossGraph{Graph: mg, d: w.Arch.D(), c: w.Arch.Classes}
	dt := w.Dtype
	lg.xt = tensor.New(tensor.Of(dt), tensor.WithShape(mg.X.Shape()...))
	if err := G.Let(mg.X, lg.xt); err != nil {
		return nil, err
	}
	var terms []*G.Node
	if ls.ce {
		y := G.NewMatrix(g, dt, G.WithShape(bs, lg.c), G.WithName("y"))
		lg.yt = tensor.New(tensor.Of(dt), tensor.WithShape(bs, lg.c))
		if err := G.Let(y, lg.yt); err != nil {
			return nil, err
		}
		logp, err := distill.LogSoftmax(mg.Logits)
		if err != nil {
			return nil, fmt.Errorf("train: log-softmax: %w", err)
		}
		if lg.ce, err = distill.WeightedXent(logp, y); err != nil {
			return nil, fmt.Errorf("train: cross-entropy: %w", err)
		}
		terms = append(terms, lg.ce)
	}
	if ls.kd != nil {
		if lg.term, err = ls.kd.Build(g, mg.Logits, ls.in); err != nil {
			return nil, fmt.Errorf("train: %s loss: %w", ls.kd.Name(), err)
		}
		lg.kd = lg.term.Node()
		terms = append(terms, lg.kd)
	}
	if lg.negLogits, err = G.Neg(mg.Logits); err != nil {
		return nil, err
	}
	lg.loss = terms[0]
	if len(terms) == 2 {
		if lg.loss, err = G.Add(terms[0], terms[1]); err != nil {
			return nil, err
		}
	}
	if lg.negLoss, err = G.Neg(lg.loss); err != nil {
		return nil, err
	}
	if lg.kd != nil {
		if lg.negKD, err = G.Neg(lg.kd); err != nil {
			return nil, err
		}
	}
	if grad {
		if _, err := G.Grad(lg.loss, mg.Params...); err != nil {
			return nil, fmt.Errorf("train: gradient graph: %w", err)
		}
	}
	// No BindDualValues: a parameter's Grad() is then the value of its
	// gradient node, which every run overwrites (gorgonia keeps the
	// gradients of inputs live to the end of the program, so no later
	// instruction reuses their buffers). Binding dual values would add each
	// gradient into an accumulator on every run: a pass over all parameters
	// (0.43 ms per step of the 784-512-512-10 MLP with OpenBLAS, pprof).
	lg.vm = G.NewTapeMachine(g)
	return lg, nil
}

// run executes the graph once and returns the loss. Call reset before the
// next run.
func (lg *lossGraph) run() (float64, error) {
	if err := lg.vm.RunAll(); err != nil {
		return 0, err
	}
	return -scalar(lg.negLoss.Value()), nil
}

// kdTerm returns the last run's KD term as the graph computes it (weighted;
// without the loss's Constant).
func (lg *lossGraph) kdTerm() float64 { return -scalar(lg.negKD.Value()) }

func (lg *lossGraph) reset() { lg.vm.Reset() }

// close releases the VM.
func (lg *lossGraph) close() { lg.vm.Close() }

// logits returns the last run's logits as float64 (bs × C).
func (lg *lossGraph) logits(dst []float64) []float64 {
	dst = dst[:0]
	switch d := lg.negLogits.Value().Data().(type) {
	case []float32:
		for _, v := range d {
			dst = append(dst, -float64(v))
		}
	case []float64:
		for _, v := range d {
			dst = append(dst, -v)
		}
	}
	return dst
}

func scalar(v G.Value) float64 {
	switch x := v.Data().(type) {
	case float32:
		return float64(x)
	case float64:
		return x
	}
	panic(fmt.Sprintf("train: loss is %T, not a scalar", v.Data()))
}
