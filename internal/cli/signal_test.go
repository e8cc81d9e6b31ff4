package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gofrs/flock"

	"github.com/kdcal/kdcal/internal/pipeline"
	"github.com/kdcal/kdcal/internal/runstore"
)

// longStudy trains teachers (and a distilled student) that do not finish
// within the test, next to a scratch student that finishes in a second.
const longStudy = `name: long
seeds: [0, 1]
data:
  dataset: synthetic
  synthetic: {train: 3000, test: 1000, classes: 6, features: 16, seed: 3}
teacher:
  family: mlp
  sizes: [large]
  train: {epochs: 1000, batch_size: 32}
student:
  model: {hidden: [16]}
  train: {epochs: 2, batch_size: 32}
calibration: {methods: [temp]}
kd: {arms: [raw, scratch]}
report: {bootstrap: 50, permutations: 50}
`

// started starts cmd with its output in a buffer; wait returns its exit
// status once it has exited (at most within timeout; -1 when it has not).
func started(t *testing.T, cmd *exec.Cmd) (out *bytes.Buffer, wait func(timeout time.Duration) int) {
	t.Helper()
	out = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	return out, func(timeout time.Duration) int {
		select {
		case <-done:
			return cmd.ProcessState.ExitCode()
		case <-time.After(timeout):
			return -1
		}
	}
}

