// Package executortest is the conformance suite of executor.Executor, in
// the manner of restic's internal/backend/test: every executor's test runs
//
//	executortest.Suite{New: func(t *testing.T, h *executortest.Harness, workers int) executor.Executor {
//		return ... // an executor whose steps run h.Run, or the test binary with h.StepArgs(key)
//	}}.Run(t)
//
// and a TestMain that hands "step …" invocations to Main when its steps
// are processes. The suite checks what executor.Executor promises:
// dependency order; a failure blocks its dependents but not the others;
// done steps are skipped and never run; busy steps are busy (kdcal exits 6);
// cancellation stops every step and reports everything unfinished as
// cancelled; outcomes are complete and in plan order; and, where the
// executor schedules, the costlier of two ready steps of one stage starts
// first and independent steps run in parallel.
package executortest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kdcal/kdcal/internal/executor"
	"github.com/kdcal/kdcal/internal/plan"
)

// Suite is the conformance suite of one executor.
type Suite struct {
	// New returns the executor under test, running the steps of h with at
	// most workers at a time (an executor that does not take a worker
	// count, such as Slurm, ignores it).
	New func(t *testing.T, h *Harness, workers int) executor.Executor
	// TempDir returns the directory of a harness (default t.TempDir); it
	// must be visible where the steps run (a shared filesystem on a cluster).
	TempDir func(t *testing.T) string
	// StageBarrier: the executor starts a stage only after every step of
	// the previous stage is done (Slurm arrays chained afterok), so a
	// failed or busy step blocks every later stage, not only its dependents.
	StageBarrier bool
	// Schedules: the executor decides which ready step starts next, so the
	// costlier one of a stage must start first (Slurm leaves it to the cluster).
	Schedules bool
	// Parallel: with two workers, two independent steps run at the same time.
	Parallel bool
	// Delay is how long an OK step takes (default 20 ms).
	Delay time.Duration
	// Timeout bounds each Execute (default 2 minutes).
	Timeout time.Duration
}

// Run runs every test of the suite.
func (s Suite) Run(t *testing.T) {
	t.Run("DependencyOrder", s.testDependencyOrder)
	t.Run("FailureBlocksDependents", s.testFailureBlocksDependents)
	t.Run("DoneStepsAreSkipped", s.testDoneStepsAreSkipped)
	t.Run("Busy", s.testBusy)
	t.Run("Cancel", s.testCancel)
	if s.Schedules {
		t.Run("CostliestFirst", s.testCostliestFirst)
	}
	if s.Parallel {
		t.Run("Parallel", s.testParallel)
	}
}

// Diamond is the suite's plan: t0, t1 → c0 (t0), c1 (t1) → s0 (t0, c0),
// s1 (t1, c1) → r (all), the costlier teacher second.
func Diamond() []plan.Step {
	return []plan.Step{
		{Key: "t0", Stage: plan.StageTeachers, Cost: 10},
		{Key: "t1", Stage: plan.StageTeachers, Cost: 20},
		{Key: "c0", Stage: plan.StageCalibration, Deps: []string{"t0"}, Cost: 1},
		{Key: "c1", Stage: plan.StageCalibration, Deps: []string{"t1"}, Cost: 1},
		{Key: "s0", Stage: plan.StageStudents, Deps: []string{"t0", "c0"}, Cost: 5},
		{Key: "s1", Stage: plan.StageStudents, Deps: []string{"t1", "c1"}, Cost: 5},
		{Key: "r", Stage: plan.StageReport, Deps: []string{"t0", "t1", "c0", "c1", "s0", "s1"}},
	}
}

// run builds a harness for behaviours, the executor, and executes steps.
func (s Suite) run(t *testing.T, steps []plan.Step, behaviours map[string]Behaviour, workers int,
	opts executor.Options, during func(ctx context.Context, cancel func(), h *Harness)) (*Harness, executor.Result) {
	t.Helper()
	dir := t.TempDir()
	if s.TempDir != nil {
		dir = s.TempDir(t)
	}
	delay := s.Delay
	if delay <= 0 {
		delay = 20 * time.Millisecond
	}
	h, err := NewHarness(dir, behaviours, delay)
	if err != nil {
		t.Fatal(err)
	}
	ex := s.New(t, h, workers)
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	run, stopped := context.WithCancel(ctx)
	defer stopped()
	if during != nil {
		go during(ctx, stopped, h)
	}
	res, err := ex.Execute(run, steps, opts)
	if ctx.Err() != nil {
		t.Fatalf("Execute did not return within %v", timeout)
	}
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	checkComplete(t, steps, res)
	return h, res
}

