package inprocess

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/kdcal/kdcal/internal/executor"
	"github.com/kdcal/kdcal/internal/executor/executortest"
	"github.com/kdcal/kdcal/internal/plan"
)

// TestConformance runs the executor suite with steps run in this process.
func TestConformance(t *testing.T) {
	executortest.Suite{
		New: func(t *testing.T, h *executortest.Harness, _ int) executor.Executor {
			return New(h.Run)
		},
		Schedules: true,
	}.Run(t)
}

// TestInlineView: the view prints one line per finished step, with the
// overall count and an ETA, and draws nothing else (the steps own the
// terminal).
func TestInlineView(t *testing.T) {
	var view bytes.Buffer
	steps := executortest.Diamond()
	res, err := New(func(context.Context, plan.Step) error { return nil }).Execute(context.Background(), steps,
		executor.Options{Progress: &view, Terminal: true, Done: func(k string) bool { return k == "t0" }})
	if err != nil || res.Count(executor.Done) != 6 {
		t.Fatalf("Execute: %v, %+v", err, res)
	}
	lines := strings.Split(strings.TrimSpace(view.String()), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines, want one per step run:\n%s", len(lines), view.String())
	}
	for i, want := range []string{"[2/7] ", "[3/7] ", "[4/7] ", "[5/7] ", "[6/7] ", "[7/7] "} {
		if !strings.HasPrefix(lines[i]+" ", want+"done ") || !strings.Contains(lines[i], "elapsed · ETA") {
			t.Errorf("line %d: %q, want %q… with the ETA and the step", i, lines[i], want)
		}
	}
	if strings.Contains(view.String(), "\x1b[") {
		t.Errorf("the inline view redraws:\n%q", view.String())
	}
}
