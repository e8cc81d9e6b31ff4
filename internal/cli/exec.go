package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/executor"
	"github.com/kdcal/kdcal/internal/executor/inprocess"
	"github.com/kdcal/kdcal/internal/executor/local"
	"github.com/kdcal/kdcal/internal/executor/slurm"
	"github.com/kdcal/kdcal/internal/pipeline"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/runstore"
)

// stepArgs are the arguments after `kdcal step KEY` of a step process: the
// store's copy of the resolved configuration (absolute), the experiment,
// the log level, and --verify / --force when asked for.
func stepArgs(g *Globals, env *pipeline.Env, verify, force bool) ([]string, error) {
	resolved, err := filepath.Abs(env.ConfigFile)
	if err != nil {
		return nil, err
	}
	args := []string{"--config", resolved, "--experiment", env.Store.Root, "--log-level", g.LogLevel}
	if verify {
		args = append(args, "--verify")
	}
	if force {
		args = append(args, "--force")
	}
	return args, nil
}

// workers resolves run.workers: 0 is one per core.
func workers(cfg *config.Config) int {
	if cfg.Run.Workers == 0 {
		return runtime.NumCPU()
	}
	return cfg.Run.Workers
}

// chosen is the executor of a run, and what to undo after it.
type chosen struct {
	executor.Executor
	release func()
}

// execRequest is what an executor's constructor gets: the run's steps (todo
// of them to run), the arguments of each `kdcal step` process, the prefix of
// the run's first line, and whether the command may run its steps in this
// process (the stage commands may; `kdcal run` never does).
type execRequest struct {
	env         *pipeline.Env
	args        []string
	prefix      string
	steps, todo int
	inProcess   bool
}

// executors are the executors run.executor can name, each a constructor
// that prints the run's first line. To add one: write its package under
// internal/executor (implementing executor.Executor and running
// executortest.Run), add its constructor here and its name to
// config.Executors (TestExecutorsRegistered keeps the two equal).
var executors = map[string]func(ctx context.Context, g *Globals, r execRequest) (chosen, error){
	"local": newLocalRun,
	"slurm": newSlurmRun,
}

// newExecutor returns the executor of run.executor for a run of steps
// (todo of them to run) and prints the run's first line:
//
//	slurm       one job array per stage (Slurm schedules; Ctrl-C waits for the scancel)
//	local       one `kdcal step` process per step, run.workers at once (0: one per core)
//	in process  local with inProcess and one worker or one step to run
func (g *Globals) newExecutor(ctx context.Context, env *pipeline.Env, args []string, prefix string, steps, todo int, inProcess bool) (chosen, error) {
	mk, ok := executors[env.Cfg.Run.Executor]
	if !ok { // config validation rejects unknown names first
		return chosen{}, fmt.Errorf("run.executor: unknown executor %q", env.Cfg.Run.Executor)
	}
	return mk(ctx, g, execRequest{env: env, args: args, prefix: prefix, steps: steps, todo: todo, inProcess: inProcess})
}

// newSlurmRun is the "slurm" entry of executors.
func newSlurmRun(ctx context.Context, g *Globals, r execRequest) (chosen, error) {
	ex, err := newSlurm(g, r.env, r.args, r.prefix)
	if err != nil {
		return chosen{}, err
	}
	fmt.Fprintf(g.Err, "%s: %s in %s on Slurm\n", r.prefix, stepCount(r.steps), r.env.Store.Root)
	// On Ctrl-C, Wait scancels the jobs: the stop watchdog waits for
	// that (the jobs would otherwise run on without anyone waiting).
	return chosen{ex, holdOnCancel(ctx)}, nil
}

// newLocalRun is the "local" entry of executors: in process with one
// worker or one step to run when the command allows it.
func newLocalRun(_ context.Context, g *Globals, r execRequest) (chosen, error) {
	none := func() {}
	n := workers(r.env.Cfg)
	if r.inProcess && min(n, r.todo) <= 1 {
		fmt.Fprintf(g.Err, "%s: %s in %s, in this process\n", r.prefix, stepCount(r.steps), r.env.Store.Root)
		return chosen{newInProcess(g, r.env), none}, nil
	}
	if r.inProcess {
		n = min(n, r.todo)
	}
	ex, err := newLocal(g, r.env, n, r.args)
	if err != nil {
		return chosen{}, err
	}
	fmt.Fprintf(g.Err, "%s: %s in %s, %d workers, logs in %s\n", r.prefix, stepCount(r.steps), r.env.Store.Root, n, ex.Sub.LogDir)
	return chosen{ex, none}, nil
}

