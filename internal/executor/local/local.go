// Package local runs a study's steps on this machine: independent steps in
// parallel (by default one per core), each in its own kdcal process with one
// BLAS thread, in dependency order, with a progress view and an estimate of
// the time left for the whole study.
//
// Steps are idempotent and checkpointed (see runstore), so stopping the
// executor at any moment — Ctrl-C or kill -9 — and running it again finishes
// the study with the same results.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kdcal/kdcal/internal/plan"
)

// ErrBusy is what a Runner returns (wrapped) when another process is
// running the step: the step is skipped with status Busy, not failed.
var ErrBusy = errors.New("another kdcal process is running the step")

// Runner runs one step to completion (or until ctx is cancelled).
type Runner interface {
	Run(ctx context.Context, s plan.Step) error
}

// RunnerFunc adapts a function to Runner.
type RunnerFunc func(ctx context.Context, s plan.Step) error

// Run calls f.
func (f RunnerFunc) Run(ctx context.Context, s plan.Step) error { return f(ctx, s) }

// Options configures Execute.
type Options struct {
	// Workers is the number of steps run at once (≥ 1).
	Workers int
	// Done reports steps already finished before this run (skipped, and
	// their dependents may start at once).
	Done func(key string) bool
	// Progress receives the progress view; nil disables it.
	Progress io.Writer
	// Terminal redraws the view in place; otherwise plain lines are printed.
	Terminal bool
	// StepProgress returns the fraction done of a running step and a short
	// detail (e.g. "epoch 2/4"), or ok=false when unknown.
	StepProgress func(s plan.Step) (frac float64, detail string, ok bool)
	// Interval between progress updates (default 1 s on a terminal, 30 s otherwise).
	Interval time.Duration
}

// Outcome says how each step ended.
type Outcome struct {
	Key      string
	Status   string // done | skipped (already done) | failed | busy (another process runs it) | blocked (a dependency failed, is busy or is missing) | cancelled
	Err      error
	Duration time.Duration
}

// Status values of an Outcome.
const (
	Done      = "done"
	Skipped   = "skipped"
	Failed    = "failed"
	Busy      = "busy"
	Blocked   = "blocked"
	Cancelled = "cancelled"
)

// Result summarises a run.
type Result struct {
	Outcomes []Outcome
	Elapsed  time.Duration
}

// Count returns how many outcomes have the given status.
func (r Result) Count(status string) int {
	n := 0
	for _, o := range r.Outcomes {
		if o.Status == status {
			n++
		}
	}
	return n
}

// Err returns ctx's error when the run was cancelled; otherwise the joined
// errors of failed steps; otherwise, when steps were left busy, an error
// wrapping ErrBusy that names them; nil when every step is done.
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
		return fmt.Errorf("%d steps left to the other kdcal process running them (%s); run again when it has finished: %w",
			len(busy), strings.Join(busy[:min(3, len(busy))], ", ")+map[bool]string{true: ", …"}[len(busy) > 3], ErrBusy)
	}
	return errors.Join(errs...)
}

type state struct {
	mu       sync.Mutex
	steps    []plan.Step
	byKey    map[string]int
	status   map[string]string // "" pending, running, or an Outcome status
	started  map[string]time.Time
	outcomes []Outcome
	doneCost float64
	total    float64
}

// Execute runs steps with their dependencies satisfied first. A step whose
// dependency is neither among steps nor already done is blocked, as is every
// step downstream of a failure; other steps still run.
func Execute(ctx context.Context, steps []plan.Step, r Runner, opt Options) Result {
	begin := time.Now()
	if opt.Workers < 1 {
		opt.Workers = 1
	}
	if opt.Done == nil {
		opt.Done = func(string) bool { return false }
	}
	if opt.Progress != nil {
		opt.Progress = &syncWriter{w: opt.Progress}
	}
	st := &state{steps: steps, byKey: map[string]int{}, status: map[string]string{}, started: map[string]time.Time{}}
	for i, s := range steps {
		st.byKey[s.Key] = i
		if opt.Done(s.Key) {
			st.finish(s, Skipped, nil, 0)
		} else {
			st.total += s.Cost
		}
	}
	wake := make(chan struct{}, 1)
	notify := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	stopView := startView(st, opt, begin)
	var wg sync.WaitGroup
	running := 0
	for {
		st.mu.Lock()
		st.blockUnrunnable(opt.Done)
		for running < opt.Workers && ctx.Err() == nil {
			s, ok := st.next(opt.Done)
			if !ok {
				break
			}
			st.status[s.Key] = "running"
			st.started[s.Key] = time.Now()
			running++
			wg.Add(1)
			go func(s plan.Step) {
				defer wg.Done()
				t0 := time.Now()
				err := r.Run(ctx, s)
				status := Done
				switch {
				case err != nil && ctx.Err() != nil:
					status = Cancelled
				case errors.Is(err, ErrBusy):
					status = Busy
				case err != nil:
					status = Failed
				}
				st.mu.Lock()
				st.finish(s, status, err, time.Since(t0))
				running--
				st.mu.Unlock()
				logLine(opt, st, s, status, err, time.Since(t0))
				notify()
			}(s)
		}
		pending, idle := st.pending(), running == 0
		st.mu.Unlock()
		if idle && (pending == 0 || ctx.Err() != nil) {
			break
		}
		select {
		case <-wake:
		case <-ctx.Done():
			wg.Wait()
			st.mu.Lock()
			st.cancelPending()
			st.mu.Unlock()
			stopView()
			return Result{Outcomes: st.sorted(), Elapsed: time.Since(begin)}
		}
	}
	wg.Wait()
	st.mu.Lock()
	st.cancelPending()
	st.mu.Unlock()
	stopView()
	return Result{Outcomes: st.sorted(), Elapsed: time.Since(begin)}
}

