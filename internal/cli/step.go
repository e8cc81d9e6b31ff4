package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/data"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/runstore"
	"github.com/kdcal/kdcal/internal/train"
)

// StepEnv is what a stage's step function gets.
type StepEnv struct {
	G     *Globals
	Cfg   *config.Config
	Store *runstore.Store
	Plan  *plan.Plan

	splits  *data.Splits                       // loaded on first use by Data
	onEpoch func(label string, r train.Record) // test hook: called after each teacher epoch
}

// Data loads the configured dataset once and returns its splits.
func (env *StepEnv) Data() (*data.Splits, error) {
	if env.splits == nil {
		s, err := data.Load(env.Cfg.Data)
		if err != nil {
			return nil, err
		}
		env.splits = s
	}
	return env.splits, nil
}

// stepFunc runs one step of a stage; it must publish the step through the
// store (Begin … Commit) under s.Key with s.Hash.
type stepFunc func(ctx context.Context, env *StepEnv, s plan.Step) error

// stepFuncs holds the step function of each stage; each stage's command
// file registers its own in an init function.
var stepFuncs = map[string]stepFunc{}

func registerStep(stage string, f stepFunc) { stepFuncs[stage] = f }

// hint names the command that produces a step, for missing-prerequisite
// errors, with the --config and --experiment of this invocation so that it
// can be run as printed.
func (env *StepEnv) hint(s plan.Step) string {
	cmd := stageCommand(s)
	if f := env.G.ConfigFile; f != "" {
		cmd += " --config " + f
	}
	if e := env.G.Experiment; e != "" {
		cmd += " --experiment " + e
	}
	return cmd
}

func stageCommand(s plan.Step) string {
	switch s.Stage {
	case plan.StageTeachers:
		return fmt.Sprintf("kdcal train-teachers --sizes %s --seeds %d", s.Size, s.Seed)
	case plan.StageCalibration:
		return fmt.Sprintf("kdcal calibrate --method %s --teacher %s --seeds %d", s.Method, s.Size, s.Seed)
	case plan.StageStudents:
		if s.Arm == config.ArmScratch {
			return fmt.Sprintf("kdcal distill --arm scratch --seeds %d", s.Seed)
		}
		return fmt.Sprintf("kdcal distill --teacher %s --arm %s --seeds %d", s.Size, s.Arm, s.Seed)
	default:
		return "kdcal report"
	}
}

// NewEnv loads the configuration (with overrides), opens the store and builds the plan.
func (g *Globals) NewEnv(overrides ...Override) (*StepEnv, error) {
	cfg, err := g.LoadConfig(overrides...)
	if err != nil {
		return nil, err
	}
	store, err := g.OpenStore(cfg)
	if err != nil {
		return nil, err
	}
	return &StepEnv{G: g, Cfg: cfg, Store: store, Plan: plan.Build(cfg)}, nil
}

// RequireDeps checks that every dependency of s is done with its current
// hash, returning a *runstore.MissingError naming the command that makes it.
func (env *StepEnv) RequireDeps(s plan.Step) error {
	for _, d := range s.Deps {
		dep, ok := env.Plan.Get(d)
		if !ok {
			continue
		}
		if env.Store.Done(d, dep.Hash) {
			continue
		}
		if _, done := env.Store.Manifest(d); done {
			return &runstore.MissingError{Key: filepath.Join(env.Store.Root, d) + " (stale: made with another configuration)", Hint: env.hint(dep)}
		}
		return &runstore.MissingError{Key: filepath.Join(env.Store.Root, d), Hint: env.hint(dep)}
	}
	return nil
}

// RunStep runs one step unless it is already done with the same hash.
func (env *StepEnv) RunStep(ctx context.Context, s plan.Step) error {
	if env.Store.Done(s.Key, s.Hash) {
		env.G.Log.Info("skip: already done", "step", s.Key)
		return nil
	}
	if err := env.RequireDeps(s); err != nil {
		return err
	}
	f := stepFuncs[s.Stage]
	if f == nil {
		return &NotYetError{What: "the " + s.Stage + " stage"}
	}
	t0 := time.Now()
	env.G.Log.Info("start", "step", s.Key)
	if err := f(ctx, env, s); err != nil {
		return err
	}
	env.G.Log.Info("done", "step", s.Key, "seconds", time.Since(t0).Round(time.Millisecond).Seconds())
	return nil
}

// Progress is written by training steps into their work directory after
// every epoch, so that `kdcal run` can show progress and estimate the time left.
type Progress struct {
	Epoch  int `json:"epoch"`
	Epochs int `json:"epochs"`
}

// ProgressFile is the name of the progress file in a step's work directory.
const ProgressFile = "progress.json"

// writeProgress records epoch/epochs in the running step's work dir (best effort).
func writeProgress(st *runstore.Step, epoch, epochs int) {
	_ = atomicfile.WriteJSON(st.Path(ProgressFile), Progress{Epoch: epoch, Epochs: epochs})
}

// readProgress returns a running step's fraction done from its progress file.
func readProgress(store *runstore.Store, s plan.Step) (float64, string, bool) {
	var p Progress
	if err := atomicfile.ReadJSON(filepath.Join(store.Dir(s.Key)+".partial", ProgressFile), &p); err != nil || p.Epochs == 0 {
		return 0, "", false
	}
	return float64(p.Epoch) / float64(p.Epochs), fmt.Sprintf("epoch %d/%d", p.Epoch, p.Epochs), true
}

// NewCmdStep builds the hidden `kdcal step KEY`, which runs exactly one step
// of the plan; `kdcal run` and the Slurm executor launch it per step.
func NewCmdStep(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:    "step KEY",
		Short:  "Run one step of the study's plan (used by `kdcal run` and the Slurm executor)",
		Hidden: true,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("give exactly one step key, e.g. kdcal step teachers/large/seed-0 (kdcal run --dry-run lists them)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := g.NewEnv()
			if err != nil {
				return err
			}
			s, ok := env.Plan.Get(args[0])
			if !ok {
				return usageErrorf("%q is not a step of this study's plan; `kdcal run --dry-run` lists them", args[0])
			}
			return env.RunStep(cmd.Context(), s)
		},
	}
}

// executable returns the path of the running kdcal binary.
func executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("cannot find the kdcal binary to start steps: %w", err)
	}
	return exe, nil
}
