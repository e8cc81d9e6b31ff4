package train

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	rtmetrics "runtime/metrics"
	"time"

	"gorgonia.org/tensor"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/data"
	"github.com/kdcal/kdcal/internal/distill"
	"github.com/kdcal/kdcal/internal/metrics"
	"github.com/kdcal/kdcal/internal/model"
)

// PCG stream constants: the seed selects the generator, the stream its use.
const (
	streamInit    = 0x1a17_5eed
	streamShuffle = 0x5f1e_5eed
)

// newInitRNG returns the generator a job's weights are initialised from:
// it depends on the seed only.
func newInitRNG(seed int) *rand.Rand { return rand.New(rand.NewPCG(uint64(seed), streamInit)) }

// maxWeightNorm bounds the L2 norm of all weights after an update. Weights
// of a network trained on normalised inputs stay O(1) each (a norm of tens
// for a million parameters); a norm beyond 1e6 means training has diverged,
// and a few layers on, float32 activations would overflow to ±Inf and NaN.
const maxWeightNorm = 1e6

// trainer is the state of one run.
type trainer struct {
	j      Job
	w      *model.Weights
	lg     *lossGraph
	ev     *model.Evaluator
	evalBS int // the evaluator's batch size
	opt    *optimizer
	wt     *weighting
	params [][]float32
	grads  [][]float32
	pcg    *rand.PCG
	rng    *rand.Rand
	st     state
	bs     int
	total  int // optimizer steps of the whole run
	// dropPartial skips the last batch of an epoch when it is smaller than
	// bs (families with batch statistics, model.Arch.DropPartialBatches).
	dropPartial bool
	buf         []float64
}

// Run trains j and returns the final model, its metrics and logits. When
// j.WorkDir holds a checkpoint of the same job, training resumes after its
// last epoch and ends with the same weights and logits as an uninterrupted
// run. A canceled ctx stops at the next step with ctx's error, leaving the
// last epoch's checkpoint in place. A non-finite loss or logit, or a weight
// norm beyond 1e6, stops with a *DivergedError; a non-finite input is a
// *data.Error.
func Run(ctx context.Context, j Job) (res Result, err error) {
	start := time.Now()
	t, err := newTrainer(j)
	if err != nil {
		return Result{}, err
	}
	defer t.close()
	if err := t.resume(); err != nil {
		return Result{}, err
	}
	resumed := t.st.Epoch
	rep := newReporter(t.j, resumed, t.j.Data.Train.N)
	defer func() { rep.finish(err == nil) }()
	for t.st.Epoch < j.Recipe.Epochs {
		rec, err := t.epoch(ctx, rep)
		if err != nil {
			return Result{}, err
		}
		if err := t.endEpoch(rec); err != nil {
			return Result{}, err
		}
		rep.epochDone(rec)
		if j.OnEpoch != nil {
			j.OnEpoch(rec)
		}
	}
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("%s: %w", j.Label, err)
	}
	if res, err = t.result(ctx); err != nil {
		return Result{}, err
	}
	res.ResumedFrom = resumed
	res.WallSeconds = time.Since(start).Seconds()
	return res, nil
}

func (j *Job) check() error {
	if j.Data == nil || j.Data.Train == nil || j.Data.Val == nil || j.Data.Test == nil {
		panic("train: Job.Data needs train, val and test splits")
	}
	if j.Data.Train.N == 0 {
		return fmt.Errorf("%s: the train split is empty", j.Label)
	}
	for _, d := range []*data.Dataset{j.Data.Train, j.Data.Val, j.Data.Test} {
		for i, v := range d.X {
			if !finite(float64(v)) {
				return &data.Error{Path: d.Name + " split", Msg: fmt.Sprintf("input %d of example %d is %v", i%d.D, i/d.D, v),
					Hint: "inputs must be finite numbers; check the dataset files"}
			}
		}
	}
	if j.Bins == 0 {
		j.Bins = 15
	}
	if j.EvalBatch == 0 {
		j.EvalBatch = 256
	}
	if j.KD == nil {
		return nil
	}
	k, tr := j.KD, j.Data.Train
	if k.Loss == nil {
		panic("train: KD.Loss is nil")
	}
	if !(k.Tau > 0 || k.Tau == 0 && !config.Tempered(k.Loss.Name())) || k.KDWeight < 0 || k.CEWeight < 0 || k.KDWeight+k.CEWeight == 0 {
		return fmt.Errorf("%s: KD needs τ > 0 (0 for a loss without one) and non-negative weights, not both 0 (τ=%g kd_weight=%g ce_weight=%g)",
			j.Label, k.Tau, k.KDWeight, k.CEWeight)
	}
	if len(k.Targets) != tr.N*tr.Classes {
		return fmt.Errorf("%s: KD targets have %d values, want %d train rows × %d classes", j.Label, len(k.Targets), tr.N, tr.Classes)
	}
	if err := k.Loss.CheckTargets(k.Targets, tr.Classes); err != nil {
		return fmt.Errorf("%s: %w", j.Label, err)
	}
	return nil
}