// newLocal returns the local executor: one `kdcal step` process per step,
// each attempt logging to <experiment>/logs/.
func newLocal(g *Globals, env *pipeline.Env, n int, args []string) (*local.Executor, error) {
	exe, err := executable()
	if err != nil {
		return nil, err
	}
	sub := &local.Subprocess{Exe: exe, Args: args, Env: childEnv(g.Env), LogDir: filepath.Join(env.Store.Root, "logs"),
		BLASThreads: env.Cfg.Run.BLASThreads, BusyExitCode: ExitBusy}
	return local.New(sub, n), nil
}

// newInProcess returns the in-process executor, running each step through
// the pipeline with the command's own log and progress bar.
func newInProcess(g *Globals, env *pipeline.Env) executor.Executor {
	return inprocess.New(func(ctx context.Context, s plan.Step) error {
		err := g.Pipe.RunStep(ctx, env, s)
		switch {
		case err == nil, ctx.Err() != nil:
		case errors.Is(err, runstore.ErrBusy):
			g.Log.Warn("skip: another kdcal process is running it", "step", s.Key)
			return fmt.Errorf("%w (%w)", err, executor.ErrBusy)
		default:
			g.Log.Error("failed", "step", s.Key, "err", err)
		}
		return err
	})
}

// newSlurm returns the Slurm executor: one job array per stage, each task
// running `kdcal step <key>` against the shared experiment directory.
func newSlurm(g *Globals, env *pipeline.Env, args []string, prefix string) (*slurm.Executor, error) {
	exe, err := executable()
	if err != nil {
		return nil, err
	}
	root, err := filepath.Abs(env.Store.Root)
	if err != nil {
		return nil, err
	}
	args = replaceArg(args, "--experiment", root)
	return &slurm.Executor{
		Options: slurm.Options{Slurm: env.Cfg.Run.Slurm, Dir: filepath.Join(root, "slurm"),
			Env: []string{fmt.Sprintf("OPENBLAS_NUM_THREADS=%d", env.Cfg.Run.BLASThreads)}, JobName: "kdcal-" + env.Cfg.Name},
		Command:      func(s plan.Step) []string { return append([]string{exe, "step", s.Key}, args...) },
		BusyExitCode: ExitBusy,
		Submitted: func(sub *slurm.Submission) {
			var ids []string
			for _, s := range sub.Stages {
				ids = append(ids, fmt.Sprintf("%s=%s (%d tasks)", s.Name, s.JobID, len(s.Tasks)))
			}
			fmt.Fprintf(g.Err, "%s: submitted %s; files in %s\n", prefix, strings.Join(ids, ", "), sub.Dir)
		},
	}, nil
}

// replaceArg sets the value following flag in args.
func replaceArg(args []string, flag, value string) []string {
	out := append([]string(nil), args...)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == flag {
			out[i+1] = value
		}
	}
	return out
}

// doneOnce returns stepDone remembering each answer: the executor asks
// about steps outside the run (other stages) again and again, and with
// --verify every answer reads the step's files.
func doneOnce(env *pipeline.Env) func(string) bool {
	var mu sync.Mutex
	seen := map[string]bool{}
	return func(key string) bool {
		mu.Lock()
		defer mu.Unlock()
		d, ok := seen[key]
		if !ok {
			d = stepDone(env, key)
			seen[key] = d
		}
		return d
	}
}

// stepDone reports whether a plan step is finished with its current hash.
func stepDone(env *pipeline.Env, key string) bool {
	s, ok := env.Plan.Get(key)
	return ok && env.Store.Done(key, s.Hash)
}

