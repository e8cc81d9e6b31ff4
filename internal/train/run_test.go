package train

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/data"
	"github.com/kdcal/kdcal/internal/distill"
	"github.com/kdcal/kdcal/internal/metrics"
	"github.com/kdcal/kdcal/internal/model"
)

var (
	tinyMLP = config.ModelSpec{"hidden": []int{32}}
	tinyCNN = config.ModelSpec{"conv": []int{4}, "hidden": []int{16}} // on the synthetic set's 4×4 "image"
)

func job(family string, spec config.ModelSpec, r config.Train, seed int, s *data.Splits) Job {
	return Job{Label: "test " + family, Family: family, Spec: spec, Recipe: r, RecipeKey: "teacher.train", Seed: seed, Data: s}
}

// TestSyntheticAccuracy trains the tiny MLP for 5 epochs on the synthetic
// set (4 overlapping Gaussian classes in 16 dimensions). Measured: 0.92 test
// accuracy (chance 0.25); we require 0.85.
func TestSyntheticAccuracy(t *testing.T) {
	s := syntheticSplits(t)
	res, err := Run(context.Background(), job(config.FamilyMLP, tinyMLP, recipe(5, 64), 0, s))
	if err != nil {
		t.Fatal(err)
	}
	if res.Test.Accuracy < 0.85 {
		t.Errorf("test accuracy %.3f after 5 epochs, want ≥ 0.85", res.Test.Accuracy)
	}
	if len(res.Records) != 5 || res.Epochs != 5 || res.ResumedFrom != 0 {
		t.Errorf("%d records, %d epochs, resumed from %d; want 5, 5, 0", len(res.Records), res.Epochs, res.ResumedFrom)
	}
	if first, last := res.Records[0], res.Records[4]; !(last.TrainLoss < first.TrainLoss) {
		t.Errorf("train loss did not fall: %v → %v", first.TrainLoss, last.TrainLoss)
	}
	if res.Params != res.Arch.NumParams() || res.Params != 16*32+32+32*4+4 {
		t.Errorf("params %d, want %d", res.Params, 16*32+32+32*4+4)
	}
	// Result metrics are those of the returned logits.
	if got := evaluate32(res.TestLogits, s.Test); got.Accuracy != res.Test.Accuracy || got.NLL != res.Test.NLL {
		t.Errorf("Test summary %+v does not match its logits (%+v)", res.Test, got)
	}
}

func evaluate32(logits []float32, d *data.Dataset) metrics.Summary {
	l := make([]float64, len(logits))
	for i, v := range logits {
		l[i] = float64(v)
	}
	return metrics.Evaluate(l, d.Y, d.Classes, 15)
}

