package cli

import (
	"context"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/executor"
	"github.com/kdcal/kdcal/internal/pipeline"
	"github.com/kdcal/kdcal/internal/plan"
)

// DistillOptions are the inputs of `kdcal distill`.
type DistillOptions struct {
	G        *Globals
	Teacher  string   // size or all
	Arms     []string // raw, calibrated, scratch or all
	Seeds    []int
	Setting  string // KD setting name (e.g. tau4-kdw0.9-ep20) or all
	Force    bool   // retrain finished students
	Workers  int    // parallel steps (-1: run.workers)
	Executor string // local or slurm ("": run.executor)
	JSON     bool   // print a StageDoc
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
ones resume.

` + stageExecHelp,
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
	addExecFlags(cmd, &opts.Workers, &opts.Executor)
	addJSONFlag(cmd, &opts.JSON)
	return cmd
}

// studentSteps selects the plan's student steps matching the options.
func (o *DistillOptions) studentSteps(env *pipeline.Env) ([]plan.Step, error) {
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

func settingEpochs(env *pipeline.Env, name string) int {
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
	env, err := opts.G.NewEnv(append(ov, execOverrides(opts.Workers, opts.Executor)...)...)
	if err != nil {
		return err
	}
	steps, err := opts.studentSteps(env)
	if err != nil {
		return err
	}
	r := stageRun{name: "distill", skipMsg: "skip: already done (use --force to redo it)", force: opts.Force}
	if !opts.JSON {
		return opts.G.runStage(ctx, env, steps, r)
	}
	var res executor.Result
	r.result = &res
	err = opts.G.runStage(ctx, env, steps, r)
	return opts.G.printStageJSON("distill", env, steps, res, err)
}
