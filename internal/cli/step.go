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
	// ConfigFile is the store's copy of the resolved configuration
	// (configs/<hash>.yaml), which `kdcal run` passes to its step processes;
	// empty for a read-only env.
	ConfigFile string
	// Force redoes steps that are already done (--force).
	Force bool

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
		return fmt.Sprintf("kdcal distill --teacher %s --arm %s --seeds %d --setting %s", s.Size, s.Arm, s.Seed, s.Setting.Name())
	default:
		return "kdcal report"
	}
}

// redoHint names the command that redoes a finished step (a damaged one):
// the stage command with --force.
func (env *StepEnv) redoHint(s plan.Step) string {
	if s.Stage == plan.StageReport {
		return env.hint(s)
	}
	cmd := stageCommand(s) + " --force"
	if f := env.G.ConfigFile; f != "" {
		cmd += " --config " + f
	}
	if e := env.G.Experiment; e != "" {
		cmd += " --experiment " + e
	}
	return cmd
}

// NewEnv loads the configuration (with overrides), opens the store for
// writing (recording the configuration) and builds the plan.
func (g *Globals) NewEnv(overrides ...Override) (*StepEnv, error) {
	cfg, err := g.LoadConfig(overrides...)
	if err != nil {
		return nil, err
	}
	store, path, err := g.OpenStore(cfg)
	if err != nil {
		return nil, err
	}
	return &StepEnv{G: g, Cfg: cfg, Store: store, Plan: plan.Build(cfg), ConfigFile: path}, nil
}

// NewReadEnv is NewEnv for commands that only read the store (run
// --dry-run): it checks the experiment directory as a real run would, but
// creates and writes nothing, so it works on a read-only store.
func (g *Globals) NewReadEnv(overrides ...Override) (*StepEnv, error) {
	cfg, err := g.LoadConfig(overrides...)
	if err != nil {
		return nil, err
	}
	root := g.ExperimentDir(cfg)
	if _, err := runstore.CheckStoreDir(root); err != nil {
		return nil, err
	}
	return &StepEnv{G: g, Cfg: cfg, Store: &runstore.Store{Root: root}, Plan: plan.Build(cfg)}, nil
}

// RequireDeps checks that every dependency of s is done with its current
// hash and intact — every output's size and SHA-256 as its manifest records
// (the step is about to read them) — returning a *runstore.MissingError
// naming the command that makes or redoes it.
func (env *StepEnv) RequireDeps(s plan.Step) error {
	for _, d := range s.Deps {
		dep, ok := env.Plan.Get(d)
		if !ok {
			continue
		}
		in := env.Store.Inspect(d, dep.Hash, true)
		switch in.State {
		case runstore.StateDone:
			continue
		case runstore.StateStale:
			return &runstore.MissingError{Key: filepath.Join(env.Store.Root, d) + " (stale: made with another configuration)", Hint: env.hint(dep)}
		case runstore.StateDamaged:
			return &runstore.MissingError{Key: filepath.Join(env.Store.Root, d), Reason: "damaged: " + in.Reason, Hint: env.redoHint(dep)}
		}
		return &runstore.MissingError{Key: filepath.Join(env.Store.Root, d), Hint: env.hint(dep)}
	}
	return nil
}

// RunStep runs one step unless it is already done with the same hash (and
// env.Force is off). A damaged step is not done: it is run again.
func (env *StepEnv) RunStep(ctx context.Context, s plan.Step) error {
	if !env.Force {
		switch in := env.Store.Inspect(s.Key, s.Hash, env.Store.Verify); in.State {
		case runstore.StateDone:
			env.G.Log.Info("skip: already done (use --force to redo it)", "step", s.Key)
			return nil
		case runstore.StateDamaged:
			env.G.Log.Warn("redo: damaged", "step", s.Key, "reason", in.Reason)
		}
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
	var verify bool
	cmd := &cobra.Command{
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
			env.Store.Verify = verify
			s, ok := env.Plan.Get(args[0])
			if !ok {
				return usageErrorf("%q is not a step of this study's plan; `kdcal run --dry-run` lists them", args[0])
			}
			return env.RunStep(cmd.Context(), s)
		},
	}
	cmd.Flags().BoolVar(&verify, "verify", false, "check the SHA-256 of a finished step's outputs before skipping it")
	return cmd
}

// executable returns the path of the running kdcal binary.
func executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("cannot find the kdcal binary to start steps: %w", err)
	}
	return exe, nil
}
