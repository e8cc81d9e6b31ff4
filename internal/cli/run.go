package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/executor"
	"github.com/kdcal/kdcal/internal/pipeline"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/runstore"
)

// RunOptions are the inputs of `kdcal run`.
type RunOptions struct {
	G         *Globals
	DryRun    bool
	Verify    bool // check finished steps' SHA-256, not only their files' sizes
	Executor  string
	Workers   int
	Stages    []string
	JSON      bool     // --dry-run --json: print a PlanDoc
	RatesFrom []string // --rates-from: more stores to measure step rates in
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

A finished step is done only while its outputs are intact: every file its manifest
records must exist with its size (and, with --verify, its SHA-256). A damaged step is
shown as damaged and run again. Steps that another kdcal process is running are
skipped (busy) and everything else runs; the exit status is then 6.

Locally, independent steps run in parallel, one kdcal process per step with one BLAS
thread (--workers, default one per core); each attempt at a step logs to its own
<experiment>/logs/<step>.<time>-<pid>.log, and <step>.log links to the latest. With
--executor slurm the plan is submitted as one job array per stage.

--dry-run reads the store and writes nothing (it works on a read-only store). It prints
every step with its state and hash, and an estimate: each step's seconds on one core are
its cost (multiply-adds of training, or one calibration or report) times a rate measured
on the finished steps of this store (and of --rates-from stores), or the build's default
rate when nothing comparable has finished; the total in core-hours and the wall-clock of
--workers workers follow, with where each rate came from. --json prints all of it as one
JSON document (docs/json.md).`,
		Example: `  kdcal run --config configs/quick.yaml
  kdcal run --config configs/quick.yaml --dry-run --verify
  kdcal run --config configs/study.yaml --dry-run --rates-from experiments/quick --json
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
	f.BoolVar(&opts.DryRun, "dry-run", false, "print the plan and what is already done, run nothing and write nothing")
	f.BoolVar(&opts.Verify, "verify", false, "check the SHA-256 of every finished step's outputs (default: that each exists with its size)")
	f.StringVar(&opts.Executor, "executor", "", "local or slurm (default: run.executor)")
	f.IntVarP(&opts.Workers, "workers", "j", -1, "parallel steps (default: run.workers; 0 = one per core)")
	f.StringSliceVar(&opts.Stages, "stage", nil, "run only these stages: "+strings.Join(plan.Stages, ", "))
	f.BoolVar(&opts.JSON, "json", false, "with --dry-run: print the plan and the estimate as one JSON document (docs/json.md)")
	f.StringArrayVar(&opts.RatesFrom, "rates-from", nil, "with --dry-run: also measure step rates on this experiment directory's finished steps (repeatable)")
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
	for _, s := range opts.Stages {
		if !slices.Contains(plan.Stages, s) {
			return usageErrorf("--stage %q: use one of %s", s, strings.Join(plan.Stages, ", "))
		}
	}
	if !opts.DryRun && (opts.JSON || len(opts.RatesFrom) > 0) {
		return usageErrorf("--json and --rates-from go with --dry-run (a run prints its progress, not a document)")
	}
	newEnv := g.NewEnv
	if opts.DryRun {
		newEnv = g.NewReadEnv
	}
	env, err := newEnv(opts.overrides()...)
	if err != nil {
		return err
	}
	env.Store.Verify = opts.Verify
	steps := env.Plan.Filter(func(s plan.Step) bool { return len(opts.Stages) == 0 || slices.Contains(opts.Stages, s.Stage) })
	if opts.DryRun {
		stores := []string{stepsRoot(env.Store.Root)}
		for _, d := range opts.RatesFrom {
			if _, err := runstore.CheckStoreDir(d); err != nil {
				return fmt.Errorf("--rates-from: %w", err)
			}
			stores = append(stores, stepsRoot(d))
		}
		est := estimatePlan(env, steps, MeasureRates(env.Cfg, stores))
		if opts.JSON {
			return printJSON(g.Out, planDoc(env, steps, est))
		}
		printPlan(g.Out, env, steps, est)
		printEstimate(g.Out, env, est)
		printConfigs(g.Out, env)
		return nil
	}
	args, err := stepArgs(g, env, opts.Verify, false)
	if err != nil {
		return err
	}
	done := doneOnce(env)
	todo := 0
	for _, s := range steps {
		if !done(s.Key) {
			todo++
		}
	}
	if env.Cfg.Run.Executor == "slurm" && todo == 0 {
		fmt.Fprintf(g.Err, "kdcal run: all %d steps are done\n", len(steps))
		return nil
	}
	if err := g.Pipe.Check(ctx, env, slices.DeleteFunc(slices.Clone(steps), func(s plan.Step) bool { return done(s.Key) })); err != nil {
		return err // the stages' input checks (external teachers): before anything runs
	}
	ex, err := g.newExecutor(ctx, env, args, "kdcal run", len(steps), todo, false)
	if err != nil {
		return err
	}
	defer ex.release()
	res, err := ex.Execute(ctx, steps, executor.Options{
		Done:         done,
		Progress:     g.Err,
		Terminal:     isTerminal(g.Err),
		StepProgress: func(s plan.Step) (float64, string, bool) { return pipeline.ReadProgress(env.Store, s) },
	})
	if err != nil {
		return err
	}
	printSummary(g.Err, "kdcal run", res)
	return res.Err()
}

