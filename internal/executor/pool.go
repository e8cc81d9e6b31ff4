package executor

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

// Pool is the scheduler of the executors that run steps from this process
// (local, inprocess): Workers steps at a time, each by calling Run, a step
// only after its dependencies, and among the ready steps the costliest of
// the earliest stage first (longest-processing-time-first keeps every
// worker busy until the end). It implements Executor.
type Pool struct {
	// Workers is the number of steps run at once (< 1 means 1).
	Workers int
	// Run runs one step to completion or until ctx is cancelled; an error
	// wrapping ErrBusy makes the step busy.
	Run func(ctx context.Context, s plan.Step) error
	// Inline is for steps that write to the same stream as the view (run in
	// this process): the view then prints one line per finished step with
	// the overall count and ETA, instead of redrawing or ticking.
	Inline bool
}

// Execute implements Executor; it never returns an error of its own.
func (p Pool) Execute(ctx context.Context, steps []plan.Step, opt Options) (Result, error) {
	begin := time.Now()
	workers := max(p.Workers, 1)
	done := opt.done()
	if opt.Progress != nil {
		opt.Progress = &syncWriter{w: opt.Progress}
	}
	st := &state{steps: steps, byKey: map[string]int{}, status: map[string]Status{}, started: map[string]time.Time{}}
	for i, s := range steps {
		st.byKey[s.Key] = i
		if done(s.Key) {
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
	v := &view{st: st, opt: opt, begin: begin, inline: p.Inline}
	stopView := v.start()
	var wg sync.WaitGroup
	running := 0
	for {
		st.mu.Lock()
		if ctx.Err() == nil { // after a cancellation, what has not run is cancelled, not blocked
			st.blockUnrunnable(done)
		}
		for running < workers && ctx.Err() == nil {
			s, ok := st.next(done)
			if !ok {
				break
			}
			st.status[s.Key] = running_
			st.started[s.Key] = time.Now()
			running++
			wg.Add(1)
			go func(s plan.Step) {
				defer wg.Done()
				t0 := time.Now()
				err := p.Run(ctx, s)
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
				v.finished(s, status, err, time.Since(t0))
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
		}
	}
	wg.Wait()
	st.mu.Lock()
	st.cancelPending()
	st.mu.Unlock()
	stopView()
	return Result{Outcomes: st.sorted(), Elapsed: time.Since(begin)}, nil
}

// running_ is the status of a step while it runs ("" is pending).
const running_ Status = "running"

type state struct {
	mu       sync.Mutex
	steps    []plan.Step
	byKey    map[string]int
	status   map[string]Status // "" pending, running_, or an Outcome status
	started  map[string]time.Time
	outcomes []Outcome
	doneCost float64
	total    float64
}

func (st *state) finish(s plan.Step, status Status, err error, d time.Duration) {
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
					st.finish(s, Blocked, fmt.Errorf("dependency %s %s", d, depPhrase(inPlan, ds)), 0)
					changed = true
					break
				}
			}
		}
	}
}

// depPhrase says why a dependency blocks its dependents.
func depPhrase(inPlan bool, status Status) string {
	switch {
	case !inPlan:
		return "has not been run"
	case status == Busy:
		return "is being run by another kdcal process"
	}
	return string(status)
}

// next returns the most expensive ready step of the earliest stage with one.
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
		if st.status[s.Key] == "" || st.status[s.Key] == running_ {
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