// stageRun is how a stage command (train-teachers, calibrate, distill)
// runs its steps.
type stageRun struct {
	name    string // the command, e.g. "train-teachers"
	skipMsg string // logged for each step that is already done
	force   bool   // redo done steps
	// checkFirst: when a prerequisite of any step is missing, run nothing
	// (calibrate); otherwise the other steps run.
	checkFirst bool
	// result, when set, receives one outcome per selected step in their
	// order (for --json): the executor's, blocked for a step whose
	// prerequisite is missing, skipped for done ones.
	result *executor.Result
}

// record fills r.result from the executor's outcomes and the steps that
// were not run because of missing prerequisites (pre).
func (r stageRun) record(steps []plan.Step, res executor.Result, pre map[string]error, isDone func(string) bool) {
	if r.result == nil {
		return
	}
	got := map[string]executor.Outcome{}
	for _, o := range res.Outcomes {
		got[o.Key] = o
	}
	out := executor.Result{Elapsed: res.Elapsed}
	for _, s := range steps {
		o, ok := got[s.Key]
		switch {
		case ok:
		case pre[s.Key] != nil:
			o = executor.Outcome{Key: s.Key, Status: executor.Blocked, Err: pre[s.Key]}
		case isDone(s.Key):
			o = executor.Outcome{Key: s.Key, Status: executor.Skipped}
		default:
			o = executor.Outcome{Key: s.Key, Status: executor.Blocked,
				Err: errors.New("not run: the prerequisites of other steps are missing, and this command checks every step's first")}
		}
		out.Outcomes = append(out.Outcomes, o)
	}
	*r.result = out
}

// runStage runs the selected steps of a stage command through the
// executor of `kdcal run`: done steps are skipped (logged), every step's
// prerequisites are checked first (a missing one fails that step, exit 5,
// with the command that makes it), and the rest runs
//   - on Slurm when run.executor is slurm;
//   - in this process, one step after another, when one worker or one step
//     is left (the training progress bar and every message on the
//     terminal, as a single step has always run);
//   - otherwise as one `kdcal step` process per step, run.workers at once
//     (0: one per core), with the progress view of `kdcal run` and a log
//     per step in <experiment>/logs/.
//
// It prints a summary line and returns the steps' errors; a step that
// failed in a process of its own reports that process's message and, for
// a configuration, data or prerequisite error, its exit status.
func (g *Globals) runStage(ctx context.Context, env *pipeline.Env, steps []plan.Step, r stageRun) error {
	selected := map[string]bool{}
	for _, s := range steps {
		selected[s.Key] = true
	}
	done := doneOnce(env)
	isDone := func(key string) bool { return (!r.force || !selected[key]) && done(key) }
	var errs []error
	var run []plan.Step
	pre := map[string]error{}
	for _, s := range steps {
		if isDone(s.Key) {
			g.Log.Info(r.skipMsg, "step", s.Key)
			run = append(run, s)
			continue
		}
		if err := g.Pipe.RequireDeps(env, s); err != nil {
			pre[s.Key] = err
			if !slices.ContainsFunc(errs, func(e error) bool { return e.Error() == err.Error() }) {
				errs = append(errs, err) // once per missing teacher, not once per method or arm
			}
			if !r.checkFirst {
				g.Log.Error("failed", "step", s.Key, "err", err)
			}
			continue
		}
		run = append(run, s)
	}
	if r.checkFirst && len(errs) > 0 {
		r.record(steps, executor.Result{}, pre, isDone)
		return errors.Join(errs...)
	}
	todo := 0
	for _, s := range run {
		if !isDone(s.Key) {
			todo++
		}
	}
	if todo == 0 {
		r.record(steps, executor.Result{}, pre, isDone)
		return errors.Join(errs...)
	}
	if err := g.Pipe.Check(ctx, env, slices.DeleteFunc(slices.Clone(run), func(s plan.Step) bool { return isDone(s.Key) })); err != nil {
		return err // the stages' input checks (external teachers): before anything runs
	}
	prefix := "kdcal " + r.name
	args, err := stepArgs(g, env, false, r.force)
	if err != nil {
		return err
	}
	env.Force = r.force // for the steps run in this process
	ex, err := g.newExecutor(ctx, env, args, prefix, len(run), todo, true)
	if err != nil {
		return err
	}
	defer ex.release()
	opts := executor.Options{Done: isDone, Progress: g.Err, Terminal: isTerminal(g.Err),
		StepProgress: func(s plan.Step) (float64, string, bool) { return pipeline.ReadProgress(env.Store, s) }}
	res, err := ex.Execute(ctx, run, opts)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	r.record(steps, res, pre, isDone)
	printSummary(g.Err, prefix, res)
	return stageError(res, errs)
}

