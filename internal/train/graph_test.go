package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/distill"
	"github.com/kdcal/kdcal/internal/metrics"
	"github.com/kdcal/kdcal/internal/model"
)

// TestLogSoftmaxStable feeds rows that break gorgonia's own LogSoftMax
// (gorgonia-notes §10: the second row becomes +Inf in float32) and compares
// with the float64 closed form z − log Σ exp z.
func TestLogSoftmaxStable(t *testing.T) {
	rows := []float32{100, 0, 0, -100, -101, -102, 1e4, -1e4, 0}
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(3, 3), G.WithValue(tensor.New(tensor.WithShape(3, 3), tensor.WithBacking(rows))))
	ls, err := distill.LogSoftmax(x)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	got := ls.Value().Data().([]float32)
	for i := 0; i < 3; i++ {
		row := make([]float64, 3)
		for k := range row {
			row[k] = float64(rows[i*3+k])
		}
		lse := metrics.LogSumExp(row)
		for k := range row {
			want := row[k] - lse
			if math.IsInf(float64(got[i*3+k]), 0) || math.Abs(float64(got[i*3+k])-want) > 1e-5*math.Max(1, math.Abs(want)) {
				t.Errorf("row %d class %d: log softmax %v, want %v", i, k, got[i*3+k], want)
			}
		}
	}
}

// tinyProblem is a float64 model and a batch of 3 valid examples in a
// graph of batch size 5 (2 padded rows), with KD targets for 8 train rows.
type tinyProblem struct {
	w      *model.Weights
	b      batch
	probs  []float32 // 8 × C teacher probabilities
	logits []float64 // 8 × C teacher logits (probs = softmax(logits))
}

func newTinyProblem(t *testing.T, family string) tinyProblem {
	t.Helper()
	spec, c, h, wd := config.ModelSpec{"hidden": []int{5}}, 1, 2, 3 // MLP on 6 inputs
	if family == config.FamilyCNN {
		spec, c, h, wd = config.ModelSpec{"conv": []int{2}, "hidden": []int{3}}, 2, 4, 4
	}
	const classes = 4
	a, err := model.NewArch(family, spec, c, h, wd, classes)
	if err != nil {
		t.Fatal(err)
	}
	w := model.NewWeights(a, tensor.Float64)
	w.Init(rand.New(rand.NewPCG(11, 12)))
	rng := rand.New(rand.NewPCG(13, 14))
	for i, p := range w.Params { // non-zero biases: their gradients are checked too
		if p.Kind == model.ConvBias || p.Kind == model.DenseBias {
			d := w.T[i].Data().([]float64)
			for j := range d {
				d[j] = 0.1 * rng.NormFloat64()
			}
		}
	}
	b := batch{x: make([]float32, 3*a.D()), y: []int{2, 0, 3}, pos: []int{5, 1, 6}}
	for i := range b.x {
		b.x[i] = float32(rng.NormFloat64())
	}
	probs := make([]float32, 8*classes)
	var logits []float64
	for i := 0; i < 8; i++ {
		z := make([]float64, classes)
		for k := range z {
			z[k] = 2 * rng.NormFloat64()
		}
		logits = append(logits, z...)
		for k, p := range metrics.Softmax(nil, z, classes) {
			probs[i*classes+k] = float32(p)
		}
	}
	return tinyProblem{w: w, b: b, probs: probs, logits: logits}
}

// lossCase is one loss configuration of the gradient tests.
type lossCase struct {
	name    string
	spec    lossSpec
	wt      weighting
	ceW     float64
	targets []float32 // the KD loss's targets of the 8 train rows
}

// lossCases are CE with and without label smoothing, and every registered
// KD loss with and without the CE term.
func lossCases(t *testing.T, p tinyProblem) []lossCase {
	const tau, kdW, ceW = 2.0, 0.7, 0.3
	cases := []lossCase{
		{name: "ce", spec: lossSpec{ce: true}, wt: weighting{ce: 1}},
		{name: "ce-smoothed", spec: lossSpec{ce: true}, wt: weighting{ce: 1, eps: 0.1}},
	}
	c := p.w.Arch.Classes
	for _, name := range distill.Names() {
		l, err := distill.New(name, distill.Params{DKDAlpha: 1, DKDBeta: 8})
		if err != nil {
			t.Fatal(err)
		}
		targets, err := l.Targets(p.logits, c, tau)
		if err != nil {
			t.Fatal(err)
		}
		in := distill.Inputs{Tau: tau, Weight: kdW, Targets: targets, C: c}
		cases = append(cases,
			lossCase{name + "+ce", lossSpec{ce: true, kd: l, in: in}, weighting{ce: ceW}, ceW, targets},
			lossCase{name + "-only", lossSpec{kd: l, in: in}, weighting{}, 0, targets})
	}
	return cases
}