// waitFor polls until every path exists (a step's progress file: it is
// running, past its first epoch).
func waitFor(t *testing.T, paths ...string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for _, p := range paths {
		for {
			if _, err := os.Stat(p); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never appeared", p)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// progressFile is the progress file of a running step.
func progressFile(exp, key string) string {
	return filepath.Join(exp, key+".partial", pipeline.ProgressFile)
}

// TestSignalsStopCommands sends SIGINT or SIGTERM to kdcal in the middle of
// training (train-teachers, distill, run with two workers whose step
// processes each train a teacher) and in the middle of a report: each exits
// 130, publishes nothing half-done, and leaves no step locked. The time from
// the signal to the exit is logged: about 0.1 s for training, StopGrace
// where a phase does not check for the signal (the report's statistics).
func TestSignalsStopCommands(t *testing.T) {
	base := t.TempDir()
	os.WriteFile(filepath.Join(base, "long.yaml"), []byte(longStudy), 0o644)
	repExp, repCfg := fixtureStore(t)
	tests := []struct {
		name    string
		args    []string
		exp     string
		running []string // steps to wait for; their locks must be free afterwards
		sig     syscall.Signal
	}{
		{"train-teachers mid-epoch", []string{"train-teachers", "--seeds", "0"}, "tt",
			[]string{runstore.TeacherKey("large", 0)}, syscall.SIGINT},
		{"distill mid-epoch", []string{"distill", "--arm", "scratch", "--seeds", "0", "--set", "student.train.epochs=1000"}, "ds",
			[]string{runstore.ScratchKey(1000, 0)}, syscall.SIGINT},
		{"run with 2 workers", []string{"run", "--stage", "teachers", "--workers", "2"}, "run",
			[]string{runstore.TeacherKey("large", 0), runstore.TeacherKey("large", 1)}, syscall.SIGTERM},
		{"report", []string{"report", "--set", "report.bootstrap=200000", "--set", "report.formats=[]"}, "", nil, syscall.SIGINT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			exp, args := filepath.Join(base, tt.exp), append([]string{}, tt.args...)
			if tt.exp == "" { // the report of the fixture
				exp, args = repExp, append(args, "--config", repCfg, "--out", filepath.Join(base, "report-out"))
			} else {
				args = append(args, "--config", "long.yaml")
			}
			args = append(args, "--experiment", exp)
			cmd := kdcal(base, args...)
			out, wait := started(t, cmd)
			if tt.running == nil {
				waitFor(t, filepath.Join(base, "report-out.partial", runstore.ManifestFile))
			}
			for _, k := range tt.running {
				waitFor(t, progressFile(exp, k))
			}
			t0 := time.Now()
			cmd.Process.Signal(tt.sig)
			// A liveness bound, ten times the target: a command that ignores
			// the signal (the report took 16 s before StopGrace) fails here.
			code := wait(10 * StopGrace)
			t.Logf("%s: exit %d %s after %v", tt.name, code, tt.sig, time.Since(t0).Round(time.Millisecond))
			if code != ExitInterrupted {
				t.Fatalf("exit %d (-1: still running %s after the signal), want %d\n%s", code, 10*StopGrace, ExitInterrupted, out)
			}
			for _, k := range tt.running {
				if _, err := os.Stat(filepath.Join(exp, k)); err == nil {
					t.Errorf("%s was published although it was interrupted", k)
				}
				if ok, err := flock.New(filepath.Join(exp, k) + ".lock").TryLock(); !ok || err != nil {
					t.Errorf("%s is still locked after kdcal exited: %v", k, err)
				}
			}
			if tt.running == nil {
				if _, err := os.Stat(filepath.Join(base, "report-out")); err == nil {
					t.Error("an interrupted report was published")
				}
			}
		})
	}
}

// TestSecondRunSkipsBusySteps runs kdcal twice on one study: while the first
// trains both teachers, the second skips them as busy (not failed), still
// runs the step that does not need them (the scratch student), blocks the
// students that do, and exits 6. Each process writes its own logs: the
// busy attempt leaves none, so a teacher's log is the first process's
// alone. (Before, the second run reported the busy steps as failed, exited
// 1, and both processes appended to one log.)
func TestSecondRunSkipsBusySteps(t *testing.T) {
	base := t.TempDir()
	os.WriteFile(filepath.Join(base, "long.yaml"), []byte(longStudy), 0o644)
	exp := filepath.Join(base, "exp")
	first := kdcal(base, "run", "--config", "long.yaml", "--experiment", exp, "--stage", "teachers", "--workers", "2")
	firstOut, waitFirst := started(t, first)
	teachers := []string{runstore.TeacherKey("large", 0), runstore.TeacherKey("large", 1)}
	waitFor(t, progressFile(exp, teachers[0]), progressFile(exp, teachers[1]))

	second := kdcal(base, "run", "--config", "long.yaml", "--experiment", exp, "--stage", "teachers,students", "--workers", "2")
	out, err := second.CombinedOutput()
	if code := exitCode(err); code != ExitBusy {
		t.Errorf("second run: exit %d, want %d\n%s", code, ExitBusy, out)
	}
	for _, want := range []string{
		"busy    " + teachers[0] + ": another kdcal process is running it",
		"busy    " + teachers[1],
		"blocked students/tau4-kdw0.9-ep2/raw/large/seed-0: dependency " + teachers[0] + " is being run by another kdcal process",
		"kdcal run: 2 done, 0 already done, 0 failed, 2 busy, 2 blocked",
		"2 steps left to the other kdcal process running them",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("second run output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(exp, runstore.ScratchKey(2, 0), runstore.ManifestFile)); err != nil {
		t.Errorf("the second run did not run the scratch student: %v", err)
	}

	for _, k := range teachers {
		flat := strings.ReplaceAll(k, "/", "__")
		attempts, _ := filepath.Glob(filepath.Join(exp, "logs", flat+".*.log"))
		if len(attempts) != 1 {
			t.Errorf("%s: %d attempt logs %v, want only the first run's", k, len(attempts), attempts)
			continue
		}
		link, err := os.Readlink(filepath.Join(exp, "logs", flat+".log"))
		if err != nil || link != filepath.Base(attempts[0]) {
			t.Errorf("%s.log → %q (%v), want %s", flat, link, err, filepath.Base(attempts[0]))
		}
		if b, _ := os.ReadFile(attempts[0]); strings.Contains(string(b), "another process") {
			t.Errorf("the first run's log of %s holds the second run's output:\n%s", k, b)
		}
	}
	first.Process.Signal(os.Interrupt)
	if code := waitFirst(30 * time.Second); code != ExitInterrupted {
		t.Errorf("first run after Ctrl-C: exit %d\n%s", code, firstOut)
	}
}

// TestExitAfterStop: after the signal, a command that does not return
// within the grace period is ended with exit status 130.
func TestExitAfterStop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	codes := make(chan int, 1)
	var msg bytes.Buffer
	stopped := false
	go exitAfterStop(ctx, func() { stopped = true }, 10*time.Millisecond, &msg, func(c int) { codes <- c })
	select {
	case <-codes:
		t.Fatal("exited before the signal")
	case <-time.After(30 * time.Millisecond):
	}
	cancel()
	if code := <-codes; code != ExitInterrupted || !stopped || !strings.Contains(msg.String(), "interrupted") {
		t.Errorf("exit %d, signals restored %v, message %q", code, stopped, msg.String())
	}
}

// TestExitHold: the stop watchdog waits for a registered cleanup (the
// Slurm executor's scancel) before it exits.
func TestExitHold(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	end := holdOnCancel(ctx)
	codes := make(chan int, 1)
	go exitAfterStop(ctx, func() {}, 20*time.Millisecond, io.Discard, func(c int) { codes <- c })
	cancel()
	select {
	case <-codes:
		t.Fatal("exited while a cleanup held it")
	case <-time.After(100 * time.Millisecond):
	}
	end()
	if code := <-codes; code != ExitInterrupted {
		t.Errorf("exit %d", code)
	}
}
