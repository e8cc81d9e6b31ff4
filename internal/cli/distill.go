package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/calibrate"
	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/data"
	"github.com/kdcal/kdcal/internal/distill"
	"github.com/kdcal/kdcal/internal/npyfile"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/runstore"
	"github.com/kdcal/kdcal/internal/train"
)

func init() { registerStep(plan.StageStudents, studentStep) }

// DistillOptions are the inputs of `kdcal distill`.
type DistillOptions struct {
	G       *Globals
	Teacher string   // size or all
	Arms    []string // raw, calibrated, scratch or all
	Seeds   []int
	Setting string // KD setting name (e.g. tau4-kdw0.9-ep20) or all
	Force   bool   // retrain finished students
}

// NewCmdDistill builds `kdcal distill`.
func NewCmdDistill(g *Globals, runF func(*DistillOptions) error) *cobra.Command {
	opts := &DistillOptions{G: g}
	cmd := &cobra.Command{
		Use:   "distill",
		Short: "Distill each teacher (raw and calibrated) into the student, next to a scratch baseline",
		Long: `Train the one fixed student (student.*) per teacher size, seed and KD setting:

  raw         from the teacher's stored train-split logits t
  calibrated  from the same logits after the fitted calibrator kd.calibrator
              (for temp: t/T_cal, so the effective softening is τ·T_cal)
  scratch     without a teacher (cross-entropy only), same initialisation and
              batch order as the KD arms of that seed

with loss = ce_weight·CE(y, s) + kd_weight·τ²·KL(softmax(t/τ) ‖ softmax(s/τ)).
kd.temperature, kd.kd_weight and kd.student_epochs are grids: each combination
is its own setting (students/<setting>/...). The teacher is never run: its
targets come from teachers/<size>/seed-<n>/logits_train.npy, looked up by
example position. Finished students are skipped (--force retrains them; a damaged
one, with an output file missing or changed, is retrained anyway); interrupted
ones resume.`,
		Example: `  kdcal distill --config configs/quick.yaml --teacher large
  kdcal distill --config configs/quick.yaml --teacher all --arm raw,calibrated --seeds 0
  kdcal distill --config configs/quick.yaml --arm scratch`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return distillRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Teacher, "teacher", "all", "teacher size to distill from, or all")
	f.StringSliceVar(&opts.Arms, "arm", []string{"all"}, "arms: raw, calibrated, scratch or all")
	f.IntSliceVar(&opts.Seeds, "seeds", nil, "seeds (default: seeds)")
	f.StringVar(&opts.Setting, "setting", "all", "KD setting, e.g. tau4-kdw0.9-ep20, or all")
	f.BoolVar(&opts.Force, "force", false, "retrain students that are already done")
	return cmd
}

// studentSteps selects the plan's student steps matching the options.
func (o *DistillOptions) studentSteps(env *StepEnv) ([]plan.Step, error) {
	cfg := env.Cfg
	if o.Teacher != "all" && !slices.Contains(cfg.Teacher.Sizes, o.Teacher) {
		return nil, usageErrorf("--teacher %q: use all or one of teacher.sizes: %s", o.Teacher, strings.Join(cfg.Teacher.Sizes, ", "))
	}
	arms := o.Arms
	if slices.Contains(arms, "all") {
		arms = cfg.KD.Arms
	}
	for _, a := range arms {
		if !slices.Contains(config.Arms, a) {
			return nil, usageErrorf("--arm %q: use all or any of %s", a, strings.Join(config.Arms, ", "))
		}
		if !slices.Contains(cfg.KD.Arms, a) {
			return nil, usageErrorf("--arm %q is not in kd.arms (%s)", a, strings.Join(cfg.KD.Arms, ", "))
		}
	}
	var names []string
	for _, s := range plan.Settings(cfg) {
		names = append(names, s.Name())
	}
	if o.Setting != "all" && !slices.Contains(names, o.Setting) {
		return nil, usageErrorf("--setting %q: use all or one of %s", o.Setting, strings.Join(names, ", "))
	}
	return env.Plan.Filter(func(s plan.Step) bool {
		if s.Stage != plan.StageStudents || !slices.Contains(arms, s.Arm) {
			return false
		}
		if s.Arm == config.ArmScratch {
			return o.Setting == "all" || s.Setting.Epochs == settingEpochs(env, o.Setting)
		}
		return (o.Teacher == "all" || s.Size == o.Teacher) && (o.Setting == "all" || s.Setting.Name() == o.Setting)
	}), nil
}

func settingEpochs(env *StepEnv, name string) int {
	for _, s := range plan.Settings(env.Cfg) {
		if s.Name() == name {
			return s.Epochs
		}
	}
	return -1
}

func distillRun(ctx context.Context, opts *DistillOptions) error {
	var ov []Override
	if len(opts.Seeds) > 0 {
		ov = append(ov, Override{Key: "seeds", Value: intList(opts.Seeds), Flag: "seeds"})
	}
	env, err := opts.G.NewEnv(ov...)
	if err != nil {
		return err
	}
	steps, err := opts.studentSteps(env)
	if err != nil {
		return err
	}
	env.Force = opts.Force
	return runStepsInProcess(ctx, env, steps)
}