// checkComplete checks one outcome per step, in plan order.
func checkComplete(t *testing.T, steps []plan.Step, res executor.Result) {
	t.Helper()
	var want, got []string
	for _, s := range steps {
		want = append(want, s.Key)
	}
	for _, o := range res.Outcomes {
		got = append(got, o.Key)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("outcomes for %v, want one per step in plan order: %v", got, want)
	}
}

// statuses renders outcomes as "key=status ...".
func statuses(res executor.Result) string {
	var parts []string
	for _, o := range res.Outcomes {
		parts = append(parts, o.Key+"="+string(o.Status))
	}
	return strings.Join(parts, " ")
}

// starts returns the steps that started, in start order.
func starts(t *testing.T, h *Harness) []string {
	t.Helper()
	evs, err := h.Events()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		if e.What == "start" {
			out = append(out, e.Key)
		}
	}
	return out
}

func (s Suite) testDependencyOrder(t *testing.T) {
	h, res := s.run(t, Diamond(), nil, 2, executor.Options{}, nil)
	if got, want := statuses(res), "t0=done t1=done c0=done c1=done s0=done s1=done r=done"; got != want {
		t.Fatalf("outcomes: %s\nwant      %s", got, want)
	}
	if err := res.Err(); err != nil {
		t.Errorf("Err() = %v, want nil", err)
	}
	evs, err := h.Events()
	if err != nil {
		t.Fatal(err)
	}
	start, end := map[string]time.Time{}, map[string]time.Time{}
	for _, e := range evs {
		switch e.What {
		case "start":
			start[e.Key] = e.At
		case "end":
			end[e.Key] = e.At
		}
	}
	for _, st := range Diamond() {
		if _, ok := end[st.Key]; !ok {
			t.Errorf("%s never ran to its end", st.Key)
		}
		for _, d := range st.Deps {
			if start[st.Key].Before(end[d]) {
				t.Errorf("%s started before its dependency %s ended", st.Key, d)
			}
		}
	}
}

// blockedAfter is the expected status of a step that runs fine but, with a
// stage barrier, follows a stage in which some step did not complete.
func (s Suite) blockedAfter(ok string) string {
	if s.StageBarrier {
		return "blocked"
	}
	return ok
}

func (s Suite) testFailureBlocksDependents(t *testing.T) {
	h, res := s.run(t, Diamond(), map[string]Behaviour{"c0": Fail}, 2, executor.Options{}, nil)
	want := fmt.Sprintf("t0=done t1=done c0=failed c1=done s0=blocked s1=%s r=blocked", s.blockedAfter("done"))
	if got := statuses(res); got != want {
		t.Errorf("outcomes: %s\nwant      %s", got, want)
	}
	err := res.Err()
	if err == nil || !strings.Contains(err.Error(), "c0") || errors.Is(err, executor.ErrBusy) || errors.Is(err, context.Canceled) {
		t.Errorf("Err() = %v, want the failure of c0", err)
	}
	for _, o := range res.Outcomes {
		if o.Status == executor.Blocked && o.Err == nil {
			t.Errorf("blocked %s without a reason", o.Key)
		}
	}
	for _, k := range starts(t, h) {
		if k == "s0" || k == "r" {
			t.Errorf("%s ran although its dependency c0 failed", k)
		}
	}
}

func (s Suite) testDoneStepsAreSkipped(t *testing.T) {
	done := map[string]bool{"t0": true, "c0": true, "external": true}
	steps := append(Diamond(),
		plan.Step{Key: "x", Stage: plan.StageCalibration, Deps: []string{"external"}},
		plan.Step{Key: "y", Stage: plan.StageCalibration, Deps: []string{"missing"}})
	h, res := s.run(t, steps, nil, 1, executor.Options{Done: func(k string) bool { return done[k] }}, nil)
	want := "t0=skipped t1=done c0=skipped c1=done s0=done s1=done r=done x=done y=blocked"
	if got := statuses(res); got != want {
		t.Errorf("outcomes: %s\nwant      %s", got, want)
	}
	ran := starts(t, h)
	slices.Sort(ran)
	if got, want := strings.Join(ran, " "), "c1 r s0 s1 t1 x"; got != want {
		t.Errorf("ran %s, want %s", got, want)
	}
	if err := res.Err(); err != nil {
		t.Errorf("Err() = %v: a blocked step alone is no failure", err)
	}
}

