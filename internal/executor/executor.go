// Package executor runs a study's steps. It defines the one interface every
// executor implements (Executor: run steps in dependency order, report how
// each ended), the outcome of a step, and Pool, the scheduler that the local
// executors share.
//
// The implementations are packages of their own:
//
//	internal/executor/local      one kdcal process per step, in parallel (kdcal run)
//	internal/executor/inprocess  one step after another in this process (the stage commands with one worker)
//	internal/executor/slurm      one job array per stage, chained afterok
//
// Each runs the conformance suite of internal/executor/executortest. A new
// executor (Kubernetes Jobs, say) is one new package whose type implements
// Executor and whose test calls executortest.Suite.Run; see
// docs/architecture.md.
package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kdcal/kdcal/internal/plan"
)

// Executor runs steps.
type Executor interface {
	// Execute runs steps (a plan's steps, or some of them, in plan order)
	// with every dependency first, and returns one Outcome per step in the
	// order of steps:
	//   - a step for which opts.Done is true is skipped and never run;
	//   - a step whose dependency is neither among steps nor done, or whose
	//     dependency failed, is busy, blocked or cancelled, is blocked and
	//     never run (an executor whose stages wait for the whole previous
	//     stage, as Slurm arrays chained afterok do, also blocks the later
	//     stages after any failure);
	//   - a step that another process is running (the step's error wraps
	//     ErrBusy, or its process exits with the busy status) is busy;
	//   - when ctx is cancelled, running steps are stopped and everything
	//     not finished is cancelled.
	// The error is for the executor itself failing (no Slurm client, a
	// submission rejected); step failures are outcomes, and Result.Err turns
	// them into the command's error.
	Execute(ctx context.Context, steps []plan.Step, opts Options) (Result, error)
}

// Options are what every executor takes from its caller.
type Options struct {
	// Done reports steps finished before this run: skipped when among the
	// steps, and satisfying their dependents. nil: nothing is done.
	Done func(key string) bool
	// Progress receives the progress view ([k/N], ETA); nil disables it.
	Progress io.Writer
	// Terminal redraws the view in place; otherwise plain lines are printed.
	Terminal bool
	// StepProgress returns the fraction done of a running step and a short
	// detail (e.g. "epoch 2/4"), or ok=false when unknown.
	StepProgress func(s plan.Step) (frac float64, detail string, ok bool)
	// Interval between progress updates (default 1 s on a terminal, 30 s otherwise).
	Interval time.Duration
}

// done returns opts.Done, or a function that reports nothing done.
func (o Options) done() func(string) bool {
	if o.Done == nil {
		return func(string) bool { return false }
	}
	return o.Done
}

// Status is how a step ended.
type Status string

// The statuses of an Outcome.
const (
	Done      Status = "done"      // it ran and succeeded
	Skipped   Status = "skipped"   // already done before this run
	Failed    Status = "failed"    // it ran and failed
	Busy      Status = "busy"      // another kdcal process is running it
	Blocked   Status = "blocked"   // a dependency failed, is busy or blocked, or is missing
	Cancelled Status = "cancelled" // stopped, or never started, because ctx was cancelled
)

// ErrBusy is what a step's error wraps when another process holds the
// step's lock: the step is busy, not failed.
var ErrBusy = errors.New("another kdcal process is running the step")

// Outcome says how one step ended.
type Outcome struct {
	Key      string
	Status   Status
	Err      error // why it failed, is blocked, busy or cancelled
	Duration time.Duration
	Log      string // the step's own log, when the executor keeps one
}

// Result is the outcome of every step of a run, in the order of the steps.
type Result struct {
	Outcomes []Outcome
	Elapsed  time.Duration
}

// Count returns how many outcomes have the given status.
func (r Result) Count(status Status) int {
	n := 0
	for _, o := range r.Outcomes {
		if o.Status == status {
			n++
		}
	}
	return n
}

// Err returns context.Canceled when the run was cancelled; otherwise the
// joined errors of failed steps; otherwise, when steps were left busy, an
// error wrapping ErrBusy that names them; nil when every step is done or
// skipped. (Blocked steps are explained by the failure or busy step that
// blocks them.)
func (r Result) Err() error {
	var errs []error
	var busy []string
	for _, o := range r.Outcomes {
		switch o.Status {
		case Failed:
			errs = append(errs, fmt.Errorf("%s: %w", o.Key, o.Err))
		case Busy:
			busy = append(busy, o.Key)
		case Cancelled:
			return context.Canceled
		}
	}
	if len(errs) == 0 && len(busy) > 0 {
		more := ""
		if len(busy) > 3 {
			more = ", …"
		}
		return fmt.Errorf("%d steps left to the other kdcal process running them (%s%s); run again when it has finished: %w",
			len(busy), strings.Join(busy[:min(3, len(busy))], ", "), more, ErrBusy)
	}
	return errors.Join(errs...)
}

// Unrunnable returns the steps that cannot run, with the reason: a
// dependency that is neither among steps nor done, or that is itself
// unrunnable. Done steps are never unrunnable. Executors that submit a whole
// plan at once (Slurm) use it to block such steps before submitting; Pool
// does the same as it goes.
func Unrunnable(steps []plan.Step, done func(string) bool) map[string]error {
	inPlan := map[string]bool{}
	for _, s := range steps {
		inPlan[s.Key] = true
	}
	out := map[string]error{}
	for changed := true; changed; {
		changed = false
		for _, s := range steps {
			if _, ok := out[s.Key]; ok || done(s.Key) {
				continue
			}
			for _, d := range s.Deps {
				switch _, blocked := out[d]; {
				case !inPlan[d] && !done(d):
					out[s.Key] = fmt.Errorf("dependency %s has not been run", d)
				case blocked:
					out[s.Key] = fmt.Errorf("dependency %s blocked", d)
				default:
					continue
				}
				changed = true
				break
			}
		}
	}
	return out
}