// runStepsInProcess runs steps one after another in this process — the stage
// commands' executor. It keeps going after a failed step and returns all
// errors; a missing prerequisite names the command that makes it.
func runStepsInProcess(ctx context.Context, env *StepEnv, steps []plan.Step) error {
	var errs []error
	for _, s := range steps {
		err := env.RunStep(ctx, s)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return err
		case errors.Is(err, runstore.ErrBusy):
			env.G.Log.Warn("skip: another kdcal process is running it", "step", s.Key)
			errs = append(errs, err)
		default:
			env.G.Log.Error("failed", "step", s.Key, "err", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// kdSetup is the resolved distillation of one student step.
type kdSetup struct {
	kd         *train.KD
	calibrator string  // method applied to the teacher's logits (calibrated arm)
	calT       float64 // fitted temperature of a temp calibrator (1 otherwise)
	effT       float64 // τ·T_cal
	formula    string
}

// studentStep trains one student of the plan: raw, calibrated or scratch.
func studentStep(ctx context.Context, env *StepEnv, s plan.Step) error {
	cfg, g := env.Cfg, env.G
	splits, err := env.Data()
	if err != nil {
		return err
	}
	setup := kdSetup{calT: 1, formula: "loss = CE(y, s) (scratch: no teacher)"}
	if s.Arm != config.ArmScratch {
		if setup, err = resolveKD(env, s, splits); err != nil {
			return err
		}
	}
	seed := s.Seed
	st, err := env.Store.Begin(runstore.Manifest{Key: s.Key, Kind: runstore.KindStudent, ConfigHash: s.Hash, Inputs: s.Deps, Seed: &seed})
	if err != nil {
		return err
	}
	g.Log.Info("distill", "step", s.Key, "formula", setup.formula)
	st.SetParam("arm", s.Arm)
	st.SetParam("formula", setup.formula)
	if s.Arm != config.ArmScratch {
		st.SetParam("tau", s.Setting.Tau)
		st.SetParam("kd_weight", s.Setting.KDWeight)
		st.SetParam("ce_weight", cfg.KD.CEWeight)
		st.SetParam("effective_temperature", setup.effT)
	}
	recipe := cfg.Student.Train
	recipe.Epochs = s.Setting.Epochs
	label := "student " + strings.TrimPrefix(s.String(), "student ")
	job := train.Job{
		Label: label, Family: cfg.Student.Family, Spec: cfg.Student.Model, Recipe: recipe, RecipeKey: "student.train",
		Seed: s.Seed, Data: splits, KD: setup.kd, Bins: cfg.Calibration.Bins, WorkDir: st.Work(),
		Progress: g.Err, Log: g.Log, SkipTrainLogits: true,
		OnEpoch: func(r train.Record) { writeProgress(st, r.Epoch, recipe.Epochs) },
	}
	res, err := train.Run(ctx, job)
	if err == nil {
		err = writeStudent(st, env, s, splits, res, setup)
	}
	if err != nil {
		if ctx.Err() != nil {
			st.Release() // keep the checkpoint for a resume
			return err
		}
		return st.Fail(err)
	}
	if err := st.Commit(); err != nil {
		return err
	}
	g.Log.Info("student done", "step", s.Key, "test_acc", fmt.Sprintf("%.4f", res.Test.Accuracy),
		"test_ece", fmt.Sprintf("%.4f", res.Test.ECE), "seconds", fmt.Sprintf("%.1f", res.WallSeconds))
	return nil
}

// resolveKD reads the teacher's train logits, checks they belong to this
// train split, applies the calibrator for the calibrated arm and softens
// them at τ.
func resolveKD(env *StepEnv, s plan.Step, splits *data.Splits) (kdSetup, error) {
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
		if t, ok := cb.(interface{ Temperature() float64 }); ok {
			setup.calT = t.Temperature()
			transform = "t/" + strconv.FormatFloat(setup.calT, 'g', 4, 64)
		}
	}
	targets, err := distill.Targets(logits, c, s.Setting.Tau, cal)
	if err != nil {
		return kdSetup{}, fmt.Errorf("%s: %w", store.Dir(tkey), err)
	}
	setup.kd = &train.KD{Targets: targets, Tau: s.Setting.Tau, KDWeight: s.Setting.KDWeight, CEWeight: cfg.KD.CEWeight}
	setup.effT = s.Setting.Tau * setup.calT
	setup.formula = distill.Formula(cfg.KD.CEWeight, s.Setting.KDWeight, s.Setting.Tau, transform)
	return setup, nil
}

// writeStudent writes a trained student's outputs and summary.json.
func writeStudent(st *runstore.Step, env *StepEnv, s plan.Step, splits *data.Splits, res train.Result, setup kdSetup) error {
	if err := writeModelOutputs(st, env.Cfg, splits, res, false); err != nil {
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
		sum.Tau, sum.KDWeight, sum.CEWeight = s.Setting.Tau, s.Setting.KDWeight, env.Cfg.KD.CEWeight
		sum.Calibrator, sum.CalibrationTemperature, sum.EffectiveTemperature = setup.calibrator, setup.calT, setup.effT
	}
	if err := atomicfile.WriteJSON(st.Path(runstore.SummaryFile), sum); err != nil {
		return err
	}
	return removeResumeFiles(st)
}
