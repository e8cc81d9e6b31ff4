package local

import (
	"bytes"
	"context"
	"errors"
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
