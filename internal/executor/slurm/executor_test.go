package slurm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/executor"
	"github.com/kdcal/kdcal/internal/executor/executortest"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/testutil"
)

// TestMain lets the test binary run a step of the conformance suite as an
// array task: `<test binary> step KEY --harness DIR`.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "step" {
		os.Exit(executortest.Main(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// testExecutor is the Slurm executor of a harness: each step is an array
// task running this test binary.
func testExecutor(h *executortest.Harness) *Executor {
	exe, _ := filepath.Abs(os.Args[0])
	return &Executor{
		Options:      testOptions(h.Dir),
		Command:      func(s plan.Step) []string { return append([]string{exe}, h.StepArgs(s.Key)...) },
		BusyExitCode: executortest.BusyExitCode,
	}
}

// TestConformance runs the executor suite on the real cluster: stages are
// arrays chained afterok, so a failure blocks every later stage
// (StageBarrier), and Slurm, not kdcal, picks which ready task starts.
func TestConformance(t *testing.T) {
	requireCluster(t)
	testutil.Slow(t, "about 13 s: the executor suite on the local Slurm cluster")
	executortest.Suite{
		New:          func(t *testing.T, h *executortest.Harness, _ int) executor.Executor { return testExecutor(h) },
		TempDir:      testDir,
		StageBarrier: true,
	}.Run(t)
}

// clusterMaxArraySize asks the cluster for its MaxArraySize.
func clusterMaxArraySize(t *testing.T) int {
	t.Helper()
	bin, err := lookCommands()
	if err != nil {
		t.Fatal(err)
	}
	n, err := (&Submission{bin: bin}).maxArraySize(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSplitLargeStage: a stage with more tasks than the cluster's
// MaxArraySize is submitted as several arrays, each with indices below
// MaxArraySize, the next stage depending on all of them, and every task
// runs in dependency order. It needs a cluster with a small MaxArraySize:
// scripts/slurm-ci.sh with SLURM_CI_MAX_ARRAY_SIZE=4 (as .ci/run starts it).
func TestSplitLargeStage(t *testing.T) {
	requireCluster(t)
	maxArray := clusterMaxArraySize(t)
	if maxArray > 20 {
		t.Skipf("MaxArraySize of this cluster is %d: a stage past it would take minutes; start the test cluster "+
			"with SLURM_CI_MAX_ARRAY_SIZE=4 scripts/slurm-ci.sh start (.ci/run does)", maxArray)
	}
	n := 2*maxArray + 1 // three arrays: maxArray, maxArray, 1
	var steps []plan.Step
	var teachers []string
	for i := range n {
		k := fmt.Sprintf("t%d", i)
		teachers = append(teachers, k)
		steps = append(steps, plan.Step{Key: k, Stage: plan.StageTeachers})
	}
	steps = append(steps, plan.Step{Key: "r", Stage: plan.StageReport, Deps: teachers})
	h := newTestHarness(t)
	ex := testExecutor(h)
	var sub *Submission
	ex.Submitted = func(s *Submission) { sub = s }
	res, err := ex.Execute(context.Background(), steps, executor.Options{})
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if got := res.Count(executor.Done); got != n+1 {
		t.Fatalf("%d of %d steps done: %+v", got, n+1, res.Outcomes)
	}
	var names []string
	for _, st := range sub.Stages {
		names = append(names, fmt.Sprintf("%s(%s, %d tasks)", st.Name, st.Stage, len(st.Tasks)))
		if len(st.Tasks) > maxArray {
			t.Errorf("array %s has %d tasks, more than MaxArraySize %d allows", st.Name, len(st.Tasks), maxArray)
		}
	}
	want := fmt.Sprintf("teachers.1(teachers, %d tasks) teachers.2(teachers, %d tasks) teachers.3(teachers, 1 tasks) report(report, 1 tasks)", maxArray, maxArray)
	if got := strings.Join(names, " "); got != want {
		t.Errorf("arrays %s\nwant   %s", got, want)
	}
	var m manifest
	if err := atomicfile.ReadJSON(filepath.Join(sub.Dir, "tasks.json"), &m); err != nil {
		t.Fatal(err)
	}
	last := m.Stages[len(m.Stages)-1]
	dep := "--dependency=afterok:" + sub.Stages[0].JobID + ":" + sub.Stages[1].JobID + ":" + sub.Stages[2].JobID
	if !strings.Contains(strings.Join(last.Sbatch, " "), dep) {
		t.Errorf("report array submitted with %v, want %s", last.Sbatch, dep)
	}
	// The report ran after every teacher.
	evs := readEvents(t, h)
	for _, k := range teachers {
		if evs["end "+k] == 0 || evs["start r"] < evs["end "+k] {
			t.Errorf("r started before %s ended (events %v)", k, evs)
		}
	}
}

// TestSplitFailureBlocksLaterStage: a failure in one array of a split stage
// does not mark the other arrays of that stage not-run, and blocks the
// next stage.
func TestSplitFailureBlocksLaterStage(t *testing.T) {
	requireCluster(t)
	maxArray := clusterMaxArraySize(t)
	if maxArray > 20 {
		t.Skipf("MaxArraySize %d: start the cluster with SLURM_CI_MAX_ARRAY_SIZE=4", maxArray)
	}
	var steps []plan.Step
	var keys []string
	for i := range maxArray + 1 {
		k := fmt.Sprintf("t%d", i)
		keys = append(keys, k)
		steps = append(steps, plan.Step{Key: k, Stage: plan.StageTeachers})
	}
	steps = append(steps, plan.Step{Key: "r", Stage: plan.StageReport, Deps: keys})
	h := newTestHarness(t, "t0")
	res, err := testExecutor(h).Execute(context.Background(), steps, executor.Options{})
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	for _, o := range res.Outcomes {
		want := executor.Done
		switch o.Key {
		case "t0":
			want = executor.Failed
		case "r":
			want = executor.Blocked
		}
		if o.Status != want {
			t.Errorf("%s: %s (%v), want %s", o.Key, o.Status, o.Err, want)
		}
	}
}

// newTestHarness is a harness in a directory the cluster sees, in which the
// given steps fail.
func newTestHarness(t *testing.T, failing ...string) *executortest.Harness {
	t.Helper()
	b := map[string]executortest.Behaviour{}
	for _, k := range failing {
		b[k] = executortest.Fail
	}
	h, err := executortest.NewHarness(testDir(t), b, 0)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// readEvents maps "start KEY" and "end KEY" to the time in ns.
func readEvents(t *testing.T, h *executortest.Harness) map[string]int64 {
	t.Helper()
	evs, err := h.Events()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, e := range evs {
		out[e.What+" "+e.Key] = e.At.UnixNano()
	}
	return out
}