// printConfigs lists the configurations the store was written with (its
// configs/ history) and marks the current one.
func printConfigs(w io.Writer, env *pipeline.Env) {
	entries, err := env.Store.Configs()
	if err != nil {
		fmt.Fprintf(w, "configurations: cannot list %s: %v\n", filepath.Join(env.Store.Root, runstore.ConfigsDir), err)
		return
	}
	cur := runstore.Hash(env.Cfg)
	if len(entries) == 0 {
		latest := filepath.Join(env.Store.Root, "config.yaml")
		if _, err := os.Stat(latest); err != nil {
			fmt.Fprintf(w, "this configuration: %s (not yet used in this store)\n", cur)
			return
		}
		same := "another configuration than this one (" + cur + ")"
		if old, err := config.Load(config.Source{File: latest}); err == nil && runstore.Hash(old) == cur {
			same = "this configuration (" + cur + ")"
		}
		fmt.Fprintf(w, "configurations: only %s, which holds %s; the store predates the configuration history, the next run keeps it in %s/\n",
			latest, same, runstore.ConfigsDir)
		return
	}
	fmt.Fprintf(w, "configurations this store was written with (%s/):\n", filepath.Join(env.Store.Root, runstore.ConfigsDir))
	found := false
	for _, c := range entries {
		mark := ""
		if c.Hash == cur {
			mark, found = "  ← this configuration", true
		}
		fmt.Fprintf(w, "  %-16s first used %s%s\n", c.Hash, c.FirstUsed.Format(time.RFC3339), mark)
	}
	if !found {
		fmt.Fprintf(w, "this configuration: %s (not yet used in this store)\n", cur)
	}
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

func printPlan(w io.Writer, env *pipeline.Env, steps []plan.Step, est planEstimate) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tSTEP\tSTATUS\tHASH\tEST\tNOTE")
	counts := map[string]int{}
	for _, s := range steps {
		st := est.states[s.Key]
		counts[st.status]++
		secs := "-"
		if se := est.Steps[s.Key]; se.Left > 0 && !se.Blocked {
			secs = durationText(se.Seconds)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Stage, s.Key, st.status, s.Hash, secs, st.note)
	}
	tw.Flush()
	done := counts["done"] + counts["unverified"]
	fmt.Fprintf(w, "\n%d steps: %d done, %d to run (%d resumable, %d stale, %d damaged), experiment %s\n", len(steps), done,
		len(steps)-done, counts["resumable"], counts["stale"], counts["damaged"], env.Store.Root)
	check := "each output file exists with its recorded size"
	if env.Store.Verify {
		check = "each output file exists with its recorded size and SHA-256"
	}
	fmt.Fprintf(w, "done means: %s", check)
	if n := counts["unverified"]; n > 0 {
		fmt.Fprintf(w, "; %d unverified steps finished before kdcal recorded output sizes and hashes, so nothing could be checked", n)
	}
	fmt.Fprintln(w)
	if counts["damaged"] > 0 {
		fmt.Fprintln(w, "damaged steps are redone by `kdcal run` (with --verify when only a hash differs), "+
			"or by their stage command with --force (train-teachers, calibrate, distill)")
	}
}

// stepStatus is done | unverified (done, with no recorded outputs to check)
// | damaged (done, an output missing or changed) | stale (done with another
// configuration) | failed | resumable (an interrupted run left its work
// directory) | invalid | pending, with the reason for the last five.
func stepStatus(env *pipeline.Env, s plan.Step) (string, string) {
	in := env.Store.Inspect(s.Key, s.Hash, env.Store.Verify)
	switch {
	case in.State == runstore.StateDone && in.Unverified:
		return "unverified", ""
	case in.State == runstore.StatePartial:
		return "resumable", ""
	case in.State == runstore.StateMissing:
		return "pending", ""
	case in.State == runstore.StateStale:
		return string(in.State), ""
	default:
		return string(in.State), in.Reason
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
