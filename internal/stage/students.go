package stage

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/calibrate"
	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/data"
	"github.com/kdcal/kdcal/internal/distill"
	"github.com/kdcal/kdcal/internal/npyfile"
	"github.com/kdcal/kdcal/internal/pipeline"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/runstore"
	"github.com/kdcal/kdcal/internal/train"
)

// Students trains the one fixed student per (setting, arm, size, seed):
// distilled from the teacher's stored train logits (raw), from the same
// logits after the fitted calibrator (calibrated), or from scratch, into
// students/<setting>/<arm>/<size>/seed-<n>/.
type Students struct{}

// Name implements pipeline.Stage.
func (Students) Name() string { return plan.StageStudents }

// Command implements pipeline.Stage.
func (Students) Command(s plan.Step) string {
	if s.Arm == config.ArmScratch {
		return fmt.Sprintf("kdcal distill --arm scratch --seeds %d", s.Seed)
	}
	return fmt.Sprintf("kdcal distill --teacher %s --arm %s --seeds %d --setting %s", s.Size, s.Arm, s.Seed, s.Setting.Name())
}

// kdSetup is the resolved distillation of one student step.
type kdSetup struct {
	kd         *train.KD
	calibrator string  // method applied to the teacher's logits (calibrated arm)
	calT       float64 // the calibrator's softening temperature (1 without one)
	effT       float64 // the loss's effective temperature (kd, dkd: τ·T_cal; mse: T_cal)
	loss       string  // the KD loss (kd.loss)
	formula    string
}

// Prepare loads the dataset and, for a KD arm, the teacher's targets.
func (Students) Prepare(_ context.Context, env *pipeline.Env, s plan.Step) (pipeline.Job, error) {
	sp, err := splits(env)
	if err != nil {
		return nil, err
	}
	setup := kdSetup{calT: 1, formula: "loss = CE(y, s) (scratch: no teacher)"}
	if s.Arm != config.ArmScratch {
		if setup, err = resolveKD(env, s, sp); err != nil {
			return nil, err
		}
	}
	return &studentJob{env: env, s: s, splits: sp, setup: setup}, nil
}

type studentJob struct {
	env    *pipeline.Env
	s      plan.Step
	splits *data.Splits
	setup  kdSetup
	res    train.Result
}

func (j *studentJob) Manifest() runstore.Manifest {
	seed := j.s.Seed
	return runstore.Manifest{Key: j.s.Key, Kind: runstore.KindStudent, ConfigHash: j.s.Hash, Inputs: j.s.Deps, Seed: &seed}
}

// Write trains the student (resuming from a checkpoint) and writes its outputs.
func (j *studentJob) Write(ctx context.Context, st *runstore.Step) error {
	cfg, s, setup := j.env.Cfg, j.s, j.setup
	j.env.Log.Info("distill", "step", s.Key, "formula", setup.formula)
	st.SetParam("arm", s.Arm)
	st.SetParam("formula", setup.formula)
	st.SetParam("normalize", cfg.Data.Normalize)
	st.SetParam("init", cfg.Student.Train.Init)
	if s.Arm != config.ArmScratch {
		st.SetParam("tau", s.Setting.Tau)
		st.SetParam("kd_weight", s.Setting.KDWeight)
		st.SetParam("ce_weight", cfg.KD.CEWeight)
		st.SetParam("effective_temperature", setup.effT)
		if setup.loss != config.LossKD {
			st.SetParam("loss", setup.loss)
		}
	}
	recipe := cfg.Student.Train
	recipe.Epochs = s.Setting.Epochs
	label := "student " + strings.TrimPrefix(s.String(), "student ")
	job := train.Job{
		Label: label, Family: cfg.Student.Family, Spec: cfg.Student.Model, Recipe: recipe, RecipeKey: "student.train",
		Seed: s.Seed, Data: j.splits, KD: setup.kd, Bins: cfg.Calibration.Bins, WorkDir: st.Work(),
		Progress: j.env.Progress, Log: j.env.Log, SkipTrainLogits: true,
		OnEpoch: func(r train.Record) { pipeline.WriteProgress(st, r.Epoch, recipe.Epochs) },
	}
	res, err := runTraining(ctx, j.env, job)
	if err != nil {
		return err
	}
	j.res = res
	return writeStudent(st, cfg, s, j.splits, res, setup)
}

func (j *studentJob) Committed(env *pipeline.Env) {
	res := j.res
	env.Log.Info("student done", "step", j.s.Key, "test_acc", fmt.Sprintf("%.4f", res.Test.Accuracy),
		"test_ece", fmt.Sprintf("%.4f", res.Test.ECE), "seconds", fmt.Sprintf("%.1f", res.WallSeconds))
}

