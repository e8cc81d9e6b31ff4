package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/data"
	"github.com/kdcal/kdcal/internal/model"
	"github.com/kdcal/kdcal/internal/npyfile"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/runstore"
	"github.com/kdcal/kdcal/internal/train"
	"github.com/kdcal/kdcal/internal/version"
)

func init() { registerStep(plan.StageTeachers, teacherStep) }

// TrainTeachersOptions are the inputs of `kdcal train-teachers`.
type TrainTeachersOptions struct {
	G         *Globals
	Sizes     []string // subset of teacher.sizes (default: all)
	Seeds     []int    // subset of seeds (default: all)
	ListSizes bool     // print the size table and exit
	Force     bool     // retrain finished teachers

	onEpoch func(label string, r train.Record) // test hook, called after each epoch's checkpoint
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
run. A progress bar is shown on a terminal, one log line per epoch otherwise.`,
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
	return ov
}

func trainTeachersRun(ctx context.Context, opts *TrainTeachersOptions) error {
	g := opts.G
	if opts.ListSizes {
		cfg, err := g.LoadConfig(opts.overrides()...)
		if err != nil {
			return err
		}
		return listSizes(g.Out, cfg)
	}
	env, err := g.NewEnv(opts.overrides()...)
	if err != nil {
		return err
	}
	env.onEpoch, env.Force = opts.onEpoch, opts.Force
	return runStepsInProcess(ctx, env, env.Plan.Filter(func(s plan.Step) bool { return s.Stage == plan.StageTeachers }))
}

// teacherStep runs one teacher step of the plan (`kdcal step`, `kdcal run`).
//
// It trains the teacher of step s into its store directory: Begin, train
// (resuming from a checkpoint in the work directory), write the outputs,
// Commit. A failure marks the step failed (nothing is published); an
// interruption leaves the work directory for a resume.
func teacherStep(ctx context.Context, env *StepEnv, s plan.Step) error {
	cfg, g := env.Cfg, env.G
	splits, err := env.Data()
	if err != nil {
		return err
	}
	spec, _ := cfg.Teacher.Spec(s.Size) // plan steps come from teacher.sizes, which Validate checks
	seed := s.Seed
	st, err := env.Store.Begin(runstore.Manifest{Key: s.Key, Kind: runstore.KindTeacher, ConfigHash: s.Hash, Seed: &seed})
	if err != nil {
		return err
	}
	label := fmt.Sprintf("teacher %s seed %d", s.Size, s.Seed)
	epochs := cfg.Teacher.Train.Epochs
	job := train.Job{
		Label: label, Family: cfg.Teacher.Family, Spec: spec,
		Recipe: cfg.Teacher.Train, RecipeKey: "teacher.train", Seed: s.Seed,
		Data: splits, Bins: cfg.Calibration.Bins, WorkDir: st.Work(),
		Progress: g.Err, Log: g.Log,
		OnEpoch: func(r train.Record) {
			writeProgress(st, r.Epoch, epochs)
			if env.onEpoch != nil {
				env.onEpoch(label, r)
			}
		},
	}
	res, err := train.Run(ctx, job)
	if err == nil {
		err = writeTeacher(st, cfg, s, splits, res)
	}
	if err != nil {
		if ctx.Err() != nil {
			st.Release() // keep the work directory: a rerun resumes
			return err
		}
		return st.Fail(err)
	}
	st.SetParam("family", cfg.Teacher.Family)
	st.SetParam("spec", spec)
	st.SetParam("params", res.Params)
	st.SetParam("resumed_from_epoch", res.ResumedFrom)
	if err := st.Commit(); err != nil {
		return err
	}
	g.Log.Info("teacher done", "step", s.Key, "params", res.Params, "test_acc", fmt.Sprintf("%.4f", res.Test.Accuracy),
		"test_ece", fmt.Sprintf("%.4f", res.Test.ECE), "seconds", fmt.Sprintf("%.1f", res.WallSeconds))
	return nil
}

// writeTeacher writes a trained teacher's outputs into the step's work
// directory (see internal/runstore/doc.go) and removes the resume files.
func writeTeacher(st *runstore.Step, cfg *config.Config, s plan.Step, splits *data.Splits, res train.Result) error {
	if err := writeModelOutputs(st, cfg, splits, res, true); err != nil {
		return err
	}
	spec, _ := cfg.Teacher.Spec(s.Size)
	sum := runstore.TeacherSummary{Size: s.Size, Seed: s.Seed, Family: cfg.Teacher.Family, Spec: spec, Params: res.Params,
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
	scale := 1.0 / 255 // data.Load scales pixels to [0, 1]; the synthetic set is used as generated
	if cfg.Data.Dataset == "synthetic" {
		scale = 1
	}
	meta := model.Meta{Dataset: cfg.Data.Dataset, Scale: scale, Mean: splits.Mean, Std: splits.Std, Version: version.Get().Version}
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

// removeResumeFiles deletes the checkpoint and progress file of a finished
// training step before it is published.
func removeResumeFiles(st *runstore.Step) error {
	for _, f := range []string{train.CheckpointFile, ProgressFile} {
		if err := os.Remove(st.Path(f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// listSizes prints the teacher size table of the configured family and the
// student, with parameter counts for the configured dataset's input shape.
func listSizes(w io.Writer, cfg *config.Config) error {
	c, h, wd, classes := data.Shape(cfg.Data)
	fmt.Fprintf(w, "Teacher sizes, family %s, input %d×%d×%d, %d classes (%s); * = in teacher.sizes\n",
		cfg.Teacher.Family, c, h, wd, classes, cfg.Data.Dataset)
	selected := map[string]bool{}
	for _, s := range cfg.Teacher.Sizes {
		selected[s] = true
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  SIZE\t    PARAMS\tARCHITECTURE")
	table := cfg.Teacher.Table()
	lo, hi := 0, 0
	for _, name := range sizeOrder(table) {
		a, err := model.NewArch(cfg.Teacher.Family, table[name], c, h, wd, classes)
		if err != nil {
			return &config.Error{Key: "teacher." + cfg.Teacher.Family + "." + name, Msg: err.Error()}
		}
		mark := " "
		if selected[name] {
			mark = "*"
		}
		n := a.NumParams()
		if lo == 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
		fmt.Fprintf(tw, "%s %s\t%10s\t%s\n", mark, name, thousands(n), a)
	}
	sa, err := model.NewArch(cfg.Student.Family, cfg.Student.Model, c, h, wd, classes)
	if err != nil {
		return &config.Error{Key: "student.model", Msg: err.Error()}
	}
	fmt.Fprintf(tw, "  student\t%10s\t%s\n", thousands(sa.NumParams()), sa)
	if err := tw.Flush(); err != nil {
		return err
	}
	if lo > 0 {
		fmt.Fprintf(w, "The teacher sizes span %.0f× in parameter count.\n", float64(hi)/float64(lo))
	}
	return nil
}

// sizeOrder lists size names for display: the conventional names in
// increasing size (tiny … xlarge), then any others alphabetically.
func sizeOrder(table map[string]config.ModelSpec) []string {
	conventional := []string{"tiny", "small", "medium", "large", "xlarge"}
	var out []string
	for _, n := range conventional {
		if _, ok := table[n]; ok {
			out = append(out, n)
		}
	}
	for _, n := range config.SortedNames(table) {
		if !slices.Contains(conventional, n) {
			out = append(out, n)
		}
	}
	return out
}

// thousands formats n with thousands separators, e.g. 1,682,954.
func thousands(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}