func (st *state) finish(s plan.Step, status string, err error, d time.Duration) {
	st.status[s.Key] = status
	st.outcomes = append(st.outcomes, Outcome{Key: s.Key, Status: status, Err: err, Duration: d})
	if status == Done {
		st.doneCost += s.Cost
	}
}

// depOK reports whether a dependency is satisfied.
func (st *state) depOK(dep string, done func(string) bool) bool {
	switch st.status[dep] {
	case Done, Skipped:
		return true
	}
	_, inPlan := st.byKey[dep]
	return !inPlan && done(dep)
}

// blockUnrunnable marks pending steps whose dependency failed, is busy, was
// blocked, was cancelled, or is missing from both the plan and the store.
func (st *state) blockUnrunnable(done func(string) bool) {
	for changed := true; changed; {
		changed = false
		for _, s := range st.steps {
			if st.status[s.Key] != "" {
				continue
			}
			for _, d := range s.Deps {
				_, inPlan := st.byKey[d]
				ds := st.status[d]
				if (!inPlan && !done(d)) || ds == Failed || ds == Busy || ds == Blocked || ds == Cancelled {
					why := fmt.Errorf("dependency %s %s", d, depPhrase(inPlan, ds))
					st.finish(s, Blocked, why, 0)
					changed = true
					break
				}
			}
		}
	}
}

// depPhrase says why a dependency blocks its dependents.
func depPhrase(inPlan bool, status string) string {
	switch {
	case !inPlan:
		return "has not been run"
	case status == Busy:
		return "is being run by another kdcal process"
	}
	return status
}

// next returns the most expensive ready step of the earliest stage with one
// (longest-processing-time-first keeps both cores busy until the end).
func (st *state) next(done func(string) bool) (plan.Step, bool) {
	best := -1
	for i, s := range st.steps {
		if st.status[s.Key] != "" {
			continue
		}
		ready := true
		for _, d := range s.Deps {
			if !st.depOK(d, done) {
				ready = false
				break
			}
		}
		if !ready {
			continue
		}
		if best < 0 || stageRank(s.Stage) < stageRank(st.steps[best].Stage) ||
			stageRank(s.Stage) == stageRank(st.steps[best].Stage) && s.Cost > st.steps[best].Cost {
			best = i
		}
	}
	if best < 0 {
		return plan.Step{}, false
	}
	return st.steps[best], true
}

func stageRank(stage string) int {
	for i, s := range plan.Stages {
		if s == stage {
			return i
		}
	}
	return len(plan.Stages)
}

func (st *state) pending() int {
	n := 0
	for _, s := range st.steps {
		if st.status[s.Key] == "" || st.status[s.Key] == "running" {
			n++
		}
	}
	return n
}

func (st *state) cancelPending() {
	for _, s := range st.steps {
		if st.status[s.Key] == "" {
			st.finish(s, Cancelled, context.Canceled, 0)
		}
	}
}

func (st *state) sorted() []Outcome {
	out := append([]Outcome(nil), st.outcomes...)
	sort.SliceStable(out, func(a, b int) bool { return st.byKey[out[a].Key] < st.byKey[out[b].Key] })
	return out
}

func logLine(opt Options, st *state, s plan.Step, status string, err error, d time.Duration) {
	if opt.Progress == nil || opt.Terminal {
		return
	}
	msg := fmt.Sprintf("%s %s (%s)", status, s.Key, d.Round(time.Second))
	if err != nil && status == Failed {
		msg += ": " + firstLine(err.Error())
	}
	st.mu.Lock()
	done := len(st.outcomes)
	st.mu.Unlock()
	fmt.Fprintf(opt.Progress, "[%d/%d] %s\n", done, len(st.steps), msg)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// syncWriter serialises writes from the view and the step goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
