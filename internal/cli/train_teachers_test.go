package cli

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/kdcal/kdcal/internal/testutil"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/data"
	"github.com/kdcal/kdcal/internal/model"
	"github.com/kdcal/kdcal/internal/npyfile"
	"github.com/kdcal/kdcal/internal/pipeline"
	"github.com/kdcal/kdcal/internal/runstore"
	"github.com/kdcal/kdcal/internal/stage"
	"github.com/kdcal/kdcal/internal/train"
)

func TestNewCmdTrainTeachers(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    TrainTeachersOptions
		wantErr string
	}{
		{"defaults", nil, TrainTeachersOptions{Workers: -1}, ""},
		{"sizes and seeds", []string{"--sizes", "small,large", "--seeds", "0,2"},
			TrainTeachersOptions{Sizes: []string{"small", "large"}, Seeds: []int{0, 2}, Workers: -1}, ""},
		{"list sizes", []string{"--list-sizes"}, TrainTeachersOptions{ListSizes: true, Workers: -1}, ""},
		{"workers", []string{"--workers", "3"}, TrainTeachersOptions{Workers: 3}, ""},
		{"one worker, on slurm", []string{"-j1", "--executor", "slurm"}, TrainTeachersOptions{Workers: 1, Executor: "slurm"}, ""},
		{"bad seed", []string{"--seeds", "x"}, TrainTeachersOptions{}, "invalid argument"},
		{"positional", []string{"large"}, TrainTeachersOptions{}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *TrainTeachersOptions
			cmd := NewCmdTrainTeachers(&Globals{}, func(o *TrainTeachersOptions) error { got = o; return nil })
			cmd.SetArgs(tt.args)
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			err := cmd.Execute()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, *got, cmp.FilterPath(func(p cmp.Path) bool {
				f := p.Last().String()
				return f == ".G"
			}, cmp.Ignore())); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

// syntheticConfig writes a config for a 2-epoch tiny-CNN study on the
// synthetic set (16 features read as a 4×4 image) into dir.
func syntheticConfig(t *testing.T, dir string, extra string) string {
	t.Helper()
	p := filepath.Join(dir, "study.yaml")
	yaml := "name: t\nexperiments_dir: " + filepath.Join(dir, "exp") + "\nseeds: [0]\n" +
		"data: {dataset: synthetic}\n" +
		"teacher:\n  family: cnn\n  sizes: [tiny]\n  train: {epochs: 2, batch_size: 64}\n" + extra
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTrainTeachersOutputs trains one teacher on the synthetic set and
// checks every output file against the data it came from, then checks that
// a rerun skips it.
func TestTrainTeachersOutputs(t *testing.T) {
	dir := t.TempDir()
	cfgPath := syntheticConfig(t, dir, "")
	code, out, stderr := run(t, "", nil, "train-teachers", "--config", cfgPath, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var first StageDoc
	if err := json.Unmarshal([]byte(out), &first); err != nil || len(first.Steps) != 1 || first.Steps[0].Outcome != "done" ||
		first.Steps[0].DurationSeconds <= 0 || first.Steps[0].Metrics["test_accuracy"] <= 0 || first.Counts["done"] != 1 {
		t.Errorf("--json (stdout holds only the document): %v\n%s", err, out)
	}
	step := filepath.Join(dir, "exp", "t", runstore.TeacherKey("tiny", 0))
	cfg := config.Default()
	cfg.Data.Dataset = "synthetic"
	splits, err := data.Load(cfg.Data)
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range []*data.Dataset{splits.Train, splits.Val, splits.Test} {
		logits, rows, cols, err := npyfile.ReadMatrix(filepath.Join(step, runstore.LogitsFile(sp.Name)))
		if err != nil || rows != sp.N || cols != sp.Classes || len(logits) != rows*cols {
			t.Errorf("%s logits: %d×%d, err %v; want %d×%d", sp.Name, rows, cols, err, sp.N, sp.Classes)
		}
		labels, err := npyfile.ReadInts(filepath.Join(step, runstore.LabelsFile(sp.Name)))
		if err != nil || !slices.Equal(labels, sp.Y) {
			t.Errorf("%s labels differ from the split's (err %v)", sp.Name, err)
		}
		if sp.Name != runstore.SplitTest {
			index, err := npyfile.ReadInts(filepath.Join(step, runstore.IndexFile(sp.Name)))
			if err != nil || !slices.Equal(index, sp.Index) {
				t.Errorf("%s index differs from the split's (err %v)", sp.Name, err)
			}
		}
	}
	var sum runstore.TeacherSummary
	if err := atomicfile.ReadJSON(filepath.Join(step, runstore.SummaryFile), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Size != "tiny" || sum.Epochs != 2 || sum.Params != 4*9+4+8*4*9+8+8*32+32+32*4+4 || sum.Test.N != splits.Test.N {
		t.Errorf("summary %+v", sum)
	}
	w, meta, err := model.Load(filepath.Join(step, runstore.ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	if w.Arch.NumParams() != sum.Params || meta.Dataset != "synthetic" || len(meta.Mean) != 1 || meta.Scale != 1 {
		t.Errorf("model metadata %+v", meta)
	}
	for _, f := range []string{train.CheckpointFile, pipeline.ProgressFile} {
		if _, err := os.Stat(filepath.Join(step, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left in the finished step", f)
		}
	}
	if lines := strings.Count(readFile(t, filepath.Join(step, runstore.MetricsLogFile)), "\n"); lines != 2 {
		t.Errorf("metrics.jsonl has %d lines, want 2", lines)
	}
	checkWithPython(t, step, splits.Test)

	code, out, stderr = run(t, "", nil, "train-teachers", "--config", cfgPath, "--json")
	if code != 0 || !strings.Contains(stderr, "skip: already done") {
		t.Errorf("rerun: exit %d, stderr %q; want a skip", code, stderr)
	}
	var doc StageDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil || !doc.OK || len(doc.Steps) != 1 {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if s := doc.Steps[0]; s.Key != runstore.TeacherKey("tiny", 0) || s.Outcome != "skipped" || s.Metrics["test_accuracy"] != sum.Test.Accuracy ||
		s.Metrics["params"] != float64(sum.Params) || s.Metrics["epochs"] != 2 {
		t.Errorf("--json step %+v; summary %+v", s, sum)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const python = "/usr/bin/python3"

// checkWithPython opens the step's .npy files with numpy (shapes and
// dtypes) and, when torch is installed, loads model.safetensors into a
// torch module (internal/model/testdata/torch_check.py parses the format by
// hand) and checks that it reproduces the stored test logits to 1e-5.
func checkWithPython(t *testing.T, step string, test *data.Dataset) {
	t.Helper()
	if err := exec.Command(python, "-c", "import numpy").Run(); err != nil {
		t.Logf("skipping the numpy check: %s cannot import numpy", python)
		return
	}
	script := `
import sys, numpy as np
d = sys.argv[1]
for s in ("train", "val", "test"):
    l = np.load(f"{d}/logits_{s}.npy"); y = np.load(f"{d}/labels_{s}.npy")
    assert l.dtype == np.float32 and l.ndim == 2 and y.dtype == np.int64 and y.shape == (l.shape[0],), (s, l.dtype, l.shape, y.dtype, y.shape)
    print(s, l.shape[0], l.shape[1], round(float((l.argmax(1) == y).mean()), 6))
for s in ("train", "val"):
    i = np.load(f"{d}/index_{s}.npy"); assert i.dtype == np.int64 and np.all(np.diff(i) > 0), s
`
	out, err := exec.Command(python, "-c", script, step).CombinedOutput()
	if err != nil {
		t.Fatalf("numpy could not read the outputs: %v\n%s", err, out)
	}
	t.Logf("numpy: %s", strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "; "))
	if testing.Short() {
		t.Log("skipping the torch check under -short (about 8 s; `make test-full` and CI run it)")
		return
	}
	if err := exec.Command(python, "-c", "import torch").Run(); err != nil {
		t.Logf("skipping the torch check: %s cannot import torch", python)
		return
	}
	xp := filepath.Join(t.TempDir(), "x.npy")
	if err := npyfile.WriteFloat32(xp, test.X, test.N, test.D); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(python, filepath.Join("..", "model", "testdata", "torch_check.py"),
		filepath.Join(step, runstore.ModelFile), xp, filepath.Join(step, runstore.LogitsFile("test")), "1e-5").CombinedOutput()
	if err != nil {
		t.Fatalf("torch did not reproduce the test logits: %v\n%s", err, out)
	}
	t.Logf("torch: %s", strings.TrimSpace(string(out)))
}

// TestTrainTeachersInterruptResume cancels training after the first of two
// epochs (as Ctrl-C does): the command exits 130 and leaves the work
// directory; a rerun resumes it and writes the same logits as an
// uninterrupted study.
// The resnet case is the BatchNorm family: the checkpoint carries its
// running statistics and num_batches_tracked, which the evaluation logits
// read.
func TestTrainTeachersInterruptResume(t *testing.T) {
	resnet := func(t *testing.T, dir string) string {
		p := syntheticConfig(t, dir, "")
		b := strings.Replace(readFile(t, p), "family: cnn\n  sizes: [tiny]", "family: resnet\n  sizes: [tiny]\n  resnet: {tiny: {depth: 8, width: 4}}", 1)
		if !strings.Contains(b, "family: resnet") {
			t.Fatal("syntheticConfig changed: the resnet case would train a cnn")
		}
		if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		family string
		config func(t *testing.T, dir string) string
	}{
		{"cnn", func(t *testing.T, dir string) string { return syntheticConfig(t, dir, "") }},
		{"resnet", resnet},
	} {
		t.Run(tc.family, func(t *testing.T) { interruptResume(t, tc.config) })
	}
}

func interruptResume(t *testing.T, config func(t *testing.T, dir string) string) {
	dirA, dirB := t.TempDir(), t.TempDir()
	cfgA, cfgB := config(t, dirA), config(t, dirB)
	if code, _, stderr := run(t, "", nil, "train-teachers", "--config", cfgB); code != 0 {
		t.Fatalf("uninterrupted run: exit %d: %s", code, stderr)
	}

	ctx, cancel := context.WithCancel(context.Background())
	g := NewGlobals(io.Discard, io.Discard, nil)
	g.ConfigFile = cfgA
	g.Pipe = pipeline.New(stage.Catalog{}, &stage.Teachers{OnEpoch: func(_ string, r train.Record) {
		if r.Epoch == 1 {
			cancel()
		}
	}})
	err := trainTeachersRun(ctx, &TrainTeachersOptions{G: g, Workers: -1})
	if ExitCode(err, nil) != ExitInterrupted {
		t.Fatalf("interrupted run: error %v (exit %d), want exit %d", err, ExitCode(err, nil), ExitInterrupted)
	}
	key := runstore.TeacherKey("tiny", 0)
	work := filepath.Join(dirA, "exp", "t", key) + ".partial"
	if _, err := os.Stat(filepath.Join(work, train.CheckpointFile)); err != nil {
		t.Fatalf("no checkpoint left for the resume: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dirA, "exp", "t", key)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the interrupted teacher looks finished")
	}

	code, _, stderr := run(t, "", nil, "train-teachers", "--config", cfgA)
	if code != 0 || !strings.Contains(stderr, "resumed from checkpoint") {
		t.Fatalf("resume: exit %d, stderr %q", code, stderr)
	}
	for _, s := range []string{"train", "val", "test"} {
		a := readFile(t, filepath.Join(dirA, "exp", "t", key, runstore.LogitsFile(s)))
		b := readFile(t, filepath.Join(dirB, "exp", "t", key, runstore.LogitsFile(s)))
		if a != b {
			t.Errorf("%s logits of the resumed teacher differ from the uninterrupted one", s)
		}
	}
}

// TestTrainTeachersErrors covers an undefined size (a configuration error
// listing the defined sizes) and a diverging teacher (exit 1, an error
// naming size, seed and epoch with a hint, and nothing published).
func TestTrainTeachersErrors(t *testing.T) {
	dir := t.TempDir()
	cfgPath := syntheticConfig(t, dir, "")
	code, _, stderr := run(t, "", nil, "train-teachers", "--config", cfgPath, "--sizes", "huge")
	if code != ExitConfig || !strings.Contains(stderr, `size "huge" is not defined in teacher.cnn; defined sizes: large, medium, small, tiny, xlarge`) {
		t.Errorf("undefined size: exit %d, stderr %q", code, stderr)
	}

	code, _, stderr = run(t, "", nil, "train-teachers", "--config", cfgPath,
		"--set", "teacher.train.optimizer=sgd", "--set", "teacher.train.lr=1e4", "--set", "teacher.train.schedule=constant")
	if code != ExitFailure || !strings.Contains(stderr, "kdcal: teacher tiny seed 0: ") ||
		!strings.Contains(stderr, "at epoch 1 step") || !strings.Contains(stderr, "; lower teacher.train.lr (now 10000) or check the data") {
		t.Errorf("diverging teacher: exit %d, stderr %q", code, stderr)
	}
	key := runstore.TeacherKey("tiny", 0)
	if _, err := os.Stat(filepath.Join(dir, "exp", "t", key)); !errors.Is(err, os.ErrNotExist) {
		t.Error("the diverged teacher was published")
	}
	var m runstore.Manifest
	if err := atomicfile.ReadJSON(filepath.Join(dir, "exp", "t", key)+".partial/manifest.json", &m); err != nil || m.Status != runstore.StatusFailed {
		t.Errorf("work manifest status %q (err %v), want failed", m.Status, err)
	}
}

func TestListSizes(t *testing.T) {
	code, out, stderr := run(t, "", nil, "train-teachers", "--list-sizes", "--sizes", "tiny,large")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"family cnn, input 1×28×28", "* tiny         13,242", "  medium      206,922",
		"* large       421,642", "xlarge    1,682,954", "student      50,890", "span 127×"} {
		if !strings.Contains(out, want) {
			t.Errorf("--list-sizes output lacks %q:\n%s", want, out)
		}
	}
}

// TestStageCommandInParallel: with two steps and two workers a stage
// command runs one `kdcal step` process per step, as `kdcal run` does —
// the [k/N] view, a summary, a log per step — with results byte-identical
// to one worker in this process; a step process's failure reaches the user
// with its own message, its log and, for a data error, its exit status.
func TestStageCommandInParallel(t *testing.T) {
	dir := t.TempDir()
	cfgPath := syntheticConfig(t, dir, "")
	two := []string{"train-teachers", "--config", cfgPath, "--seeds", "0,1"}
	code, _, stderr := run(t, "", nil, append(two, "-j", "2")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	exp := filepath.Join(dir, "exp", "t")
	for _, want := range []string{"kdcal train-teachers: 2 steps in " + exp + ", 2 workers, logs in " + filepath.Join(exp, "logs"),
		"[2/2] done teachers/tiny/seed-", "kdcal train-teachers: 2 done, 0 already done, 0 failed"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	for _, seed := range []int{0, 1} {
		log := filepath.Join(exp, "logs", strings.ReplaceAll(runstore.TeacherKey("tiny", seed), "/", "__")+".log")
		if b, err := os.ReadFile(log); err != nil || !strings.Contains(string(b), "teacher done") {
			t.Errorf("step log %s: %v\n%s", log, err, b)
		}
	}
	code, _, stderr = run(t, "", nil, append(two, "-j", "2")...)
	if code != 0 || strings.Count(stderr, "skip: already done") != 2 {
		t.Errorf("rerun: exit %d, want two skips:\n%s", code, stderr)
	}
	code, _, stderr = run(t, "", nil, append(two, "-j", "2", "--force")...)
	if code != 0 || !strings.Contains(stderr, "2 done, 0 already done") {
		t.Errorf("--force: exit %d, want both retrained by their step processes:\n%s", code, stderr)
	}

	// One worker, in this process: the same bytes.
	seqDir := t.TempDir()
	seqCfg := syntheticConfig(t, seqDir, "")
	code, _, stderr = run(t, "", nil, "train-teachers", "--config", seqCfg, "--seeds", "0,1", "-j", "1")
	if code != 0 || !strings.Contains(stderr, "2 steps in "+filepath.Join(seqDir, "exp", "t")+", in this process") {
		t.Fatalf("-j 1: exit %d:\n%s", code, stderr)
	}
	for _, seed := range []int{0, 1} {
		for _, f := range []string{runstore.LogitsFile("train"), runstore.LogitsFile("test"), runstore.ModelFile} {
			a := readFile(t, filepath.Join(exp, runstore.TeacherKey("tiny", seed), f))
			b := readFile(t, filepath.Join(seqDir, "exp", "t", runstore.TeacherKey("tiny", seed), f))
			if a != b {
				t.Errorf("seed %d %s: two processes and one process wrote different bytes", seed, f)
			}
		}
	}

	// A diverging teacher in a step process: its message, its log, exit 1.
	code, _, stderr = run(t, "", nil, "train-teachers", "--config", cfgPath, "--seeds", "2,3", "-j", "2",
		"--set", "teacher.train.optimizer=sgd", "--set", "teacher.train.lr=1e4", "--set", "teacher.train.schedule=constant")
	if code != ExitFailure || !strings.Contains(stderr, "kdcal: teacher tiny seed 2: ") || !strings.Contains(stderr, "at epoch 1 step") ||
		!strings.Contains(stderr, "; lower teacher.train.lr (now 10000) or check the data (log: "+filepath.Join(exp, "logs")) ||
		!strings.Contains(stderr, "2 failed") {
		t.Errorf("diverging teachers: exit %d, stderr %q", code, stderr)
	}
	// A missing dataset: the step processes' data error, exit 4.
	code, _, stderr = run(t, "", nil, "train-teachers", "--config", cfgPath, "--seeds", "4,5", "-j", "2",
		"--set", "data.dataset=mnist", "--set", "data.dir="+filepath.Join(dir, "nodata"))
	if code != ExitData || !strings.Contains(stderr, "kdcal data fetch") {
		t.Errorf("missing dataset: exit %d, stderr %q", code, stderr)
	}
}

// TestInProcessStepMatchesStepProcess: a step run in this process (a stage
// command with one step) writes the bytes `kdcal run`'s step processes
// write. On real data the OpenBLAS build multithreads the CNN's GEMMs
// unless run.blas_threads is applied in-process too (it was only passed to
// step processes as OPENBLAS_NUM_THREADS, and the teacher's logits
// differed). Synthetic data is too small to show it.
func TestInProcessStepMatchesStepProcess(t *testing.T) {
	data := testutil.RequireDataset(t, "fashion-mnist")
	cfg := func(dir string) string {
		p := filepath.Join(dir, "study.yaml")
		yaml := "name: t\nexperiments_dir: " + filepath.Join(dir, "exp") + "\nseeds: [0]\n" +
			"data: {dataset: fashion-mnist, dir: " + data + ", train_limit: 1200}\n" +
			"teacher:\n  family: cnn\n  sizes: [tiny]\n  train: {epochs: 1}\n"
		if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	procDir, inDir := t.TempDir(), t.TempDir()
	if code, _, stderr := run(t, "", nil, "run", "--config", cfg(procDir), "--stage", "teachers"); code != 0 {
		t.Fatalf("run --stage teachers: exit %d: %s", code, stderr)
	}
	code, _, stderr := run(t, "", nil, "train-teachers", "--config", cfg(inDir))
	if code != 0 || !strings.Contains(stderr, "in this process") {
		t.Fatalf("train-teachers: exit %d, want one step in this process:\n%s", code, stderr)
	}
	for _, f := range []string{runstore.LogitsFile("train"), runstore.LogitsFile("test")} {
		a := readFile(t, filepath.Join(procDir, "exp", "t", runstore.TeacherKey("tiny", 0), f))
		b := readFile(t, filepath.Join(inDir, "exp", "t", runstore.TeacherKey("tiny", 0), f))
		if a != b {
			t.Errorf("%s: the step process and this process wrote different bytes", f)
		}
	}
}
