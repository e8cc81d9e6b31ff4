package cli

import (
	"bytes"
	"fmt"
	"github.com/kdcal/kdcal/internal/stage"
	"github.com/kdcal/kdcal/internal/testutil"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary act as kdcal itself: `kdcal run` starts
// each step as a child process of os.Executable(), which in tests is this
// binary, so with KDCALTEST_AS_MAIN=1 it runs the CLI instead of the tests.
// It also does when its first argument is not a test flag (go test passes
// -test.* first; a step child gets "step KEY …"): a child started without
// the variable must never run the tests again, which would start children
// of its own, and so on.
func TestMain(m *testing.M) {
	if os.Getenv("KDCALTEST_AS_MAIN") == "1" || (len(os.Args) > 1 && !strings.HasPrefix(os.Args[1], "-test.")) {
		os.Exit(Main(os.Args[1:], stage.All()))
	}
	os.Exit(m.Run())
}

// runStudy is a small synthetic study whose training steps take about a
// second each, so that a kill lands inside epochs.
const runStudy = `name: s
seeds: [0, 1]
data:
  dataset: synthetic
  synthetic: {train: 3000, test: 1000, classes: 6, features: 16, seed: 3}
teacher:
  family: mlp
  sizes: [tiny, large]
  train: {epochs: 6, batch_size: 32}
student:
  model: {hidden: [16]}
  train: {epochs: 6, batch_size: 32}
calibration: {methods: [temp, isotonic]}
kd: {calibrator: isotonic}
report: {bootstrap: 50, permutations: 50}
`

// kdcal starts this test binary as `kdcal args...` in dir.
func kdcal(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "KDCALTEST_AS_MAIN=1", "OPENBLAS_NUM_THREADS=1")
	return cmd
}

// results collects every file whose bytes must not depend on how the study
// was run: logits, labels, indices and fitted calibrators.
func results(t *testing.T, root string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		name := info.Name()
		if strings.HasSuffix(name, ".npy") || name == "params.json" || name == "model.safetensors" {
			rel, _ := filepath.Rel(root, p)
			if strings.Contains(rel, ".partial") {
				t.Errorf("unfinished step left behind: %s", rel)
			}
			b, _ := os.ReadFile(p)
			out[rel] = b
		}
		return nil
	})
	return out
}

// countSteps counts finished steps and work directories of interrupted ones.
func countSteps(root string) (done, partial int) {
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		switch {
		case info.IsDir() && strings.HasSuffix(p, ".partial"):
			partial++
			return filepath.SkipDir
		case info.Name() == "manifest.json" && !strings.Contains(p, ".partial"):
			done++
		}
		return nil
	})
	return done, partial
}

