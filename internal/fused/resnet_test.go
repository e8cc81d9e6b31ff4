package fused

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestResNetSpecValidate(t *testing.T) {
	good := ResNetSpec{Depth: 20, Width: 16, C: 3, H: 32, W: 32, Classes: 10}
	cases := []struct {
		name string
		edit func(*ResNetSpec)
		want string // substring of the error; "" for none
	}{
		{"ok", func(*ResNetSpec) {}, ""},
		{"mnist", func(s *ResNetSpec) { s.C, s.H, s.W = 1, 28, 28 }, ""},
		{"tiny plane", func(s *ResNetSpec) { s.H, s.W = 1, 1 }, ""},
		{"depth 6n+2", func(s *ResNetSpec) { s.Depth = 18 }, "depth 18 is not 6n+2"},
		{"depth too small", func(s *ResNetSpec) { s.Depth = 2 }, "depth 2 is not 6n+2"},
		{"odd width", func(s *ResNetSpec) { s.Width = 15 }, "width 15 must be even"},
		{"zero width", func(s *ResNetSpec) { s.Width = 0 }, "width 0 must be even and ≥ 2"},
		{"no channels", func(s *ResNetSpec) { s.C = 0 }, "input 0×32×32"},
		{"one class", func(s *ResNetSpec) { s.Classes = 1 }, "at least 2 classes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := good
			c.edit(&s)
			_, err := NewResNet(s, tensor.Float32)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
	if _, err := NewResNet(good, tensor.Int); err == nil {
		t.Error("int dtype accepted")
	}
}

// TestStateNames pins the state_dict keys, order and shapes of resnet8-w4
// on 3×32×32 (written out from torch's print(list(model.state_dict())) of
// testdata/torch_resnet.py's module; the torch test loads them strictly).
func TestStateNames(t *testing.T) {
	r, err := NewResNet(ResNetSpec{Depth: 8, Width: 4, C: 3, H: 32, W: 32, Classes: 10}, tensor.Float32)
	if err != nil {
		t.Fatal(err)
	}
	bn := func(p string, c int) []string {
		return []string{
			fmt.Sprintf("%s.weight %d", p, c), fmt.Sprintf("%s.bias %d", p, c),
			fmt.Sprintf("%s.running_mean %d", p, c), fmt.Sprintf("%s.running_var %d", p, c),
			p + ".num_batches_tracked"}
	}
	var want []string
	want = append(want, "conv1.weight 4 3 3 3")
	want = append(want, bn("bn1", 4)...)
	for _, l := range []struct {
		p       string
		cin, co int
	}{{"layer1.0", 4, 4}, {"layer2.0", 4, 8}, {"layer3.0", 8, 16}} {
		want = append(want, fmt.Sprintf("%s.conv1.weight %d %d 3 3", l.p, l.co, l.cin))
		want = append(want, bn(l.p+".bn1", l.co)...)
		want = append(want, fmt.Sprintf("%s.conv2.weight %d %d 3 3", l.p, l.co, l.co))
		want = append(want, bn(l.p+".bn2", l.co)...)
	}
	want = append(want, "fc.weight 10 16", "fc.bias 10")
	var got []string
	for _, e := range r.State {
		got = append(got, strings.TrimSpace(e.Name+" "+strings.Trim(fmt.Sprint(e.Shape), "[]")))
		if (e.T == nil) != (e.Kind == BNBatchesTracked) {
			t.Errorf("%s: tensor %v for kind %v", e.Name, e.T != nil, e.Kind)
		}
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("state names (-want +got):\n%s", d)
	}
	if len(r.Params) != 3+3*6+2 || len(r.Buffers) != 2*7 {
		t.Errorf("%d params, %d buffers; want 23, 14", len(r.Params), len(r.Buffers))
	}
	if e, ok := r.Lookup("layer2.0.bn1.running_var"); !ok || e.Kind != BNRunningVar {
		t.Errorf("Lookup(layer2.0.bn1.running_var) = %v, %v", e, ok)
	}
}

// TestNumParamsFormula checks NumParams against the closed form for the
// CIFAR ResNet (option A has no shortcut parameters): the stem
// 9·C·w + 2w, each stage s with width w_s = w·2^s and n blocks
// 9·w_s·(w_{s−1} + w_s) + 4·w_s for its first block and
// (n−1)·(18·w_s² + 4·w_s) for the others, and the classifier 4w·K + K.
func TestNumParamsFormula(t *testing.T) {
	for _, s := range paramSpecs {
		n, w := s.BlocksPerStage(), s.Width
		want := 9*s.C*w + 2*w
		prev := w
		for st := range 3 {
			ws := w << st
			want += 9*ws*(prev+ws) + 4*ws + (n-1)*(18*ws*ws+4*ws)
			prev = ws
		}
		want += 4*w*s.Classes + s.Classes
		r, err := NewResNet(s, tensor.Float32)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.NumParams(); got != want {
			t.Errorf("%v: NumParams %d, formula %d", s, got, want)
		}
	}
	// resnet20/32/44/56 at width 16 on CIFAR-10 are the 0.27M/0.46M/0.66M/0.85M
	// of He et al. 2016, Table 6.
}

// TestInit checks the two initialisations' distributions (moments of many
// draws against the stated ones) and that Init resets the BatchNorm state
// and is a pure function of the rng state.
func TestInit(t *testing.T) {
	s := ResNetSpec{Depth: 20, Width: 16, C: 3, H: 32, W: 32, Classes: 10}
	for _, init := range []Init{InitHe, InitTorch} {
		t.Run(init.String(), func(t *testing.T) {
			r := randomResNet(t, s, tensor.Float32, 1) // non-trivial BN state to reset
			r.BatchesTracked = 3
			r.Init(rand.New(rand.NewPCG(5, 6)), init)
			for _, e := range r.State {
				v := []float64(nil)
				if e.T != nil {
					v = toF64(t, e.T)
				}
				switch e.Kind {
				case BNWeight, BNRunningVar:
					checkConst(t, e.Name, v, 1)
				case BNBias, BNRunningMean:
					checkConst(t, e.Name, v, 0)
				case FCBias:
					if init == InitHe {
						checkConst(t, e.Name, v, 0)
					} else {
						checkUniform(t, e.Name, v, 1/math.Sqrt(float64(e.FanIn)))
					}
				case ConvWeight, FCWeight:
					if init == InitHe {
						checkNormal(t, e.Name, v, math.Sqrt(2/float64(e.FanIn)))
					} else {
						checkUniform(t, e.Name, v, 1/math.Sqrt(float64(e.FanIn)))
					}
				}
			}
			if r.BatchesTracked != 0 {
				t.Errorf("BatchesTracked %d after Init, want 0", r.BatchesTracked)
			}
			o := randomResNet(t, s, tensor.Float32, 2)
			o.Init(rand.New(rand.NewPCG(5, 6)), init)
			for i := range r.State {
				if e := r.State[i]; e.T != nil && !slices.Equal(e.T.Float32s(), o.State[i].T.Float32s()) {
					t.Fatalf("%s differs between two Inits from the same rng state", e.Name)
				}
			}
		})
	}
}

func checkConst(t *testing.T, name string, v []float64, c float64) {
	t.Helper()
	for _, x := range v {
		if x != c {
			t.Errorf("%s: %v, want all %v", name, x, c)
			return
		}
	}
}

// checkNormal checks the mean and standard deviation of draws from
// N(0, std²) to within 5 standard errors (std/√n and std/√(2n)), plus 1%
// of std for the few small tensors' rounding.
func checkNormal(t *testing.T, name string, v []float64, std float64) {
	t.Helper()
	n := float64(len(v))
	var m, ss float64
	for _, x := range v {
		m += x
	}
	m /= n
	for _, x := range v {
		ss += (x - m) * (x - m)
	}
	sd := math.Sqrt(ss / n)
	if math.Abs(m) > 5*std/math.Sqrt(n) || math.Abs(sd-std) > 5*std/math.Sqrt(2*n)+0.01*std {
		t.Errorf("%s: mean %.4g, std %.4g of %d draws; want N(0, %.4g²)", name, m, sd, len(v), std)
	}
}

// checkUniform checks that draws from U(−b, b) lie inside the bounds, that
// the largest |x| is near b (within 10·b/n) and that the standard deviation
// is b/√3 within 5 standard errors.
func checkUniform(t *testing.T, name string, v []float64, b float64) {
	t.Helper()
	n := float64(len(v))
	var ss, mx float64
	for _, x := range v {
		ss += x * x
		mx = max(mx, math.Abs(x))
	}
	sd := math.Sqrt(ss / n)
	want := b / math.Sqrt(3)
	if mx > b || mx < b*(1-10/n) || math.Abs(sd-want) > 5*0.9*want/math.Sqrt(n) {
		t.Errorf("%s: max |x| %.4g, std %.4g of %d draws; want U(±%.4g), std %.4g", name, mx, sd, len(v), b, want)
	}
}

// bits returns the running statistics' bit patterns.
func statBits(r *ResNet) [][]float32 {
	var out [][]float32
	for _, b := range r.Buffers {
		out = append(out, slices.Clone(b.T.Float32s()))
	}
	return out
}

// TestRunningStatistics pins when and how the running statistics change:
// once per run of a Train graph (BatchesTracked counts the runs), never in
// an Eval graph, bit-identically for the same inputs across graphs and
// ResNet instances, and to torch's update for the stem (computed here from
// the unfused reference's convolution output: running ← 0.9·running +
// 0.1·batch, variance unbiased).
func TestRunningStatistics(t *testing.T) {
	s := ResNetSpec{Depth: 14, Width: 4, C: 3, H: 12, W: 12, Classes: 5}
	const bs = 4
	rng := rand.New(rand.NewPCG(9, 9))
	x := normal(rng, bs*s.C*s.H*s.W)
	rr := normal(rng, bs*s.Classes)

	run := func(r *ResNet, mode Mode, times int) {
		p := newProbe(t, r, bs, mode, mode == Train, false)
		p.set(x, rr)
		for range times {
			p.run(t)
		}
	}
	a := randomResNet(t, s, tensor.Float32, 3)
	before := statBits(a)
	run(a, Eval, 2)
	if d := cmp.Diff(before, statBits(a)); d != "" || a.BatchesTracked != 0 {
		t.Fatalf("an Eval graph changed the running statistics (BatchesTracked %d):\n%s", a.BatchesTracked, d)
	}
	run(a, Train, 1)
	once := statBits(a)
	if a.BatchesTracked != 1 {
		t.Errorf("BatchesTracked %d after one training run, want 1", a.BatchesTracked)
	}
	run(a, Train, 2)
	if a.BatchesTracked != 3 {
		t.Errorf("BatchesTracked %d after three training runs, want 3", a.BatchesTracked)
	}

	// The same state and inputs in a new ResNet and a new graph give the
	// same bits.
	b := randomResNet(t, s, tensor.Float32, 3)
	run(b, Train, 1)
	if d := cmp.Diff(once, statBits(b)); d != "" {
		t.Errorf("running statistics differ between two identical runs:\n%s", d)
	}

	// The stem's update against the formula, from the unfused reference's
	// convolution of the same input (float64).
	c := randomResNet(t, s, tensor.Float64, 3)
	f := newRef(c, Train)
	xn := G.NewTensor(f.g, tensor.Float64, 4, G.WithShape(bs, s.C, s.H, s.W), G.WithName("x"),
		G.WithValue(tensor.New(tensor.WithShape(bs, s.C, s.H, s.W), tensor.WithBacking(slices.Clone(x)))))
	conv, _ := runRef(t, f.g, conv3(xn, f.nodes["conv1.weight"], 1), make([]float64, bs*s.Width*s.H*s.W), nil)
	rm, _ := c.Lookup("bn1.running_mean")
	rv, _ := c.Lookup("bn1.running_var")
	m0, v0 := slices.Clone(rm.T.Float64s()), slices.Clone(rv.T.Float64s())
	run(c, Train, 1)
	p := s.H * s.W
	for ch := 0; ch < s.Width; ch++ {
		var vals []float64
		for n := 0; n < bs; n++ {
			vals = append(vals, conv[(n*s.Width+ch)*p:][:p]...)
		}
		var mean, ss float64
		for _, v := range vals {
			mean += v
		}
		mean /= float64(len(vals))
		for _, v := range vals {
			ss += (v - mean) * (v - mean)
		}
		wantM := 0.9*m0[ch] + 0.1*mean
		wantV := 0.9*v0[ch] + 0.1*ss/float64(len(vals)-1)
		if gm, gv := rm.T.Float64s()[ch], rv.T.Float64s()[ch]; math.Abs(gm-wantM) > 1e-12 || math.Abs(gv-wantV) > 1e-12*wantV {
			t.Errorf("bn1 channel %d: running mean %.15g, var %.15g; want %.15g, %.15g", ch, gm, gv, wantM, wantV)
		}
	}
}

// TestEvalIsPerExample checks that evaluation logits do not depend on the
// batch: the same examples at batch sizes 5 and 2 (float64, exact same
// arithmetic per example except for GEMM blocking) give the same logits.
func TestEvalIsPerExample(t *testing.T) {
	s := ResNetSpec{Depth: 8, Width: 4, C: 2, H: 9, W: 9, Classes: 4}
	r := randomResNet(t, s, tensor.Float64, 4)
	rng := rand.New(rand.NewPCG(4, 4))
	d := s.C * s.H * s.W
	x := normal(rng, 5*d)
	big := newProbe(t, r, 5, Eval, false, false)
	big.set(x, make([]float64, 5*s.Classes))
	big.run(t)
	all := big.logits(t)
	small := newProbe(t, r, 2, Eval, false, false)
	small.set(x[3*d:], make([]float64, 2*s.Classes))
	small.run(t)
	if e := maxRelErr(small.logits(t), all[3*s.Classes:], 1e-12); e > 1e-13 {
		t.Errorf("examples 3, 4: logits at batch 2 differ from batch 5 by %.3g", e)
	}
}

func TestBuildErrors(t *testing.T) {
	r, err := NewResNet(ResNetSpec{Depth: 8, Width: 2, C: 1, H: 3, W: 3, Classes: 2}, tensor.Float32)
	if err != nil {
		t.Fatal(err)
	}
	// 3×3 → 2×2 → 1×1: a training batch of 1 has one value per channel.
	if _, err := r.Build(G.NewGraph(), 1, Train); err == nil || !strings.Contains(err.Error(), "at least 2") {
		t.Errorf("Train batch 1 on 1×1 planes: error %v", err)
	}
	if _, err := r.Build(G.NewGraph(), 1, Eval); err != nil {
		t.Errorf("Eval batch 1: %v", err)
	}
	if _, err := r.Build(G.NewGraph(), 0, Eval); err == nil {
		t.Error("batch 0 accepted")
	}
	gr, err := r.Build(G.NewGraph(), 2, Eval)
	if err != nil {
		t.Fatal(err)
	}
	loss := G.Must(G.Sum(gr.Logits))
	if _, err := G.Grad(loss, gr.Params...); err == nil || !strings.Contains(err.Error(), "evaluation-mode") {
		t.Errorf("G.Grad on an Eval graph: error %v, want one naming evaluation mode", err)
	}
}

func TestParseInitAndCopyFrom(t *testing.T) {
	for _, i := range []Init{InitHe, InitTorch} {
		if got, err := ParseInit(i.String()); err != nil || got != i {
			t.Errorf("ParseInit(%q) = %v, %v", i.String(), got, err)
		}
	}
	if _, err := ParseInit("xavier"); err == nil || !strings.Contains(err.Error(), "he or torch") {
		t.Errorf("ParseInit(xavier): error %v", err)
	}
	s := ResNetSpec{Depth: 8, Width: 2, C: 1, H: 4, W: 4, Classes: 3}
	a, b := randomResNet(t, s, tensor.Float32, 1), randomResNet(t, s, tensor.Float32, 2)
	b.BatchesTracked = 5
	before := a.State[0].T
	if err := a.CopyFrom(b); err != nil {
		t.Fatal(err)
	}
	for i, e := range a.State {
		if e.T != nil && !slices.Equal(e.T.Float32s(), b.State[i].T.Float32s()) {
			t.Errorf("%s not copied", e.Name)
		}
	}
	if a.State[0].T != before || a.BatchesTracked != 5 {
		t.Error("CopyFrom replaced a tensor or missed BatchesTracked")
	}
	other := randomResNet(t, ResNetSpec{Depth: 14, Width: 2, C: 1, H: 4, W: 4, Classes: 3}, tensor.Float32, 3)
	if err := a.CopyFrom(other); err == nil {
		t.Error("CopyFrom accepted another spec")
	}
}