// lossSpec returns the loss terms and constants of the job.
func (j *Job) lossSpec() (lossSpec, *weighting) {
	eps := j.Recipe.LabelSmoothing
	if j.KD == nil {
		return lossSpec{ce: true}, &weighting{ce: 1, eps: eps}
	}
	k := j.KD
	ls := lossSpec{ce: k.CEWeight > 0}
	if k.KDWeight > 0 {
		ls.kd = k.Loss
		ls.in = distill.Inputs{Tau: k.Tau, Weight: k.KDWeight, Targets: k.Targets, C: j.Data.Train.Classes}
	}
	return ls, &weighting{ce: k.CEWeight, eps: eps}
}

func newTrainer(j Job) (*trainer, error) {
	if err := j.check(); err != nil {
		return nil, err
	}
	tr := j.Data.Train
	arch, err := model.NewArch(j.Family, j.Spec, tr.C, tr.H, tr.W, tr.Classes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", j.Label, err)
	}
	t := &trainer{j: j, bs: min(j.Recipe.BatchSize, tr.N)}
	t.w = model.NewWeights(arch, tensor.Float32)
	init := j.Recipe.Init
	if init == "" {
		init = config.InitHe
	}
	if err := t.w.InitWith(newInitRNG(j.Seed), init); err != nil {
		return nil, fmt.Errorf("%s: %s.init: %w", j.Label, j.RecipeKey, err)
	}
	t.pcg = rand.NewPCG(uint64(j.Seed), streamShuffle)
	t.rng = rand.New(t.pcg)
	ls, wt := j.lossSpec()
	t.wt = wt
	if t.lg, err = newLossGraph(t.w, t.bs, ls, true); err != nil {
		return nil, fmt.Errorf("%s: %w", j.Label, err)
	}
	evalBS := min(j.EvalBatch, max(tr.N, j.Data.Val.N, j.Data.Test.N))
	t.evalBS = evalBS
	if t.ev, err = model.NewEvaluator(t.w, evalBS); err != nil {
		t.lg.close()
		return nil, fmt.Errorf("%s: %w", j.Label, err)
	}
	var sizes []int
	for i, p := range t.w.Params {
		sizes = append(sizes, p.Size())
		t.params = append(t.params, t.w.Float32s(i))
	}
	t.grads = make([][]float32, len(sizes))
	if t.opt, err = newOptimizer(j.Recipe, sizes); err != nil {
		t.close()
		return nil, err
	}
	t.dropPartial = arch.DropPartialBatches()
	t.total = j.Recipe.Epochs * tr.Batches(t.bs)
	if t.dropPartial {
		t.total = j.Recipe.Epochs * (tr.N / t.bs)
	}
	t.st = state{Fingerprint: fingerprint(j, arch), Optimizer: j.Recipe.Optimizer}
	return t, nil
}

func (t *trainer) close() {
	t.lg.close()
	if t.ev != nil {
		t.ev.Close()
	}
}

// resume loads the checkpoint in WorkDir, if any.
func (t *trainer) resume() error {
	if t.j.WorkDir == "" {
		return nil
	}
	st, err := loadCheckpoint(filepath.Join(t.j.WorkDir, CheckpointFile), t.st.Fingerprint, t.w, t.opt)
	if errors.Is(err, errNoCheckpoint) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", t.j.Label, err)
	}
	if err := restoreRNG(t.pcg, st.ShuffleRNG); err != nil {
		return fmt.Errorf("%s: resume checkpoint: shuffle state: %w", t.j.Label, err)
	}
	t.st = st
	return nil
}