// TestDeterministic trains twice with the same seed (identical weights and
// logits, bit for bit) and once with another seed (different weights).
func TestDeterministic(t *testing.T) {
	s := syntheticSplits(t)
	for _, family := range config.Families {
		spec := tinyMLP
		if family == config.FamilyCNN {
			spec = tinyCNN
		}
		run := func(seed int) Result {
			res, err := Run(context.Background(), job(family, spec, recipe(2, 50), seed, s))
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		a, b, c := run(3), run(3), run(4)
		if !slices.Equal(a.Weights.Flat(), b.Weights.Flat()) || !slices.Equal(a.TestLogits, b.TestLogits) ||
			!slices.Equal(a.TrainLogits, b.TrainLogits) {
			t.Errorf("%s: same seed, different weights or logits", family)
		}
		if slices.Equal(a.Weights.Flat(), c.Weights.Flat()) {
			t.Errorf("%s: seeds 3 and 4 gave the same weights", family)
		}
	}
}

// TestSameSeedSameStartAndOrder checks the pairing distillation's scratch
// arm relies on: two jobs with the same seed and architecture but different
// losses start from the same weights and see the same batches.
func TestSameSeedSameStartAndOrder(t *testing.T) {
	s := syntheticSplits(t)
	smooth := recipe(1, 64)
	smooth.LabelSmoothing = 0.2
	t1, err := newTrainer(job(config.FamilyMLP, tinyMLP, recipe(1, 64), 5, s))
	if err != nil {
		t.Fatal(err)
	}
	defer t1.close()
	t2, err := newTrainer(job(config.FamilyMLP, tinyMLP, smooth, 5, s))
	if err != nil {
		t.Fatal(err)
	}
	defer t2.close()
	if !slices.Equal(t1.w.Flat(), t2.w.Flat()) {
		t.Error("same seed, different initial weights")
	}
	it1, it2 := s.Train.Epoch(t1.rng, 64), s.Train.Epoch(t2.rng, 64)
	for it1.Next() && it2.Next() {
		if !slices.Equal(it1.Pos, it2.Pos) {
			t.Fatal("same seed, different batch order")
		}
	}
}

// TestResumeEqualsUninterrupted stops training after epoch 2 of 4 (the
// context is canceled from OnEpoch, as Ctrl-C would), resumes from the
// checkpoint in WorkDir, and requires bit-identical weights, logits and
// per-epoch losses to an uninterrupted run, for Adam with a cosine schedule
// (CNN) and SGD with momentum, weight decay and a step schedule (MLP).
func TestResumeEqualsUninterrupted(t *testing.T) {
	s := syntheticSplits(t)
	sgd := recipe(4, 64)
	sgd.Optimizer, sgd.LR, sgd.Schedule, sgd.StepEvery, sgd.WeightDecay = "sgd", 0.05, "step", 2, 1e-3
	adam := recipe(4, 64)
	adam.WeightDecay = 1e-2
	for _, tc := range []struct {
		family string
		spec   config.ModelSpec
		r      config.Train
	}{{config.FamilyCNN, tinyCNN, adam}, {config.FamilyMLP, tinyMLP, sgd}} {
		j := job(tc.family, tc.spec, tc.r, 1, s)
		full, err := Run(context.Background(), j)
		if err != nil {
			t.Fatal(err)
		}

		j.WorkDir = t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		j.OnEpoch = func(r Record) {
			if r.Epoch == 2 {
				cancel()
			}
		}
		if _, err := Run(ctx, j); !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: interrupted run returned %v, want context.Canceled", tc.family, err)
		}
		j.OnEpoch = nil
		resumed, err := Run(context.Background(), j)
		if err != nil {
			t.Fatal(err)
		}
		if resumed.ResumedFrom != 2 {
			t.Errorf("%s: resumed from epoch %d, want 2", tc.family, resumed.ResumedFrom)
		}
		if !slices.Equal(full.Weights.Flat(), resumed.Weights.Flat()) || !slices.Equal(full.TestLogits, resumed.TestLogits) ||
			!slices.Equal(full.TrainLogits, resumed.TrainLogits) || !slices.Equal(full.ValLogits, resumed.ValLogits) {
			t.Errorf("%s: resumed run differs from the uninterrupted one", tc.family)
		}
		if len(resumed.Records) != 4 {
			t.Fatalf("%s: %d records after resume, want 4", tc.family, len(resumed.Records))
		}
		for i := range full.Records {
			if full.Records[i].TrainLoss != resumed.Records[i].TrainLoss || full.Records[i].ValNLL != resumed.Records[i].ValNLL {
				t.Errorf("%s epoch %d: losses %v/%v, uninterrupted %v/%v", tc.family, i+1, resumed.Records[i].TrainLoss,
					resumed.Records[i].ValNLL, full.Records[i].TrainLoss, full.Records[i].ValNLL)
			}
		}
		checkMetricsFile(t, j.WorkDir, 4)

		// A finished checkpoint resumes straight to the evaluation.
		again, err := Run(context.Background(), j)
		if err != nil || again.ResumedFrom != 4 || !slices.Equal(again.TestLogits, full.TestLogits) {
			t.Errorf("%s: rerun after the last epoch: err %v, resumed from %d", tc.family, err, again.ResumedFrom)
		}
	}
}

// checkMetricsFile checks that metrics.jsonl holds one JSON record per epoch.
func checkMetricsFile(t *testing.T, dir string, epochs int) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("metrics.jsonl line %d: %v", n+1, err)
		}
		for _, k := range []string{"epoch", "train_loss", "train_acc", "val_nll", "val_acc", "val_ece", "ms_per_step", "samples_per_s"} {
			if _, ok := r[k]; !ok {
				t.Errorf("metrics.jsonl line %d lacks %q", n+1, k)
			}
		}
		n++
		if int(r["epoch"].(float64)) != n {
			t.Errorf("metrics.jsonl line %d is epoch %v", n, r["epoch"])
		}
	}
	if n != epochs {
		t.Errorf("metrics.jsonl has %d lines, want %d", n, epochs)
	}
}