// TestLossValue checks the graph's loss against references computed from
// the graph's own logits: the CE with label smoothing by hand, and each KD
// loss with its own float64 Reference (for kd, distill.KDLoss, an
// independent pure-Go implementation), after adding back the loss's
// Constant. Padded rows must not contribute. It runs the graph with and
// without the backward pass, whose in-place buffer reuse must not corrupt
// the logits, loss or KD term read after the run. Tolerance 1e-12 (float64).
func TestLossValue(t *testing.T) {
	for _, family := range config.Families {
		p := newTinyProblem(t, family)
		c := p.w.Arch.Classes
		for _, lc := range lossCases(t, p) {
			for _, grad := range []bool{false, true} {
				lg, err := newLossGraph(p.w, 5, lc.spec, grad)
				if err != nil {
					t.Fatal(err)
				}
				lg.fill(p.b, &lc.wt)
				got, err := lg.run()
				if err != nil {
					t.Fatal(err)
				}
				logits := lg.logits(nil)[:3*c] // valid rows
				var kdTerm float64
				if lc.spec.kd != nil {
					kdTerm = lg.kdTerm()
					k := lg.term.Constant(p.b.pos)
					got += k
					kdTerm += k
				}
				lg.reset()
				lg.close()
				var want, wantKD float64
				for i, y := range p.b.y {
					row := logits[i*c : (i+1)*c]
					lse := metrics.LogSumExp(row)
					for k := range row {
						q := lc.wt.eps / float64(c)
						if k == y {
							q += 1 - lc.wt.eps
						}
						want += lc.wt.ce * q * (lse - row[k]) / 3
					}
				}
				if lc.spec.kd != nil {
					tb := make([]float32, 0, 3*c) // the batch's teacher rows, by position
					for _, pos := range p.b.pos {
						tb = append(tb, lc.targets[pos*c:(pos+1)*c]...)
					}
					ref, _ := lc.spec.kd.Reference(logits, tb, p.b.y, c, lc.spec.in.Tau)
					wantKD = lc.spec.in.Weight * ref
					want += wantKD
				}
				if math.Abs(got-want) > 1e-12 || math.Abs(kdTerm-wantKD) > 1e-12 {
					t.Errorf("%s %s grad=%v: loss %.15g, reference %.15g; KD term %.15g, reference %.15g",
						family, lc.name, grad, got, want, kdTerm, wantKD)
				}
			}
		}
	}
}

// TestGradientFiniteDifference compares the gradient gorgonia computes for
// every parameter with central finite differences of the loss
// (gonum/diff/fd, step 1e-6) on tiny float64 MLP and CNN models, for CE
// with and without label smoothing and for the KD loss, with 2 of 5 batch
// rows padded. Tolerance 1e-6 absolute + relative: central differences
// have O(h²) truncation and O(ε/h) rounding error, about 1e-9 here.
func TestGradientFiniteDifference(t *testing.T) {
	for _, family := range config.Families {
		p := newTinyProblem(t, family)
		for _, lc := range lossCases(t, p) {
			t.Run(family+"/"+lc.name, func(t *testing.T) {
				lg, err := newLossGraph(p.w, 5, lc.spec, true)
				if err != nil {
					t.Fatal(err)
				}
				defer lg.close()
				lg.fill(p.b, &lc.wt)
				if _, err := lg.run(); err != nil {
					t.Fatal(err)
				}
				var analytic []float64
				for _, n := range lg.Params {
					g, err := n.Grad()
					if err != nil {
						t.Fatal(err)
					}
					analytic = append(analytic, g.Data().([]float64)...)
				}
				lg.reset()

				fwd, err := newLossGraph(p.w, 5, lc.spec, false)
				if err != nil {
					t.Fatal(err)
				}
				defer fwd.close()
				fwd.fill(p.b, &lc.wt)
				x0 := p.w.Flat()
				defer p.w.SetFlat(x0)
				f := func(x []float64) float64 {
					p.w.SetFlat(x)
					v, err := fwd.run()
					fwd.reset()
					if err != nil {
						t.Fatal(err)
					}
					return v
				}
				numeric := fd.Gradient(nil, f, x0, &fd.Settings{Formula: fd.Central, Step: 1e-6})
				if len(numeric) != len(analytic) {
					t.Fatalf("%d analytic, %d numeric gradient entries", len(analytic), len(numeric))
				}
				for i := range numeric {
					if d := math.Abs(numeric[i] - analytic[i]); d > 1e-6*(1+math.Abs(numeric[i])) {
						t.Errorf("parameter %d: gradient %.9g, finite differences %.9g", i, analytic[i], numeric[i])
					}
				}
			})
		}
	}
}

// TestFillUsesPositions checks that CE targets follow the labels and that
// padded rows are zero. (That each KD loss reads its targets by the
// examples' train-split positions is distilltest's "positions" check.)
func TestFillUsesPositions(t *testing.T) {
	p := newTinyProblem(t, config.FamilyMLP)
	lg, err := newLossGraph(p.w, 5, lossSpec{ce: true}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer lg.close()
	wt := &weighting{ce: 0.5, eps: 0.2}
	lg.fill(p.b, wt)
	c := 4
	yt := lg.yt.Data().([]float64)
	for i := 0; i < 5; i++ {
		for k := 0; k < c; k++ {
			var wantY float64
			if i < 3 {
				wantY = 0.5 * 0.2 / 4 / 3
				if k == p.b.y[i] {
					wantY += 0.5 * 0.8 / 3
				}
			}
			if math.Abs(yt[i*c+k]-wantY) > 1e-12 {
				t.Errorf("row %d class %d: CE target %v (want %v)", i, k, yt[i*c+k], wantY)
			}
		}
	}
}
