package stage

import (
	"context"
	"fmt"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/data"
	"github.com/kdcal/kdcal/internal/model"
	"github.com/kdcal/kdcal/internal/npyfile"
	"github.com/kdcal/kdcal/internal/pipeline"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/runstore"
	kspec "github.com/kdcal/kdcal/internal/spec"
	"github.com/kdcal/kdcal/internal/train"
	"github.com/kdcal/kdcal/internal/version"
)

// Teachers trains one teacher per (size, seed) of the plan into
// teachers/<size>/seed-<n>/: model.safetensors, metrics.jsonl,
// summary.json, and the logits, labels and indices of the train, val and
// test splits. A step resumes from its last epoch checkpoint.
type Teachers struct {
	// OnEpoch, when set, is called after each epoch's checkpoint (tests
	// interrupt training with it).
	OnEpoch func(label string, r train.Record)
}

// Name implements pipeline.Stage.
func (*Teachers) Name() string { return plan.StageTeachers }

// Command implements pipeline.Stage.
func (*Teachers) Command(s plan.Step) string {
	return fmt.Sprintf("kdcal train-teachers --sizes %s --seeds %d", s.Size, s.Seed)
}

// Prepare loads the dataset (once per Env); for teacher.source external it
// reads and checks the teacher's logits instead (external.go).
func (t *Teachers) Prepare(_ context.Context, env *pipeline.Env, s plan.Step) (pipeline.Job, error) {
	if env.Cfg.Teacher.Source == config.SourceExternal {
		return t.prepareExternal(env, s) // external.go
	}
	sp, err := splits(env)
	if err != nil {
		return nil, err
	}
	spec, _ := env.Cfg.Teacher.Spec(s.Size) // plan steps come from teacher.sizes, which Validate checks
	return &teacherJob{stage: t, cfg: env.Cfg, env: env, s: s, spec: spec, splits: sp}, nil
}

type teacherJob struct {
	stage  *Teachers
	cfg    *config.Config
	env    *pipeline.Env
	s      plan.Step
	spec   config.ModelSpec
	splits *data.Splits
	res    train.Result
}

func (j *teacherJob) Manifest() runstore.Manifest {
	seed := j.s.Seed
	return runstore.Manifest{Key: j.s.Key, Kind: runstore.KindTeacher, ConfigHash: j.s.Hash, Seed: &seed}
}

// Write trains the teacher (resuming from a checkpoint in the work
// directory) and writes its outputs.
func (j *teacherJob) Write(ctx context.Context, st *runstore.Step) error {
	cfg, s := j.cfg, j.s
	label := fmt.Sprintf("teacher %s seed %d", s.Size, s.Seed)
	epochs := cfg.Teacher.Train.Epochs
	job := train.Job{
		Label: label, Family: cfg.Teacher.Family, Spec: j.spec,
		Recipe: cfg.Teacher.Train, RecipeKey: "teacher.train", Seed: s.Seed,
		Data: j.splits, Bins: cfg.Calibration.Bins, WorkDir: st.Work(),
		Progress: j.env.Progress, Log: j.env.Log,
		OnEpoch: func(r train.Record) {
			pipeline.WriteProgress(st, r.Epoch, epochs)
			if j.stage.OnEpoch != nil {
				j.stage.OnEpoch(label, r)
			}
		},
	}
	res, err := runTraining(ctx, j.env, job)
	if err != nil {
		return err
	}
	if err := writeTeacher(st, cfg, s, j.splits, res); err != nil {
		return err
	}
	st.SetParam("family", cfg.Teacher.Family)
	st.SetParam("spec", j.spec)
	st.SetParam("params", res.Params)
	st.SetParam("normalize", j.splits.Normalize)
	st.SetParam("init", cfg.Teacher.Train.Init)
	st.SetParam("resumed_from_epoch", res.ResumedFrom)
	j.res = res
	return nil
}

func (j *teacherJob) Committed(env *pipeline.Env) {
	res := j.res
	env.Log.Info("teacher done", "step", j.s.Key, "params", res.Params, "test_acc", fmt.Sprintf("%.4f", res.Test.Accuracy),
		"test_ece", fmt.Sprintf("%.4f", res.Test.ECE), "seconds", fmt.Sprintf("%.1f", res.WallSeconds))
}

// writeTeacher writes a trained teacher's outputs into the step's work
// directory (see internal/runstore/doc.go) and removes the resume files.
func writeTeacher(st *runstore.Step, cfg *config.Config, s plan.Step, splits *data.Splits, res train.Result) error {
	if err := writeModelOutputs(st, cfg, splits, res, true); err != nil {
		return err
	}
	spec, _ := cfg.Teacher.Spec(s.Size)
	sum := runstore.TeacherSummary{Size: s.Size, Seed: s.Seed, Family: cfg.Teacher.Family, Spec: kspec.HashKey(cfg.Teacher.Family, spec), Params: res.Params,
		Epochs: res.Epochs, WallSeconds: res.WallSeconds, Val: res.Val, Test: res.Test}
	if err := atomicfile.WriteJSON(st.Path(runstore.SummaryFile), sum); err != nil {
		return err
	}
	return removeResumeFiles(st)
}

// writeModelOutputs writes model.safetensors and the float32 logits, int64
// labels and official indices of the val and test splits (and of the train
// split when withTrain: distillation reads a teacher's train logits).
func writeModelOutputs(st *runstore.Step, cfg *config.Config, splits *data.Splits, res train.Result, withTrain bool) error {
	meta := model.Meta{Dataset: cfg.Data.Dataset, Normalize: splits.Normalize, Scale: data.PixelScale(cfg.Data.Dataset), Mean: splits.Mean, Std: splits.Std,
		Version: version.Get().Version}
	if err := model.Save(st.Path(runstore.ModelFile), res.Weights, meta); err != nil {
		return err
	}
	c := res.Arch.Classes
	type out struct {
		name   string
		d      *data.Dataset
		logits []float32
	}
	outs := []out{{runstore.SplitVal, splits.Val, res.ValLogits}, {runstore.SplitTest, splits.Test, res.TestLogits}}
	if withTrain {
		outs = append([]out{{runstore.SplitTrain, splits.Train, res.TrainLogits}}, outs...)
	}
	for _, sp := range outs {
		if err := npyfile.WriteFloat32(st.Path(runstore.LogitsFile(sp.name)), sp.logits, sp.d.N, c); err != nil {
			return err
		}
		if err := npyfile.WriteInt64(st.Path(runstore.LabelsFile(sp.name)), sp.d.Y); err != nil {
			return err
		}
		if sp.name != runstore.SplitTest {
			if err := npyfile.WriteInt64(st.Path(runstore.IndexFile(sp.name)), sp.d.Index); err != nil {
				return err
			}
		}
	}
	return nil
}