// epochStats accumulates one epoch's training metrics.
type epochStats struct {
	n, correct, steps int
	loss, nll, kl     float64
	trainTime         time.Duration
	lastLR            float64
}

// epoch trains one pass over the train split and validates.
func (t *trainer) epoch(ctx context.Context, rep *reporter) (Record, error) {
	begin := time.Now()
	ep := t.st.Epoch // 0-based
	var s epochStats
	it := t.j.Data.Train.Epoch(t.rng, t.bs)
	for it.Next() {
		if err := ctx.Err(); err != nil {
			return Record{}, fmt.Errorf("%s: %w", t.j.Label, err)
		}
		if t.dropPartial && len(it.Y) < t.bs {
			continue // batch statistics (BatchNorm): skip the partial last batch
		}
		lr := learningRate(t.j.Recipe, t.st.Step, ep, t.total)
		t0 := time.Now()
		_, err := t.step(batch{x: it.X, y: it.Y, pos: it.Pos}, lr, &s)
		s.trainTime += time.Since(t0)
		if err != nil {
			var de *DivergedError
			if errors.As(err, &de) {
				de.Epoch, de.Step = ep+1, s.steps+1
			}
			return Record{}, err
		}
		s.steps++
		s.lastLR = lr
		rep.add(len(it.Y))
	}
	return t.record(ctx, ep, &s, begin)
}

// step runs one optimizer step on b and adds its statistics to s.
func (t *trainer) step(b batch, lr float64, s *epochStats) (float64, error) {
	t.lg.fill(b, t.wt)
	defer t.lg.reset()
	loss, err := t.lg.run()
	if err != nil {
		return 0, fmt.Errorf("%s: training step: %w", t.j.Label, err)
	}
	if !finite(loss) {
		return loss, &DivergedError{Label: t.j.Label, What: "the loss", Value: loss, LR: t.j.Recipe.LR, RecipeKey: t.j.RecipeKey}
	}
	if s != nil {
		t.accumulate(b, loss, s)
	}
	for i, p := range t.lg.Params {
		g, err := p.Grad()
		if err != nil {
			return 0, fmt.Errorf("%s: gradient of %s: %w", t.j.Label, t.w.Params[i].Name, err)
		}
		t.grads[i] = g.Data().([]float32)
	}
	norm := t.opt.step(t.params, t.grads, lr)
	t.st.Step++
	if !(norm <= maxWeightNorm) {
		// Stop before the next forward pass overflows: NaN activations
		// crash gorgonia's max-pool gradient (it indexes with −1).
		return loss, &DivergedError{Label: t.j.Label, What: "the weight norm", Value: norm, LR: t.j.Recipe.LR, RecipeKey: t.j.RecipeKey}
	}
	return loss, nil
}

// accumulate adds a batch's loss (with the KL constant), NLL and accuracy.
func (t *trainer) accumulate(b batch, loss float64, s *epochStats) {
	m, c := len(b.y), t.w.Arch.Classes
	t.buf = t.lg.logits(t.buf)
	var klConst float64
	if t.lg.term != nil {
		klConst = t.lg.term.Constant(b.pos)
		kd := t.lg.kdTerm() + klConst
		s.kl += kd / t.j.KD.KDWeight * float64(m)
	}
	s.loss += (loss + klConst) * float64(m)
	for i, y := range b.y {
		row := t.buf[i*c : (i+1)*c]
		s.nll += metrics.LogSumExp(row) - row[y]
		if metrics.Argmax(row) == y {
			s.correct++
		}
	}
	s.n += m
}

