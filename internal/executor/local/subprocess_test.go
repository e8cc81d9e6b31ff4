package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kdcal/kdcal/internal/plan"
)

// TestSubprocessLogs: each attempt at a step gets its own log, the step's
// .log links to the latest, an attempt that finds the step busy leaves no
// log and the link where it was, and a log from before per-attempt logs is
// kept.
func TestSubprocessLogs(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "fake-kdcal")
	// The fake kdcal prints its arguments and exits with $CODE.
	if err := os.WriteFile(exe, []byte("#!/bin/sh\necho \"attempt $@\"\nexit ${CODE:-0}\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	logs := filepath.Join(dir, "logs")
	os.MkdirAll(logs, 0o755)
	legacy := filepath.Join(logs, "teachers__tiny__seed-0.log")
	os.WriteFile(legacy, []byte("an old log\n"), 0o644)
	p := &Subprocess{Exe: exe, LogDir: logs, BusyExitCode: 6}
	step := plan.Step{Key: "teachers/tiny/seed-0"}
	run := func(code string) error {
		p.Env = []string{"CODE=" + code}
		return p.Run(context.Background(), step)
	}
	if err := run("0"); err != nil {
		t.Fatal(err)
	}
	first := p.LogPath(step.Key)
	if err := run("6"); !errors.Is(err, ErrBusy) {
		t.Fatalf("busy attempt: %v, want ErrBusy", err)
	}
	if target, _ := os.Readlink(legacy); target != filepath.Base(first) {
		t.Errorf("after the busy attempt the link points to %q, want the first attempt", target)
	}
	if err := run("1"); err == nil || errors.Is(err, ErrBusy) {
		t.Fatalf("failed attempt: %v", err)
	}
	last := p.LogPath(step.Key)
	entries, _ := filepath.Glob(filepath.Join(logs, "teachers__tiny__seed-0.*.log"))
	var legacyKept bool
	for _, e := range entries {
		if strings.HasSuffix(e, "-legacy.log") {
			b, _ := os.ReadFile(e)
			legacyKept = string(b) == "an old log\n"
		}
	}
	if len(entries) != 3 || !legacyKept || first == last {
		t.Errorf("logs %v (legacy kept: %v), want the old log and one per non-busy attempt", entries, legacyKept)
	}
	target, err := os.Readlink(legacy)
	if err != nil || target != filepath.Base(last) {
		t.Errorf("%s → %q (%v), want the latest attempt %s", legacy, target, err, filepath.Base(last))
	}
	if b, _ := os.ReadFile(last); !strings.Contains(string(b), "attempt step teachers/tiny/seed-0") {
		t.Errorf("latest log: %q", b)
	}
}
