package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kdcal/kdcal/internal/plan"
)

// diamond: t0, t1 → c0 (t0), c1 (t1) → s0 (t0, c0), s1 (t1, c1) → report (all).
func diamond() []plan.Step {
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

type recorder struct {
	mu      sync.Mutex
	order   []string
	running int32
	peak    int32
	fail    map[string]bool
	delay   time.Duration
}

func (r *recorder) Run(ctx context.Context, s plan.Step) error {
	n := atomic.AddInt32(&r.running, 1)
	defer atomic.AddInt32(&r.running, -1)
	for {
		p := atomic.LoadInt32(&r.peak)
		if n <= p || atomic.CompareAndSwapInt32(&r.peak, p, n) {
			break
		}
	}
	select {
	case <-time.After(r.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	r.mu.Lock()
	r.order = append(r.order, s.Key)
	r.mu.Unlock()
	if r.fail[s.Key] {
		return errors.New("boom")
	}
	return nil
}

func statuses(res Result) string {
	var parts []string
	for _, o := range res.Outcomes {
		parts = append(parts, o.Key+"="+o.Status)
	}
	return strings.Join(parts, " ")
}

func TestDependencyOrderAndParallelism(t *testing.T) {
	rec := &recorder{delay: 20 * time.Millisecond}
	var view bytes.Buffer
	res := Execute(context.Background(), diamond(), rec, Options{Workers: 2, Progress: &view, Interval: 5 * time.Millisecond})
	if got := statuses(res); got != "t0=done t1=done c0=done c1=done s0=done s1=done r=done" {
		t.Fatalf("outcomes: %s", got)
	}
	pos := map[string]int{}
	for i, k := range rec.order {
		pos[k] = i
	}
	for _, s := range diamond() {
		for _, d := range s.Deps {
			if pos[d] > pos[s.Key] {
				t.Errorf("%s finished before its dependency %s: %v", s.Key, d, rec.order)
			}
		}
	}
	if rec.peak != 2 {
		t.Errorf("peak parallelism %d, want 2", rec.peak)
	}
	if rec.order[0] != "t1" && rec.order[1] != "t1" {
		t.Errorf("the costlier teacher should start first: %v", rec.order)
	}
	if !strings.Contains(view.String(), "[7/7]") || !strings.Contains(view.String(), "done r") {
		t.Errorf("progress lines:\n%s", view.String())
	}
}

func TestFailureBlocksOnlyDownstream(t *testing.T) {
	rec := &recorder{fail: map[string]bool{"c0": true}}
	res := Execute(context.Background(), diamond(), rec, Options{Workers: 2})
	want := "t0=done t1=done c0=failed c1=done s0=blocked s1=done r=blocked"
	if got := statuses(res); got != want {
		t.Errorf("outcomes: %s\nwant      %s", got, want)
	}
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), "c0: boom") {
		t.Errorf("Err() = %v", err)
	}
}

func TestDoneStepsAreSkipped(t *testing.T) {
	rec := &recorder{}
	done := map[string]bool{"t0": true, "c0": true, "external": true}
	steps := append(diamond(), plan.Step{Key: "x", Deps: []string{"external"}}, plan.Step{Key: "y", Deps: []string{"missing"}})
	res := Execute(context.Background(), steps, rec, Options{Workers: 1, Done: func(k string) bool { return done[k] }})
	want := "t0=skipped t1=done c0=skipped c1=done s0=done s1=done r=done x=done y=blocked"
	if got := statuses(res); got != want {
		t.Errorf("outcomes: %s\nwant      %s", got, want)
	}
	if len(rec.order) != 6 {
		t.Errorf("ran %v", rec.order)
	}
}

func TestCancel(t *testing.T) {
	rec := &recorder{delay: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(30 * time.Millisecond); cancel() }()
	res := Execute(ctx, diamond(), rec, Options{Workers: 2})
	if res.Count(Cancelled) != 7 || !errors.Is(res.Err(), context.Canceled) {
		t.Errorf("outcomes after cancel: %s", statuses(res))
	}
}

// TestBusyIsSkipped: a step another process is running is busy, not
// failed; its dependents are blocked, every other step runs, and Err wraps
// ErrBusy (kdcal run exits 6).
func TestBusyIsSkipped(t *testing.T) {
	rec := &recorder{}
	r := RunnerFunc(func(ctx context.Context, s plan.Step) error {
		if s.Key == "t0" {
			return fmt.Errorf("%s: %w", s.Key, ErrBusy)
		}
		return rec.Run(ctx, s)
	})
	res := Execute(context.Background(), diamond(), r, Options{Workers: 2})
	want := "t0=busy t1=done c0=blocked c1=done s0=blocked s1=done r=blocked"
	if got := statuses(res); got != want {
		t.Errorf("outcomes: %s\nwant      %s", got, want)
	}
	err := res.Err()
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "1 steps left to the other kdcal process running them (t0)") {
		t.Errorf("Err() = %v", err)
	}
	for _, o := range res.Outcomes {
		if o.Key == "c0" && !strings.Contains(o.Err.Error(), "dependency t0 is being run by another kdcal process") {
			t.Errorf("blocked c0: %v", o.Err)
		}
	}
	// A failure elsewhere wins: the exit status is that of a failed step.
	r2 := RunnerFunc(func(ctx context.Context, s plan.Step) error {
		switch s.Key {
		case "t0":
			return ErrBusy
		case "t1":
			return errors.New("boom")
		}
		return nil
	})
	if err := Execute(context.Background(), diamond(), r2, Options{Workers: 1}).Err(); errors.Is(err, ErrBusy) || err == nil {
		t.Errorf("busy and failed: Err() = %v, want the failure", err)
	}
}