// record validates the model and builds the epoch's record.
func (t *trainer) record(ctx context.Context, ep int, s *epochStats, begin time.Time) (Record, error) {
	val, _, err := t.evaluate(ctx, t.j.Data.Val)
	if err != nil {
		var de *DivergedError
		if errors.As(err, &de) {
			de.Epoch, de.Step = ep+1, s.steps
		}
		return Record{}, err
	}
	n := float64(s.n)
	rec := Record{Epoch: ep + 1, Steps: s.steps, LR: s.lastLR,
		TrainLoss: s.loss / n, TrainNLL: s.nll / n, TrainAcc: float64(s.correct) / n,
		ValNLL: val.NLL, ValAcc: val.Accuracy, ValECE: val.ECE,
		MsPerStep:     s.trainTime.Seconds() * 1000 / float64(max(s.steps, 1)),
		SamplesPerSec: n / s.trainTime.Seconds(),
		Seconds:       time.Since(begin).Seconds(),
		HeapMiB:       heapMiB()}
	if t.lg.term != nil {
		kl := s.kl / n
		rec.TrainKD = &kl
	}
	return rec, nil
}

// endEpoch records the finished epoch and writes the checkpoint and metrics.jsonl.
func (t *trainer) endEpoch(rec Record) error {
	t.st.Epoch++
	t.st.Records = append(t.st.Records, rec)
	rs, err := t.pcg.MarshalBinary()
	if err != nil {
		return err
	}
	t.st.ShuffleRNG = rs
	if t.j.WorkDir == "" {
		return nil
	}
	if err := saveCheckpoint(filepath.Join(t.j.WorkDir, CheckpointFile), t.w, t.opt, t.st); err != nil {
		return fmt.Errorf("%s: %w", t.j.Label, err)
	}
	if err := writeMetrics(t.j.WorkDir, t.st.Records); err != nil {
		return fmt.Errorf("%s: %w", t.j.Label, err)
	}
	return nil
}

// evalChunk is how many evaluation batches run between checks of ctx
// (whole batches, so the logits are those of one Logits call). One batch,
// as in training: 256 examples of the large CNN take 0.1 s on a core, and
// up to four times that on a loaded machine.
const evalChunk = 1

// evaluate returns the summary and logits of the current model on d. It
// checks ctx every evalChunk batches.
func (t *trainer) evaluate(ctx context.Context, d *data.Dataset) (metrics.Summary, []float32, error) {
	if d.N == 0 {
		return metrics.Summary{Bins: t.j.Bins}, nil, nil
	}
	k := t.w.Arch.Classes
	logits := make([]float32, d.N*k)
	step := evalChunk * t.evalBS
	for off := 0; off < d.N; off += step {
		if err := ctx.Err(); err != nil {
			return metrics.Summary{}, nil, fmt.Errorf("%s: %w", t.j.Label, err)
		}
		m := min(step, d.N-off)
		if _, err := t.ev.Logits(logits[off*k:(off+m)*k], d.X[off*d.D:(off+m)*d.D], m); err != nil {
			return metrics.Summary{}, nil, fmt.Errorf("%s: %w", t.j.Label, err)
		}
	}
	l64 := make([]float64, len(logits))
	for i, v := range logits {
		l64[i] = float64(v)
		if !finite(l64[i]) {
			return metrics.Summary{}, nil, &DivergedError{Label: t.j.Label, What: d.Name + " logits", Value: l64[i], LR: t.j.Recipe.LR, RecipeKey: t.j.RecipeKey}
		}
	}
	return metrics.Evaluate(l64, d.Y, d.Classes, t.j.Bins), logits, nil
}

// result evaluates the final model on every split.
func (t *trainer) result(ctx context.Context) (Result, error) {
	r := Result{Arch: t.w.Arch, Weights: t.w, Params: t.w.Arch.NumParams(), Epochs: t.st.Epoch, Records: t.st.Records}
	var err error
	if !t.j.SkipTrainLogits {
		if _, r.TrainLogits, err = t.evaluate(ctx, t.j.Data.Train); err != nil {
			return Result{}, err
		}
	}
	if r.Val, r.ValLogits, err = t.evaluate(ctx, t.j.Data.Val); err != nil {
		return Result{}, err
	}
	if r.Test, r.TestLogits, err = t.evaluate(ctx, t.j.Data.Test); err != nil {
		return Result{}, err
	}
	return r, nil
}

// heapMiB returns the bytes held by live and not-yet-swept heap objects,
// in MiB (runtime/metrics; no stop-the-world).
func heapMiB() float64 {
	s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	rtmetrics.Read(s)
	if s[0].Value.Kind() != rtmetrics.KindUint64 {
		return 0
	}
	return float64(s[0].Value.Uint64()) / (1 << 20)
}