// TestKillAndResume runs the study uninterrupted with one worker, then again
// with two workers killed with SIGKILL at several moments and resumed: the
// final results must be byte-identical (so parallel equals sequential, and
// a crash loses nothing but time).
func TestKillAndResume(t *testing.T) {
	testutil.Slow(t, "about 25 s: a synthetic study run sequentially, then killed and resumed five times")
	base := t.TempDir()
	os.WriteFile(filepath.Join(base, "s.yaml"), []byte(runStudy), 0o644)

	seq := kdcal(base, "run", "--config", "s.yaml", "--experiment", "seq", "--workers", "1")
	t0 := time.Now()
	if out, err := seq.CombinedOutput(); err != nil {
		t.Fatalf("sequential run: %v\n%s", err, out)
	}
	t.Logf("uninterrupted sequential run: %s", time.Since(t0).Round(time.Millisecond))

	// Ctrl-C first: the run stops its steps and exits 130; what finished stays.
	intr := kdcal(base, "run", "--config", "s.yaml", "--experiment", "par", "--workers", "2")
	var ibuf bytes.Buffer
	intr.Stdout, intr.Stderr = &ibuf, &ibuf
	if err := intr.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	intr.Process.Signal(os.Interrupt)
	if err := intr.Wait(); intr.ProcessState.ExitCode() != ExitInterrupted {
		t.Fatalf("Ctrl-C: exit %d (%v), want %d\n%s", intr.ProcessState.ExitCode(), err, ExitInterrupted, ibuf.String())
	}
	done, partial := countSteps(filepath.Join(base, "par"))
	t.Logf("Ctrl-C after 700ms: exit 130, %d steps done, %d interrupted mid-step", done, partial)

	// Then SIGKILL at several points of the study: during the teachers, right
	// after them (calibration and students starting), and twice among the
	// students. Each kill must land before the study is complete.
	for i, after := range []int{0, 4, 12, 18} {
		cmd := kdcal(base, "run", "--config", "s.yaml", "--experiment", "par", "--workers", "2")
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		start := time.Now()
		for ok := false; !ok; {
			select {
			case <-exited:
				t.Fatalf("kill %d: the run finished before %d steps were done\n%s", i+1, after, buf.String())
			case <-time.After(20 * time.Millisecond):
			}
			done, _ := countSteps(filepath.Join(base, "par"))
			// after = 0: kill 300 ms in, while the first teachers train.
			ok = done >= after && (after > 0 || time.Since(start) > 300*time.Millisecond)
			if time.Since(start) > time.Minute {
				t.Fatalf("kill %d: %d steps never finished", i+1, after)
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		time.Sleep(200 * time.Millisecond) // children die with their parent (PR_SET_PDEATHSIG)
		done, partial := countSteps(filepath.Join(base, "par"))
		if done >= 23 {
			t.Fatalf("kill %d landed after the study was complete", i+1)
		}
		t.Logf("kill %d (after ≥ %d steps): %d steps done, %d interrupted mid-step", i+1, after, done, partial)
	}
	resume := kdcal(base, "run", "--config", "s.yaml", "--experiment", "par", "--workers", "2")
	out, err := resume.CombinedOutput()
	if err != nil {
		t.Fatalf("resumed run: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "0 failed") {
		t.Errorf("resumed run output:\n%s", out)
	}
	want, got := results(t, filepath.Join(base, "seq")), results(t, filepath.Join(base, "par"))
	if len(want) == 0 || len(got) != len(want) {
		t.Fatalf("%d result files after resume, %d uninterrupted", len(got), len(want))
	}
	var differ []string
	for name, b := range want {
		if !bytes.Equal(b, got[name]) {
			differ = append(differ, name)
		}
	}
	sort.Strings(differ)
	if len(differ) > 0 {
		t.Errorf("%d of %d files differ between the killed-and-resumed parallel run and the sequential one: %v",
			len(differ), len(want), differ)
	}
	// Parent and step processes resolved one configuration: the store holds one.
	if cfgs, _ := filepath.Glob(filepath.Join(base, "par", "configs", "*.yaml")); len(cfgs) != 1 {
		t.Errorf("configurations recorded by the runs: %v, want one", cfgs)
	}
	// Nothing is left to do.
	dry := kdcal(base, "run", "--config", "s.yaml", "--experiment", "par", "--dry-run")
	if out, err := dry.CombinedOutput(); err != nil || !strings.Contains(string(out), "0 to run") {
		t.Errorf("dry run after completion: %v\n%s", err, out)
	}
}

// TestRunOnSlurm runs a small study with `kdcal run --executor slurm` on the
// real single-node Slurm that .ci/run starts (scripts/slurm-ci.sh), then
// resubmits and checks that finished steps are skipped.
func TestRunOnSlurm(t *testing.T) {
	testutil.Slow(t, "about 20 s: a synthetic study on the local Slurm cluster")
	if os.Getenv("SLURM_CONF") == "" {
		t.Skip("SLURM_CONF is not set: start a local cluster with scripts/slurm-ci.sh start (CI does)")
	}
	if _, err := exec.LookPath("sbatch"); err != nil {
		t.Skip("sbatch not on PATH: install slurm-client (scripts/slurm-ci.sh does)")
	}
	if err := exec.Command("timeout", "5", "sinfo").Run(); err != nil {
		t.Skipf("no Slurm cluster answers (sinfo: %v)", err)
	}
	base := t.TempDir()
	study := strings.Replace(runStudy, "report: {", "run: {slurm: {poll: 500ms}}\nreport: {", 1)
	os.WriteFile(filepath.Join(base, "s.yaml"), []byte(study), 0o644)
	t0 := time.Now()
	out, err := kdcal(base, "run", "--config", "s.yaml", "--executor", "slurm").CombinedOutput()
	t.Logf("slurm run (%s):\n%s", time.Since(t0).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("kdcal run --executor slurm: %v", err)
	}
	if done, partial := countSteps(filepath.Join(base, "experiments", "s")); done != 23 || partial != 0 {
		t.Errorf("%d steps done, %d partial; want 23 and 0", done, partial)
	}
	if _, err := os.Stat(filepath.Join(base, "experiments", "s", "report", "README.md")); err != nil {
		t.Error(err)
	}
	out, err = kdcal(base, "run", "--config", "s.yaml", "--executor", "slurm").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "all 23 steps are done") {
		t.Errorf("resubmission: %v\n%s", err, out)
	}
}

// BenchmarkRunWorkers runs the synthetic study of TestKillAndResume with one
// worker and with two, each from an empty experiment, and reports both wall
// times and their ratio: `kdcal run` should use both cores of a 2-core
// machine (issue target: ≥ 1.8× a single worker on the quick study).
func BenchmarkRunWorkers(b *testing.B) {
	base := b.TempDir()
	os.WriteFile(filepath.Join(base, "s.yaml"), []byte(runStudy), 0o644)
	wall := func(workers string, i int) float64 {
		t0 := time.Now()
		exp := fmt.Sprintf("exp-%s-%d", workers, i)
		if out, err := kdcal(base, "run", "--config", "s.yaml", "--experiment", exp, "--workers", workers).CombinedOutput(); err != nil {
			b.Fatalf("kdcal run -j %s: %v\n%s", workers, err, out)
		}
		return time.Since(t0).Seconds()
	}
	var one, two float64
	for i := 0; i < b.N; i++ {
		one += wall("1", i)
		two += wall("2", i)
	}
	b.ReportMetric(one/float64(b.N), "s/1-worker")
	b.ReportMetric(two/float64(b.N), "s/2-workers")
	b.ReportMetric(one/two, "speedup")
	b.ReportMetric(0, "ns/op")
}
