package slurm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/config"
)

// The tests in this file submit real jobs. They need a Slurm client on PATH
// and a cluster that answers sinfo; start one with
//
//	SLURM_CI_DIR=/tmp/slurm-ci scripts/slurm-ci.sh start
//	export SLURM_CONF=/tmp/slurm-ci/slurm.conf
//
// The jobs must see the test's directory: t.TempDir() works on the
// single-node CI cluster; on a real cluster point KDCAL_SLURM_TEST_DIR at a
// shared filesystem.

// clusterOnce checks once per test binary whether a cluster answers: sinfo
// retries an absent controller for about 10 s.
var (
	clusterOnce sync.Once
	noCluster   string // why the integration tests skip; empty when a cluster answers
)

func requireCluster(t *testing.T) {
	t.Helper()
	const hint = "; start a test cluster with SLURM_CI_DIR=/tmp/slurm-ci scripts/slurm-ci.sh start (root) " +
		"and export SLURM_CONF=/tmp/slurm-ci/slurm.conf"
	clusterOnce.Do(func() {
		if _, err := exec.LookPath("sbatch"); err != nil {
			noCluster = "sbatch not on PATH: no Slurm client" + hint
			return
		}
		conf := os.Getenv("SLURM_CONF")
		if conf == "" {
			conf = "/etc/slurm/slurm.conf"
		}
		if _, err := os.Stat(conf); err != nil {
			noCluster = fmt.Sprintf("no Slurm configuration (SLURM_CONF=%q): %v%s", os.Getenv("SLURM_CONF"), err, hint)
			return
		}
		ctx, stop := context.WithTimeout(context.Background(), 15*time.Second)
		defer stop()
		out, err := exec.CommandContext(ctx, "sinfo", "--noheader", "--format=%a").CombinedOutput()
		if err != nil {
			noCluster = fmt.Sprintf("no Slurm cluster answers sinfo (SLURM_CONF=%q): %v: %s%s",
				conf, err, strings.TrimSpace(string(out)), hint)
		}
	})
	if noCluster != "" {
		t.Skip(noCluster)
	}
}

func testDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("KDCAL_SLURM_TEST_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "slurmtest-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return t.TempDir()
}

func testOptions(dir string) Options {
	return Options{
		Slurm:   config.Slurm{Time: "00:05:00", Mem: "100M", CPUsPerTask: 1, Poll: "200ms"},
		Dir:     filepath.Join(dir, "slurm"),
		Env:     []string{"KDCAL_TEST_GREETING=hello from slurm"},
		JobName: "kdcal-test",
	}
}

// sh returns a task that runs script with /bin/sh; args become $1, $2, ...
func sh(key, script string, args ...string) Task {
	return Task{Key: key, Args: append([]string{"/bin/sh", "-c", script, "sh"}, args...)}
}

// writeTask writes "<key> $KDCAL_TEST_GREETING" into out.
func writeTask(key, out string) Task {
	return sh(key, `echo "$1 $KDCAL_TEST_GREETING" >"$2"`, key, out)
}

// copyTask copies in to out (fails when in does not exist yet).
func copyTask(key, in, out string) Task {
	return sh(key, `cat "$1" >"$2"`, in, out)
}

