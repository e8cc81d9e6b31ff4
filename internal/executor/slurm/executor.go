package slurm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kdcal/kdcal/internal/executor"
	"github.com/kdcal/kdcal/internal/plan"
)

// Executor submits a plan's steps as one job array per stage (Submit) and
// waits for them (Wait). It implements executor.Executor.
//
// Slurm schedules the tasks; a stage starts when every task of the previous
// one completed (afterok), so a failed or busy step blocks every later
// stage, not only its dependents (executortest: StageBarrier).
type Executor struct {
	Options Options
	// Command returns the command line of a step's task, e.g.
	// [/abs/kdcal step <key> --config … --experiment …].
	Command func(s plan.Step) []string
	// BusyExitCode is a task's exit status when another process runs its
	// step: the step is then busy, not failed. 0: none.
	BusyExitCode int
	// Submitted, when set, is called once the arrays are queued.
	Submitted func(*Submission)
}

// Execute implements executor.Executor: steps that are done are skipped,
// steps that cannot run (a dependency neither among steps nor done) are
// blocked, and the rest is submitted, one array (or several, past
// MaxArraySize) per stage in plan.Stages order, and waited for. Progress
// lines ("slurm: teachers 2/4 done, …") go to opts.Progress. A submission
// that fails (no Slurm client, sbatch's rejection) is the error.
func (e *Executor) Execute(ctx context.Context, steps []plan.Step, opts executor.Options) (executor.Result, error) {
	begin := time.Now()
	done := func(string) bool { return false }
	if opts.Done != nil {
		done = opts.Done
	}
	blocked := executor.Unrunnable(steps, done)
	outcome := map[string]executor.Outcome{}
	var stages []Stage
	for _, name := range plan.Stages {
		st := Stage{Name: name}
		for _, s := range steps {
			switch err, isBlocked := blocked[s.Key]; {
			case s.Stage != name:
			case done(s.Key):
				outcome[s.Key] = executor.Outcome{Key: s.Key, Status: executor.Skipped}
			case isBlocked:
				outcome[s.Key] = executor.Outcome{Key: s.Key, Status: executor.Blocked, Err: err}
			default:
				st.Tasks = append(st.Tasks, Task{Key: s.Key, Args: e.Command(s)})
			}
		}
		stages = append(stages, st)
	}
	result := func() executor.Result {
		r := executor.Result{Elapsed: time.Since(begin)}
		for _, s := range steps {
			o, ok := outcome[s.Key]
			if !ok { // a stage outside plan.Stages: never submitted
				o = executor.Outcome{Key: s.Key, Status: executor.Blocked, Err: fmt.Errorf("stage %q is not a stage of the plan", s.Stage)}
			}
			r.Outcomes = append(r.Outcomes, o)
		}
		return r
	}
	if countTasks(stages) == 0 {
		return result(), nil
	}
	sub, err := Submit(ctx, e.Options, stages)
	if err != nil {
		return result(), err
	}
	if e.Submitted != nil {
		e.Submitted(sub)
	}
	results, err := sub.Wait(ctx, progressLines(opts.Progress))
	var te *TasksError
	if err != nil && ctx.Err() == nil && !errors.As(err, &te) {
		return result(), err // squeue gave up: the jobs' state is unknown
	}
	for _, r := range results {
		outcome[r.Key] = e.outcome(r, ctx.Err() != nil)
	}
	for _, st := range stages { // results are missing only when Wait gave up early
		for _, t := range st.Tasks {
			if _, ok := outcome[t.Key]; !ok {
				outcome[t.Key] = executor.Outcome{Key: t.Key, Status: executor.Cancelled, Err: context.Canceled}
			}
		}
	}
	return result(), nil
}

// outcome maps a task's result to a step's outcome.
func (e *Executor) outcome(r Result, cancelled bool) executor.Outcome {
	o := executor.Outcome{Key: r.Key, Log: r.LogPath}
	switch {
	case r.State == Completed:
		o.Status = executor.Done
	case r.State == Failed && e.BusyExitCode != 0 && r.ExitCode == e.BusyExitCode:
		o.Status, o.Err = executor.Busy, fmt.Errorf("%s: %w", r.Key, executor.ErrBusy)
	case r.State == Failed:
		o.Status, o.Err = executor.Failed, errors.New(r.String())
	case r.State == Cancelled || cancelled:
		o.Status, o.Err = executor.Cancelled, context.Canceled
	default: // NotRun: an earlier stage did not complete
		o.Status, o.Err = executor.Blocked, errors.New(r.Reason)
	}
	return o
}

// progressLines prints "slurm: <progress>" to w whenever it changes.
func progressLines(w io.Writer) func(Progress) {
	if w == nil {
		return nil
	}
	last := ""
	return func(p Progress) {
		if line := p.String(); line != last {
			fmt.Fprintln(w, "slurm:", line)
			last = line
		}
	}
}
