package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/kdcal/kdcal/internal/executor"
	"github.com/kdcal/kdcal/internal/plan"
)

// TrainTeachersOptions are the inputs of `kdcal train-teachers`.
type TrainTeachersOptions struct {
	G         *Globals
	Sizes     []string // subset of teacher.sizes (default: all)
	Seeds     []int    // subset of seeds (default: all)
	ListSizes bool     // print the size table and exit
	Force     bool     // retrain finished teachers
	Workers   int      // parallel steps (-1: run.workers)
	Executor  string   // local or slurm ("": run.executor)
	JSON      bool     // print a StageDoc
}

// NewCmdTrainTeachers builds `kdcal train-teachers`.
func NewCmdTrainTeachers(g *Globals, runF func(*TrainTeachersOptions) error) *cobra.Command {
	opts := &TrainTeachersOptions{G: g}
	cmd := &cobra.Command{
		Use:   "train-teachers",
		Short: "Train every (size, seed) teacher and store checkpoints and logits",
		Long: `Train one teacher per (size, seed) of teacher.sizes × seeds into the experiment
directory: teachers/<size>/seed-<n>/ gets model.safetensors (PyTorch layout, model config
in the metadata), metrics.jsonl (one record per epoch), summary.json, and float32 N×C
logits with int64 labels for the train split (data index order), the validation split and
the official test set (official order).

A finished (size, seed) is skipped (--force retrains it; a damaged one, with an
output file missing or changed, is retrained anyway). An interrupted one (Ctrl-C, crash, kill) resumes from
its last epoch checkpoint and ends with the same weights and logits as an uninterrupted
run.

` + stageExecHelp,
		Example: `  kdcal train-teachers --config configs/quick.yaml
  kdcal train-teachers --sizes small,large --seeds 0,1
  kdcal train-teachers --list-sizes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return trainTeachersRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringSliceVar(&opts.Sizes, "sizes", nil, "teacher sizes to train, e.g. small,large (default: teacher.sizes)")
	cmd.Flags().IntSliceVar(&opts.Seeds, "seeds", nil, "seeds to train, e.g. 0,1,2 (default: seeds)")
	cmd.Flags().BoolVar(&opts.ListSizes, "list-sizes", false, "print each size with its parameter count and exit")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "retrain teachers that are already done")
	addExecFlags(cmd, &opts.Workers, &opts.Executor)
	addJSONFlag(cmd, &opts.JSON)
	return cmd
}

// overrides turns --sizes and --seeds into config overrides, so that an
// undefined size is a configuration error listing the defined ones.
func (o *TrainTeachersOptions) overrides() []Override {
	var ov []Override
	if len(o.Sizes) > 0 {
		ov = append(ov, Override{Key: "teacher.sizes", Value: stringList(o.Sizes), Flag: "sizes"})
	}
	if len(o.Seeds) > 0 {
		ov = append(ov, Override{Key: "seeds", Value: intList(o.Seeds), Flag: "seeds"})
	}
	return append(ov, execOverrides(o.Workers, o.Executor)...)
}

func trainTeachersRun(ctx context.Context, opts *TrainTeachersOptions) error {
	g := opts.G
	if opts.ListSizes && opts.JSON {
		return usageErrorf("--list-sizes prints a table; it has no --json form (drop --json)")
	}
	if opts.ListSizes {
		cfg, err := g.LoadConfig(opts.overrides()...)
		if err != nil {
			return err
		}
		cat, err := g.catalog()
		if err != nil {
			return err
		}
		return cat.ListSizes(g.Out, cfg)
	}
	env, err := g.NewEnv(opts.overrides()...)
	if err != nil {
		return err
	}
	steps := env.Plan.Filter(func(s plan.Step) bool { return s.Stage == plan.StageTeachers })
	r := stageRun{name: "train-teachers", skipMsg: "skip: already done (use --force to redo it)", force: opts.Force}
	if !opts.JSON {
		return g.runStage(ctx, env, steps, r)
	}
	var res executor.Result
	r.result = &res
	err = g.runStage(ctx, env, steps, r)
	return g.printStageJSON("train-teachers", env, steps, res, err)
}