// TestCheckpointRoundTrip saves a checkpoint and loads it into a fresh
// model and optimizer: weights, Adam moments, step and RNG state must come
// back exactly.
func TestCheckpointRoundTrip(t *testing.T) {
	s := syntheticSplits(t)
	j := job(config.FamilyCNN, tinyCNN, recipe(1, 64), 2, s)
	a, err := newTrainer(j)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	it := s.Train.Epoch(a.rng, 64)
	for i := 0; i < 3 && it.Next(); i++ {
		if _, err := a.step(batch{x: it.X, y: it.Y, pos: it.Pos}, 1e-2, nil); err != nil {
			t.Fatal(err)
		}
	}
	a.st.Epoch = 1
	a.st.Records = []Record{{Epoch: 1, TrainLoss: 0.5}}
	a.st.ShuffleRNG, _ = a.pcg.MarshalBinary()
	path := filepath.Join(t.TempDir(), CheckpointFile)
	if err := saveCheckpoint(path, a.w, a.opt, a.st); err != nil {
		t.Fatal(err)
	}
	b, err := newTrainer(j)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	st, err := loadCheckpoint(path, a.st.Fingerprint, b.w, b.opt)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.w.Flat(), b.w.Flat()) {
		t.Error("weights differ")
	}
	for i := range a.opt.m {
		if !slices.Equal(a.opt.m[i], b.opt.m[i]) || !slices.Equal(a.opt.v[i], b.opt.v[i]) {
			t.Errorf("Adam moments of parameter %d differ", i)
		}
	}
	if b.opt.t != 3 || st.Step != 3 || st.Epoch != 1 || len(st.Records) != 1 || st.Records[0].TrainLoss != 0.5 {
		t.Errorf("state %+v, optimizer step %d", st, b.opt.t)
	}
	if err := restoreRNG(b.pcg, st.ShuffleRNG); err != nil {
		t.Fatal(err)
	}
	if a.rng.Uint64() != b.rng.Uint64() {
		t.Error("shuffle generator state differs")
	}
	// The checkpoint is also a loadable model (PyTorch-layout weights).
	st2, _, err := model.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := model.NewWeights(a.w.Arch, a.w.Dtype)
	if err := c.SetFromTorch(st2, ""); err != nil || !slices.Equal(c.Flat(), a.w.Flat()) {
		t.Errorf("checkpoint weights do not load as a model: %v", err)
	}
}