// stageError is the error of a stage command: cancelled, else the failures
// (precheck errors first, then the steps', a step process's with its
// message and exit status), else busy steps (exit 6), else nil.
func stageError(res executor.Result, errs []error) error {
	if res.Count(executor.Cancelled) > 0 {
		return context.Canceled
	}
	for _, o := range res.Outcomes {
		if o.Status != executor.Failed {
			continue
		}
		var ee *local.ExitError
		if errors.As(o.Err, &ee) && ee.Message != "" {
			errs = append(errs, &stepExitError{code: ee.Code, err: fmt.Errorf("%s (log: %s)", ee.Message, ee.Log)})
			continue
		}
		errs = append(errs, o.Err)
	}
	if len(errs) == 0 {
		return res.Err() // busy steps, or nil
	}
	return errors.Join(errs...)
}

// printSummary prints the outcome counts of a run and a line per step that
// failed, is busy or is blocked.
func printSummary(w io.Writer, prefix string, res executor.Result) {
	fmt.Fprintf(w, "%s: %d done, %d already done, %d failed, %d busy, %d blocked, %d cancelled in %s\n", prefix,
		res.Count(executor.Done), res.Count(executor.Skipped), res.Count(executor.Failed), res.Count(executor.Busy),
		res.Count(executor.Blocked), res.Count(executor.Cancelled), res.Elapsed.Round(time.Second))
	for _, o := range res.Outcomes {
		switch o.Status {
		case executor.Failed:
			if o.Log != "" {
				fmt.Fprintf(w, "  failed  %s (log %s)\n", o.Key, o.Log)
			} else {
				fmt.Fprintf(w, "  failed  %s\n", o.Key)
			}
		case executor.Busy:
			fmt.Fprintf(w, "  busy    %s: another kdcal process is running it\n", o.Key)
		case executor.Blocked:
			fmt.Fprintf(w, "  blocked %s: %v\n", o.Key, o.Err)
		}
	}
}

// stageExecHelp is the paragraph of the stage commands' help on how their
// steps run.
const stageExecHelp = `Steps run like those of kdcal run: with one worker (--workers 1) or one
step to run, in this process, with a progress bar on a terminal and one log line per
epoch otherwise; else as one kdcal process per step, --workers at a time (default
run.workers; 0 = one per core), with kdcal run's progress view ([k/N], ETA) and each
step's log in <experiment>/logs/<step>.log; with --executor slurm (or run.executor:
slurm) as job arrays.`

// addExecFlags adds --workers/-j and --executor to a stage command.
func addExecFlags(cmd *cobra.Command, workers *int, exec *string) {
	cmd.Flags().IntVarP(workers, "workers", "j", -1, "parallel steps (default: run.workers; 0 = one per core; 1 = in this process)")
	cmd.Flags().StringVar(exec, "executor", "", "local or slurm (default: run.executor)")
}

// addJSONFlag adds --json to a stage command.
func addJSONFlag(cmd *cobra.Command, v *bool) {
	cmd.Flags().BoolVar(v, "json", false, "print one JSON document of the steps' outcomes, durations and key metrics to stdout (docs/json.md); progress and logs stay on stderr")
}

// execOverrides turns --workers and --executor into config overrides
// (run.workers, run.executor), as `kdcal run` does.
func execOverrides(workers int, exec string) []Override {
	var ov []Override
	if exec != "" {
		ov = append(ov, Override{Key: "run.executor", Value: exec, Flag: "executor"})
	}
	if workers >= 0 {
		ov = append(ov, Override{Key: "run.workers", Value: fmt.Sprint(workers), Flag: "workers"})
	}
	return ov
}

// stepCount is "1 step" or "n steps".
func stepCount(n int) string {
	if n == 1 {
		return "1 step"
	}
	return fmt.Sprintf("%d steps", n)
}
