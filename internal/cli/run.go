package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/executor/local"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/runstore"
)

// RunOptions are the inputs of `kdcal run`.
type RunOptions struct {
	G        *Globals
	DryRun   bool
	Executor string
	Workers  int
	Stages   []string
}

// NewCmdRun builds `kdcal run`.
func NewCmdRun(g *Globals, runF func(context.Context, *RunOptions) error) *cobra.Command {
	opts := &RunOptions{G: g}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the whole study: teachers, calibration, students, report (resumable, parallel)",
		Long: `Run the whole study as a plan of steps: teacher(size, seed) → calibration(method,
size, seed) → student(setting, arm, size, seed) → report. Each step is keyed by a hash
of exactly the configuration it depends on: finished steps with the same hash are
skipped, so a rerun after a crash, Ctrl-C or kill -9 resumes where it stopped (a
training step loses at most its unfinished epoch), and changing a KD setting re-runs
only the students and the report.

Locally, independent steps run in parallel, one kdcal process per step with one BLAS
thread (--workers, default one per core); logs go to <experiment>/logs/. With
--executor slurm the plan is submitted as one job array per stage.`,
		Example: `  kdcal run --config configs/quick.yaml
  kdcal run --config configs/quick.yaml --dry-run
  kdcal run --config configs/paper.yaml --executor slurm`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.DryRun, "dry-run", false, "print the plan and what is already done, run nothing")
	f.StringVar(&opts.Executor, "executor", "", "local or slurm (default: run.executor)")
	f.IntVarP(&opts.Workers, "workers", "j", -1, "parallel steps (default: run.workers; 0 = one per core)")
	f.StringSliceVar(&opts.Stages, "stage", nil, "run only these stages: "+strings.Join(plan.Stages, ", "))
	return cmd
}

func (o *RunOptions) overrides() []Override {
	var ov []Override
	if o.Executor != "" {
		ov = append(ov, Override{Key: "run.executor", Value: o.Executor, Flag: "executor"})
	}
	if o.Workers >= 0 {
		ov = append(ov, Override{Key: "run.workers", Value: fmt.Sprint(o.Workers), Flag: "workers"})
	}
	return ov
}

func runRun(ctx context.Context, opts *RunOptions) error {
	g := opts.G
	env, err := g.NewEnv(opts.overrides()...)
	if err != nil {
		return err
	}
	for _, s := range opts.Stages {
		if !slices.Contains(plan.Stages, s) {
			return usageErrorf("--stage %q: use one of %s", s, strings.Join(plan.Stages, ", "))
		}
	}
	steps := env.Plan.Filter(func(s plan.Step) bool { return len(opts.Stages) == 0 || slices.Contains(opts.Stages, s.Stage) })
	if opts.DryRun {
		printPlan(g.Out, env, steps)
		return nil
	}
	resolved, err := writeRunConfig(env)
	if err != nil {
		return err
	}
	childArgs := []string{"--config", resolved, "--experiment", env.Store.Root, "--log-level", g.LogLevel}
	if env.Cfg.Run.Executor == "slurm" {
		return runSlurm(ctx, env, steps, childArgs)
	}
	workers := env.Cfg.Run.Workers
	if workers == 0 {
		workers = runtime.NumCPU()
	}
	exe, err := executable()
	if err != nil {
		return err
	}
	runner := &local.Subprocess{Exe: exe, Args: childArgs, Env: childEnv(g.Env), LogDir: filepath.Join(env.Store.Root, "logs"),
		BLASThreads: env.Cfg.Run.BLASThreads}
	fmt.Fprintf(g.Err, "kdcal run: %d steps in %s, %d workers, logs in %s\n", len(steps), env.Store.Root, workers, runner.LogDir)
	res := local.Execute(ctx, steps, runner, local.Options{
		Workers:      workers,
		Done:         func(key string) bool { return stepDone(env, key) },
		Progress:     g.Err,
		Terminal:     isTerminal(g.Err),
		StepProgress: func(s plan.Step) (float64, string, bool) { return readProgress(env.Store, s) },
	})
	printRunSummary(g.Err, res, runner)
	return res.Err()
}

// stepDone reports whether a plan step is finished with its current hash.
func stepDone(env *StepEnv, key string) bool {
	s, ok := env.Plan.Get(key)
	return ok && env.Store.Done(key, s.Hash)
}

// writeRunConfig stores the resolved configuration that every step process
// reads, so all of them see exactly what this process resolved.
func writeRunConfig(env *StepEnv) (string, error) {
	b, err := ResolvedYAML(env.Cfg)
	if err != nil {
		return "", err
	}
	p := filepath.Join(env.Store.Root, "run", "config.yaml")
	if err := atomicfile.Write(p, b); err != nil {
		return "", err
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return abs, nil
}

// childEnv drops KDCAL_* variables: children read the resolved config only.
func childEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, config.EnvPrefix) {
			out = append(out, kv)
		}
	}
	return out
}

func printPlan(w io.Writer, env *StepEnv, steps []plan.Step) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tSTEP\tSTATUS\tHASH")
	counts := map[string]int{}
	for _, s := range steps {
		status := stepStatus(env, s)
		counts[status]++
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Stage, s.Key, status, s.Hash)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d steps: %d done, %d to run (%d resumable, %d stale), experiment %s\n", len(steps), counts["done"],
		len(steps)-counts["done"], counts["resumable"], counts["stale"], env.Store.Root)
}

// stepStatus is done | stale (done with another configuration) | failed |
// resumable (an interrupted run left its work directory) | invalid | pending.
func stepStatus(env *StepEnv, s plan.Step) string {
	switch state, _ := env.Store.State(s.Key, s.Hash); state {
	case runstore.StatePartial:
		return "resumable"
	case runstore.StateMissing:
		return "pending"
	default:
		return string(state)
	}
}

func printRunSummary(w io.Writer, res local.Result, runner *local.Subprocess) {
	fmt.Fprintf(w, "kdcal run: %d done, %d already done, %d failed, %d blocked, %d cancelled in %s\n",
		res.Count(local.Done), res.Count(local.Skipped), res.Count(local.Failed), res.Count(local.Blocked),
		res.Count(local.Cancelled), res.Elapsed.Round(time.Second))
	for _, o := range res.Outcomes {
		switch o.Status {
		case local.Failed:
			fmt.Fprintf(w, "  failed  %s (log %s)\n", o.Key, runner.LogPath(o.Key))
		case local.Blocked:
			fmt.Fprintf(w, "  blocked %s: %v\n", o.Key, o.Err)
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