// TestCheckpointOfAnotherJob refuses to resume a checkpoint written for
// another seed.
func TestCheckpointOfAnotherJob(t *testing.T) {
	s := syntheticSplits(t)
	dir := t.TempDir()
	j := job(config.FamilyMLP, tinyMLP, recipe(1, 64), 0, s)
	j.WorkDir = dir
	if _, err := Run(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	j.Seed = 1
	_, err := Run(context.Background(), j)
	if err == nil || !strings.Contains(err.Error(), "belongs to another training job") {
		t.Errorf("error %v, want a refusal naming the checkpoint", err)
	}
}

// TestLogitsInDatasetOrder checks that the returned logits of every split
// are in the split's position order: row i equals the model applied to
// example i alone (to float32 rounding), and the train logits' accuracy
// against the train labels matches the epoch's.
func TestLogitsInDatasetOrder(t *testing.T) {
	s := syntheticSplits(t)
	res, err := Run(context.Background(), job(config.FamilyCNN, tinyCNN, recipe(2, 64), 0, s))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := model.NewEvaluator(res.Weights, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	c := s.Train.Classes
	for _, sp := range []struct {
		d      *data.Dataset
		logits []float32
	}{{s.Train, res.TrainLogits}, {s.Val, res.ValLogits}, {s.Test, res.TestLogits}} {
		if len(sp.logits) != sp.d.N*c {
			t.Fatalf("%s: %d logits, want %d×%d", sp.d.Name, len(sp.logits), sp.d.N, c)
		}
		for _, i := range []int{0, 1, sp.d.N / 2, sp.d.N - 1} {
			one, err := ev.Logits(nil, sp.d.X[i*sp.d.D:(i+1)*sp.d.D], 1)
			if err != nil {
				t.Fatal(err)
			}
			for k := 0; k < c; k++ {
				if math.Abs(float64(one[k]-sp.logits[i*c+k])) > 1e-5 {
					t.Errorf("%s row %d: logits %v, example alone %v", sp.d.Name, i, sp.logits[i*c:(i+1)*c], one)
					break
				}
			}
		}
	}
}

// TestKDAlignment distills from targets that put 0.9 on the class after the
// true one, (y+1) mod C. A student that looks targets up by example
// position learns to predict (y+1) mod C; with misaligned targets it would
// be at chance (0.25). Measured: 0.91; we require 0.8.
func TestKDAlignment(t *testing.T) {
	s := syntheticSplits(t)
	c := s.Train.Classes
	p := make([]float32, s.Train.N*c)
	for i, y := range s.Train.Y {
		for k := 0; k < c; k++ {
			p[i*c+k] = 0.1 / float32(c-1)
		}
		p[i*c+(y+1)%c] = 0.9
	}
	j := job(config.FamilyMLP, tinyMLP, recipe(5, 64), 0, s)
	j.KD = &KD{Loss: distill.Hinton{}, Targets: p, Tau: 1, KDWeight: 1, CEWeight: 0}
	res, err := Run(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	shifted := 0
	for i, y := range s.Test.Y {
		row := make([]float64, c)
		for k := range row {
			row[k] = float64(res.TestLogits[i*c+k])
		}
		if metrics.Argmax(row) == (y+1)%c {
			shifted++
		}
	}
	if acc := float64(shifted) / float64(s.Test.N); acc < 0.8 {
		t.Errorf("student predicts the teacher's (y+1) mod C on %.3f of the test set, want ≥ 0.8", acc)
	}
	for _, r := range res.Records {
		if r.TrainKD == nil || *r.TrainKD < 0 {
			t.Fatalf("epoch %d: train_kd %v, want a KL ≥ 0", r.Epoch, r.TrainKD)
		}
	}
}

// TestKDTargetsChecked rejects targets of the wrong size and rows that are
// not probability distributions.
func TestKDTargetsChecked(t *testing.T) {
	s := syntheticSplits(t)
	c := s.Train.Classes
	good := make([]float32, s.Train.N*c)
	for i := range good {
		good[i] = 1 / float32(c)
	}
	bad := slices.Clone(good)
	bad[7*c] = 0.9
	tests := []struct {
		kd   KD
		want string
	}{
		{KD{Loss: distill.Hinton{}, Targets: good[:c], Tau: 1, KDWeight: 1}, "want 1800 train rows"},
		{KD{Loss: distill.Hinton{}, Targets: bad, Tau: 1, KDWeight: 1}, "row 7 sums to"},
		{KD{Loss: distill.Hinton{}, Targets: good, Tau: 0, KDWeight: 1}, "τ > 0"},
	}
	for _, tt := range tests {
		j := job(config.FamilyMLP, tinyMLP, recipe(1, 64), 0, s)
		j.KD = &tt.kd
		if _, err := Run(context.Background(), j); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("error %v, want %q", err, tt.want)
		}
	}
}

// TestNonFiniteLossStops feeds inputs of ±3e38: the first layer overflows
// and the loss is not finite at the first step. Training must stop at once
// with an error naming the job, the epoch and step, the learning-rate key
// and its value, and must not write a checkpoint.
func TestNonFiniteLossStops(t *testing.T) {
	s := syntheticSplits(t)
	s.Train.X = slices.Clone(s.Train.X)
	for i := range s.Train.X {
		s.Train.X[i] = float32(3e38 * float64(1-2*(i%2)))
	}
	j := job(config.FamilyMLP, tinyMLP, recipe(2, 64), 0, s)
	j.Label = "teacher large seed 0"
	j.WorkDir = t.TempDir()
	_, err := Run(context.Background(), j)
	var de *DivergedError
	if !errors.As(err, &de) {
		t.Fatalf("error %v, want a *DivergedError", err)
	}
	want := regexp.MustCompile(`^teacher large seed 0: the loss became (NaN|Inf) at epoch 1 step 1; lower teacher.train.lr \(now 0.001\) or check the data$`)
	if !want.MatchString(err.Error()) {
		t.Errorf("error %q does not match %q", err, want)
	}
	if _, err := os.Stat(filepath.Join(j.WorkDir, CheckpointFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a checkpoint was written for the diverged run (stat: %v)", err)
	}
}

// TestNonFiniteInputRejected: a NaN input is a data error naming the split
// and the example, found before training.
func TestNonFiniteInputRejected(t *testing.T) {
	s := syntheticSplits(t)
	s.Test.X = slices.Clone(s.Test.X)
	s.Test.X[5*s.Test.D+3] = float32(math.NaN())
	_, err := Run(context.Background(), job(config.FamilyCNN, tinyCNN, recipe(1, 64), 0, s))
	var de *data.Error
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "test split: input 3 of example 5 is NaN") {
		t.Errorf("error %v, want a *data.Error naming the test split, example 5", err)
	}
}

// TestHugeLearningRateDiverges: SGD at lr 1e4 blows the weights up within
// the first epoch; the error must say so rather than return garbage.
func TestHugeLearningRateDiverges(t *testing.T) {
	s := syntheticSplits(t)
	r := recipe(3, 64)
	r.Optimizer, r.LR, r.Schedule = "sgd", 1e4, "constant"
	_, err := Run(context.Background(), job(config.FamilyMLP, tinyMLP, r, 0, s))
	var de *DivergedError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "lower teacher.train.lr (now 10000)") {
		t.Errorf("error %v, want a *DivergedError with a learning-rate hint", err)
	}
}

// TestBatchLargerThanTrainSet uses the whole train split as one batch.
func TestBatchLargerThanTrainSet(t *testing.T) {
	s := syntheticSplits(t)
	res, err := Run(context.Background(), job(config.FamilyMLP, tinyMLP, recipe(2, 5000), 0, s))
	if err != nil {
		t.Fatal(err)
	}
	if res.Records[0].Steps != 1 {
		t.Errorf("%d steps per epoch, want 1", res.Records[0].Steps)
	}
}