func (s Suite) testBusy(t *testing.T) {
	_, res := s.run(t, Diamond(), map[string]Behaviour{"t0": Busy}, 2, executor.Options{}, nil)
	after := s.blockedAfter("done")
	want := fmt.Sprintf("t0=busy t1=done c0=blocked c1=%s s0=blocked s1=%s r=blocked", after, after)
	if got := statuses(res); got != want {
		t.Errorf("outcomes: %s\nwant      %s", got, want)
	}
	if err := res.Err(); !errors.Is(err, executor.ErrBusy) || !strings.Contains(err.Error(), "t0") {
		t.Errorf("Err() = %v, want one wrapping ErrBusy that names t0 (kdcal exits 6)", err)
	}
}

func (s Suite) testCancel(t *testing.T) {
	all := map[string]Behaviour{}
	for _, st := range Diamond() {
		all[st.Key] = Hang
	}
	var cancelledAt time.Time
	h, res := s.run(t, Diamond(), all, 2, executor.Options{}, func(ctx context.Context, cancel func(), h *Harness) {
		for ctx.Err() == nil {
			if evs, _ := h.Events(); len(evs) > 0 {
				time.Sleep(100 * time.Millisecond) // let a second worker start too
				cancelledAt = time.Now()
				cancel()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	t.Logf("Execute returned %v after the cancellation", time.Since(cancelledAt).Round(time.Millisecond))
	if got := res.Count(executor.Cancelled); got != len(Diamond()) {
		t.Errorf("outcomes after cancel: %s, want all cancelled", statuses(res))
	}
	if err := res.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err() = %v, want context.Canceled", err)
	}
	// Every step that started saw the cancellation and stopped (a process
	// of a step may take a moment to write its last line after Execute).
	started := starts(t, h)
	if len(started) == 0 {
		t.Fatal("no step started")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs, err := h.Events()
		if err != nil {
			t.Fatal(err)
		}
		var running []string
		for _, k := range started {
			if !slices.ContainsFunc(evs, func(e Event) bool { return e.Key == k && e.What != "start" }) {
				running = append(running, k)
			}
		}
		if len(running) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("steps %v still running 30 s after Execute returned", running)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testCostliestFirst: with one worker, among ready steps the earliest
// stage's costliest starts first, whatever the order of the plan.
func (s Suite) testCostliestFirst(t *testing.T) {
	steps := []plan.Step{
		{Key: "a", Stage: plan.StageTeachers, Cost: 1},
		{Key: "b", Stage: plan.StageTeachers, Cost: 5},
		{Key: "c", Stage: plan.StageTeachers, Cost: 3},
		{Key: "d", Stage: plan.StageCalibration, Cost: 100},
	}
	h, res := s.run(t, steps, nil, 1, executor.Options{}, nil)
	if got := statuses(res); got != "a=done b=done c=done d=done" {
		t.Fatalf("outcomes: %s", got)
	}
	if got, want := strings.Join(starts(t, h), " "), "b c a d"; got != want {
		t.Errorf("start order %s, want %s (costliest first within a stage, stages in order)", got, want)
	}
}

// testParallel: with two workers, two independent steps overlap.
func (s Suite) testParallel(t *testing.T) {
	steps := Diamond()[:2]
	h, res := s.run(t, steps, map[string]Behaviour{"t0": Hang, "t1": Hang}, 2, executor.Options{},
		func(ctx context.Context, cancel func(), h *Harness) {
			defer cancel()
			for deadline := time.Now().Add(20 * time.Second); ctx.Err() == nil && time.Now().Before(deadline); {
				if evs, _ := h.Events(); len(evs) >= 2 {
					return // both started (a hanging step records nothing else before the cancel)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	if got := starts(t, h); len(got) != 2 {
		t.Errorf("steps started: %v, want both at once (statuses %s)", got, statuses(res))
	}
}