// resolveKD reads the teacher's train logits, checks they belong to this
// train split, applies the calibrator for the calibrated arm and softens
// them at τ.
func resolveKD(env *pipeline.Env, s plan.Step, splits *data.Splits) (kdSetup, error) {
	cfg, store := env.Cfg, env.Store
	tkey := runstore.TeacherKey(s.Size, s.Seed)
	logits, n, c, err := npyfile.ReadMatrix(store.Path(tkey, runstore.LogitsFile(runstore.SplitTrain)))
	if err != nil {
		return kdSetup{}, err
	}
	index, err := npyfile.ReadInts(store.Path(tkey, runstore.IndexFile(runstore.SplitTrain)))
	if err != nil {
		return kdSetup{}, err
	}
	if n != splits.Train.N || c != splits.Train.Classes || !slices.Equal(index, splits.Train.Index) {
		return kdSetup{}, fmt.Errorf("%s: the teacher's train logits (%d×%d) do not belong to this train split (%d examples, %d classes); "+
			"retrain the teacher with the current data.* settings", store.Dir(tkey), n, c, splits.Train.N, splits.Train.Classes)
	}
	setup := kdSetup{calT: 1}
	var cal any
	transform := "t"
	if s.Arm == config.ArmCalibrated {
		ckey := runstore.CalibrationKey(cfg.KD.Calibrator, s.Size, s.Seed)
		cb, _, err := calibrate.Load(store.Path(ckey, runstore.CalibParamsFile))
		if err != nil {
			return kdSetup{}, fmt.Errorf("%s: %w", store.Dir(ckey), err)
		}
		if cb.Classes() != c {
			return kdSetup{}, fmt.Errorf("%s: calibrator fitted on %d classes, teacher has %d", store.Dir(ckey), cb.Classes(), c)
		}
		cal, setup.calibrator = cb, cb.Method()
		transform = cb.Method() + "(t)"
		if d := cb.Describe(); d.Temperature > 0 {
			transform = "t/" + strconv.FormatFloat(d.Temperature, 'g', 4, 64)
		}
		setup.calT = cb.Describe().Softening()
	}
	loss, err := distill.New(s.Setting.Loss, distill.Params{DKDAlpha: cfg.KD.DKDAlpha, DKDBeta: cfg.KD.DKDBeta})
	if err != nil {
		return kdSetup{}, err
	}
	z, err := distill.CalibratedLogits(logits, c, cal)
	if err != nil {
		return kdSetup{}, fmt.Errorf("%s: %w", store.Dir(tkey), err)
	}
	targets, err := loss.Targets(z, c, s.Setting.Tau)
	if err != nil {
		return kdSetup{}, fmt.Errorf("%s: %w", store.Dir(tkey), err)
	}
	setup.kd = &train.KD{Loss: loss, Targets: targets, Tau: s.Setting.Tau, KDWeight: s.Setting.KDWeight, CEWeight: cfg.KD.CEWeight}
	setup.loss = loss.Name()
	setup.effT = loss.EffectiveTemperature(s.Setting.Tau, setup.calT)
	setup.formula = distill.Formula(loss, cfg.KD.CEWeight, s.Setting.KDWeight, s.Setting.Tau, transform)
	return setup, nil
}

// writeStudent writes a trained student's outputs and summary.json.
func writeStudent(st *runstore.Step, cfg *config.Config, s plan.Step, splits *data.Splits, res train.Result, setup kdSetup) error {
	if err := writeModelOutputs(st, cfg, splits, res, false); err != nil {
		return err
	}
	setting := s.Setting.Name()
	if s.Arm == config.ArmScratch {
		setting = fmt.Sprintf("scratch-ep%d", s.Setting.Epochs)
	}
	sum := runstore.StudentSummary{
		Arm: s.Arm, TeacherSize: s.Size, Seed: s.Seed, Setting: setting, Epochs: s.Setting.Epochs,
		CEWeight: 1, Params: res.Params, WallSeconds: res.WallSeconds, Val: res.Val, Test: res.Test,
	}
	if s.Arm != config.ArmScratch {
		sum.Tau, sum.KDWeight, sum.CEWeight = s.Setting.Tau, s.Setting.KDWeight, cfg.KD.CEWeight
		sum.Calibrator, sum.CalibrationTemperature, sum.EffectiveTemperature = setup.calibrator, setup.calT, setup.effT
		if setup.loss != config.LossKD {
			sum.Loss = setup.loss // kd, the default, stays out: summaries of kd-only studies are unchanged
		}
	}
	if err := atomicfile.WriteJSON(st.Path(runstore.SummaryFile), sum); err != nil {
		return err
	}
	return removeResumeFiles(st)
}