func waitResults(t *testing.T, s *Submission, timeout time.Duration) ([]Result, error, []Progress) {
	t.Helper()
	ctx, stop := context.WithTimeout(context.Background(), timeout)
	defer stop()
	var seen []Progress
	start := time.Now()
	res, err := s.Wait(ctx, func(p Progress) {
		seen = append(seen, p)
		t.Logf("%5.1fs %s", time.Since(start).Seconds(), p)
	})
	if ctx.Err() != nil {
		t.Fatalf("Wait did not return within %v: %v", timeout, err)
	}
	return res, err, seen
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("task output: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// inQueue returns the squeue lines of the given jobs that are pending,
// running or about to run (a finished or cancelled job may still be listed
// for a moment as CG, completing: that is not a job left behind).
func inQueue(t *testing.T, ids []string) string {
	t.Helper()
	out, _ := exec.Command("squeue", "--noheader", "--states=PENDING,RUNNING,CONFIGURING,SUSPENDED",
		"--jobs="+strings.Join(ids, ",")).CombinedOutput()
	if strings.Contains(string(out), "Invalid job id") {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// TestSlurmFailedStage: stage A has three tasks that write files and one that
// exits 3; stage B depends on A and must never run. Then the same plan with
// the failure fixed runs completely in the same directory (a resubmission).
func TestSlurmFailedStage(t *testing.T) {
	requireCluster(t)
	dir := testDir(t)
	opts := testOptions(dir)
	out := func(name string) string { return filepath.Join(dir, name) }
	stageA := Stage{Name: "A", Tasks: []Task{
		writeTask("a0", out("a0.txt")),
		writeTask("a1", out("a1.txt")),
		sh("a2-fails", `echo "a2 is failing on purpose" >&2; exit 3`),
		writeTask("a3", out("a3.txt")),
	}}
	stageB := Stage{Name: "B", Tasks: []Task{
		copyTask("b0", out("a0.txt"), out("b0.txt")),
		copyTask("b1", out("a1.txt"), out("b1.txt")),
	}}

	start := time.Now()
	s, err := Submit(context.Background(), opts, []Stage{stageA, {Name: "empty"}, stageB})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	t.Logf("submitted jobs %v in %v", s.JobIDs(), time.Since(start).Round(time.Millisecond))
	if len(s.Stages) != 2 {
		t.Fatalf("submitted %d stages, want 2 (the empty one skipped)", len(s.Stages))
	}
	res, err, seen := waitResults(t, s, 60*time.Second)
	t.Logf("first submission done in %v", time.Since(start).Round(time.Millisecond))

	var te *TasksError
	if !errors.As(err, &te) {
		t.Fatalf("Wait error = %v, want a *TasksError", err)
	}
	if len(te.Failed) != 1 || len(te.NotRun) != 2 {
		t.Fatalf("Wait error lists %d failed and %d not run, want 1 and 2:\n%v", len(te.Failed), len(te.NotRun), err)
	}
	if len(res) != 6 {
		t.Fatalf("got %d results, want 6: %v", len(res), res)
	}
	for i, key := range []string{"a0", "a1", "a3"} {
		r := res[[]int{0, 1, 3}[i]]
		if r.Key != key || r.State != Completed || r.ExitCode != 0 {
			t.Errorf("result %v, want %s COMPLETED with exit code 0", r, key)
		}
		if got, want := mustRead(t, out(key+".txt")), key+" hello from slurm"; got != want {
			t.Errorf("%s wrote %q, want %q", key, got, want)
		}
	}
	failed := res[2]
	if failed.Key != "a2-fails" || failed.State != Failed || failed.ExitCode != 3 {
		t.Errorf("failing task: %v, want FAILED with exit code 3", failed)
	}
	if log := mustRead(t, failed.LogPath); !strings.Contains(log, "a2 is failing on purpose") {
		t.Errorf("log %s lacks the task's stderr:\n%s", failed.LogPath, log)
	}
	if !strings.Contains(err.Error(), failed.LogPath) || !strings.Contains(err.Error(), "exit code 3") {
		t.Errorf("error message does not name the log and exit code:\n%v", err)
	}
	for _, r := range res[4:] {
		if r.Stage != "B" || r.State != NotRun || !strings.Contains(r.Reason, "dependency") {
			t.Errorf("stage B result %v, want NOT_RUN because of the dependency", r)
		}
		if _, err := os.Stat(r.LogPath); err == nil {
			t.Errorf("stage B task %d has a log %s: it ran", r.Index, r.LogPath)
		}
	}
	for _, f := range []string{"b0.txt", "b1.txt"} {
		if _, err := os.Stat(out(f)); err == nil {
			t.Errorf("%s exists: stage B ran although stage A failed", f)
		}
	}
	if q := inQueue(t, s.JobIDs()); q != "" {
		t.Errorf("jobs still in the queue after Wait:\n%s", q)
	}
	if len(seen) == 0 {
		t.Error("progress was never reported")
	} else if last := seen[len(seen)-1].Stages[0]; last.Completed != 3 || last.Failed != 1 {
		t.Errorf("last progress of stage A = %+v, want 3 completed, 1 failed", last)
	}

	// Resubmit with the failure fixed: everything runs, B after A.
	stageA.Tasks[2] = writeTask("a2", out("a2.txt"))
	stageB.Tasks = append(stageB.Tasks, copyTask("b2", out("a2.txt"), out("b2.txt")))
	start = time.Now()
	s2, err := Submit(context.Background(), opts, []Stage{stageA, stageB})
	if err != nil {
		t.Fatalf("second Submit: %v", err)
	}
	if s2.Dir == s.Dir {
		t.Errorf("both submissions wrote into %s", s.Dir)
	}
	res, err, _ = waitResults(t, s2, 60*time.Second)
	t.Logf("second submission done in %v", time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("second Wait: %v", err)
	}
	for _, r := range res {
		if r.State != Completed || r.ExitCode != 0 || r.Reason != "" {
			t.Errorf("second submission: %v, want COMPLETED", r)
		}
	}
	for _, k := range []string{"0", "1", "2"} {
		if got, want := mustRead(t, out("b"+k+".txt")), "a"+k+" hello from slurm"; got != want {
			t.Errorf("b%s.txt = %q, want %q (copied from stage A's output)", k, got, want)
		}
	}
	var m manifest
	if err := atomicfile.ReadJSON(filepath.Join(s2.Dir, "tasks.json"), &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Stages) != 2 || m.Stages[1].JobID != s2.Stages[1].JobID || m.Stages[1].Tasks[2].Key != "b2" {
		t.Errorf("tasks.json does not map stages and indices to keys: %+v", m)
	}
}

// TestSlurmNeverSatisfiedFallback checks that Wait itself cancels a job whose
// dependency can never be satisfied when Slurm does not (scripts without
// --kill-on-invalid-dep=yes; a cluster may also set kill_invalid_depend off).
func TestSlurmNeverSatisfiedFallback(t *testing.T) {
	requireCluster(t)
	killInvalidDep = false
	t.Cleanup(func() { killInvalidDep = true })
	dir := testDir(t)
	opts := testOptions(dir)
	s, err := Submit(context.Background(), opts, []Stage{
		{Name: "A", Tasks: []Task{sh("fails", "exit 1")}},
		{Name: "B", Tasks: []Task{writeTask("b", filepath.Join(dir, "b.txt"))}},
	})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	res, err, _ := waitResults(t, s, 60*time.Second)
	var te *TasksError
	if !errors.As(err, &te) || len(te.Failed) != 1 || len(te.NotRun) != 1 {
		t.Fatalf("Wait error = %v, want 1 failed and 1 not run", err)
	}
	if r := res[1]; r.State != NotRun || !strings.Contains(r.Reason, "dependency") {
		t.Errorf("stage B: %v, want NOT_RUN because of the dependency", r)
	}
	if !s.neverDeps[s.Stages[1].JobID] {
		t.Error("Wait did not scancel stage B itself")
	}
}

// TestSlurmCancel: cancelling Wait's context cancels running and pending
// tasks promptly.
func TestSlurmCancel(t *testing.T) {
	requireCluster(t)
	dir := testDir(t)
	s, err := Submit(context.Background(), testOptions(dir), []Stage{
		{Name: "A", Tasks: []Task{sh("sleeps", "sleep 60")}},
		{Name: "B", Tasks: []Task{writeTask("b", filepath.Join(dir, "b.txt"))}},
	})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var cancelledAt time.Time
	res, err := s.Wait(ctx, func(p Progress) {
		if p.Stages[0].Running > 0 && cancelledAt.IsZero() {
			// the script writes .started right after it starts; let it get there
			time.Sleep(300 * time.Millisecond)
			cancelledAt = time.Now()
			cancel()
		}
	})
	if cancelledAt.IsZero() {
		t.Fatalf("the task never ran: %v %v", res, err)
	}
	took := time.Since(cancelledAt)
	t.Logf("Wait returned %v after the cancel", took.Round(time.Millisecond))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait error = %v, want one wrapping context.Canceled", err)
	}
	if took > 20*time.Second {
		t.Errorf("Wait took %v to return after the cancel", took)
	}
	if len(res) != 2 || res[0].State != Cancelled || res[1].State != NotRun {
		t.Errorf("results %v, want A CANCELLED and B NOT_RUN", res)
	}
	if q := inQueue(t, s.JobIDs()); q != "" {
		t.Errorf("jobs still in the queue after the cancel:\n%s", q)
	}
}

// TestSlurmRejected: sbatch's own explanation reaches the user.
func TestSlurmRejected(t *testing.T) {
	requireCluster(t)
	opts := testOptions(testDir(t))
	opts.Slurm.Partition = "no-such-partition"
	_, err := Submit(context.Background(), opts, []Stage{{Name: "A", Tasks: []Task{sh("a", "true")}}})
	if err == nil {
		t.Fatal("Submit to a missing partition succeeded")
	}
	for _, want := range []string{`stage "A"`, "invalid partition", "run.slurm"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestSlurmRollback: when sbatch rejects a later stage, Submit cancels the
// stages it already queued. Stage B has one task more than the cluster's
// MaxArraySize, and Options.MaxArraySize claims the cluster takes it, so
// Submit does not split it and sbatch rejects the array.
func TestSlurmRollback(t *testing.T) {
	requireCluster(t)
	opts := testOptions(testDir(t))
	opts.JobName = fmt.Sprintf("kdcal-rollback-%d", os.Getpid())
	limit := clusterMaxArraySize(t)
	opts.MaxArraySize = limit + 1
	big := Stage{Name: "B"}
	for i := range limit + 1 {
		big.Tasks = append(big.Tasks, sh(fmt.Sprint(i), "true"))
	}
	s, err := Submit(context.Background(), opts, []Stage{{Name: "A", Tasks: []Task{sh("a", "sleep 60")}}, big})
	if err == nil {
		_ = s.Cancel()
		t.Fatalf("sbatch accepted an array of %d tasks with MaxArraySize %d", limit+1, limit)
	}
	if !strings.Contains(err.Error(), `stage "B"`) {
		t.Errorf("error does not name stage B: %v", err)
	}
	// A cancelled job may still be listed for a moment as CG (completing):
	// only a job that is pending, running or about to run was left behind.
	out, qerr := exec.Command("squeue", "--noheader", "--states=PENDING,RUNNING,CONFIGURING,SUSPENDED",
		"--name="+opts.JobName+"-A").CombinedOutput()
	if qerr != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("stage A still queued after the rejection of stage B (%v):\n%s", qerr, out)
	}
	t.Logf("Submit: %v", err)
}
