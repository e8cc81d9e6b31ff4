package cli

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/npyfile"
	"github.com/kdcal/kdcal/internal/runstore"
)

// externalStudy is a tiny synthetic study: 600 official training examples
// (60 held out for calibration, the train split limited to 300, so that
// slicing by official index is exercised), one small MLP teacher size, one
// seed, both KD arms.
func externalStudy(dir, name, extra string) string {
	return "name: " + name + "\nexperiments_dir: " + filepath.Join(dir, "exp") + "\nseeds: [0]\n" +
		"data:\n  dataset: synthetic\n  train_limit: 300\n  synthetic: {train: 600, test: 200, classes: 4, features: 16, seed: 3}\n" +
		"teacher:\n  family: mlp\n  sizes: [small]\n  train: {epochs: 3, batch_size: 32}\n" + extra +
		"student:\n  family: mlp\n  model: {hidden: [8]}\n  train: {epochs: 2, batch_size: 32}\n" +
		"kd: {temperature: [4], kd_weight: [0.9], arms: [raw, calibrated]}\n" +
		"calibration: {methods: [temp]}\n" +
		"report: {bootstrap: 20, permutations: 20, formats: []}\n" +
		"run: {workers: 1}\n"
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// exportTeacher writes a kdcal teacher's logits in the external layout, as
// a researcher's PyTorch script would: train_logits.npy in the official
// order of the whole training set (validation rows at their official
// positions; the rows data.train_limit dropped, which kdcal never trained
// on, as zeros) and test_logits.npy.
func exportTeacher(t *testing.T, step, ext string, official int) {
	t.Helper()
	var full []float32
	var classes int
	for _, split := range []string{runstore.SplitTrain, runstore.SplitVal} {
		logits, n, c, err := npyfile.ReadMatrix(filepath.Join(step, runstore.LogitsFile(split)))
		if err != nil {
			t.Fatal(err)
		}
		index, err := npyfile.ReadInts(filepath.Join(step, runstore.IndexFile(split)))
		if err != nil || len(index) != n {
			t.Fatalf("%s index: %v (%d rows)", split, err, len(index))
		}
		if full == nil {
			classes = c
			full = make([]float32, official*c)
		}
		for i, j := range index {
			for k := range c {
				full[j*c+k] = float32(logits[i*c+k])
			}
		}
	}
	if err := npyfile.WriteFloat32(filepath.Join(ext, "train_logits.npy"), full, official, classes); err != nil {
		t.Fatal(err)
	}
	test, n, c, err := npyfile.ReadMatrix(filepath.Join(step, runstore.LogitsFile(runstore.SplitTest)))
	if err != nil {
		t.Fatal(err)
	}
	t32 := make([]float32, len(test))
	for i, x := range test {
		t32[i] = float32(x)
	}
	if err := npyfile.WriteFloat32(filepath.Join(ext, "test_logits.npy"), t32, n, c); err != nil {
		t.Fatal(err)
	}
}

// TestExternalTeacherMatchesTrained trains a tiny teacher, exports its
// logits to the external layout in official order, runs the same study
// with teacher.source external, and compares the teacher outputs, the
// calibration's params.json and the students' logits byte for byte; then
// replaces an external file and checks that the teacher and what depends
// on it are redone.
func TestExternalTeacherMatchesTrained(t *testing.T) {
	// About 4 s (one teacher, a calibration, two students and a report as
	// step processes): fast enough for -short, which keeps it in `make test`.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "trained.yaml"), []byte(externalStudy(dir, "trained", "")))
	if code, _, stderr := run(t, "", nil, "run", "--config", filepath.Join(dir, "trained.yaml"),
		"--stage", "teachers", "--stage", "calibration", "--stage", "students"); code != 0 {
		t.Fatalf("trained study: exit %d\n%s", code, stderr)
	}
	trained := filepath.Join(dir, "exp", "trained")
	ext := filepath.Join(dir, "torch-teachers")
	exportTeacher(t, filepath.Join(trained, runstore.TeacherKey("small", 0)), filepath.Join(ext, "small", "seed-0"), 600)
	writeFile(t, filepath.Join(ext, "small", "params.json"), []byte(`{"params": 676}`))

	extra := "  source: external\n  external_dir: " + ext + "\n"
	writeFile(t, filepath.Join(dir, "external.yaml"), []byte(externalStudy(dir, "external", extra)))
	code, _, stderr := run(t, "", nil, "run", "--config", filepath.Join(dir, "external.yaml"))
	if code != 0 {
		t.Fatalf("external study: exit %d\n%s", code, stderr)
	}
	external := filepath.Join(dir, "exp", "external")
	setting := "tau4-kdw0.9-ep2"
	same := []string{
		filepath.Join(runstore.CalibrationKey("temp", "small", 0), runstore.CalibParamsFile),
		filepath.Join(runstore.StudentKey(setting, "raw", "small", 0), runstore.LogitsFile(runstore.SplitTest)),
		filepath.Join(runstore.StudentKey(setting, "raw", "small", 0), runstore.LogitsFile(runstore.SplitVal)),
		filepath.Join(runstore.StudentKey(setting, "calibrated", "small", 0), runstore.LogitsFile(runstore.SplitTest)),
		filepath.Join(runstore.StudentKey(setting, "calibrated", "small", 0), runstore.LogitsFile(runstore.SplitVal)),
	}
	for _, split := range []string{runstore.SplitTrain, runstore.SplitVal, runstore.SplitTest} {
		same = append(same, filepath.Join(runstore.TeacherKey("small", 0), runstore.LogitsFile(split)),
			filepath.Join(runstore.TeacherKey("small", 0), runstore.LabelsFile(split)))
	}
	for _, f := range same {
		a, errA := os.ReadFile(filepath.Join(trained, f))
		b, errB := os.ReadFile(filepath.Join(external, f))
		if errA != nil || errB != nil {
			t.Fatalf("%s: %v, %v", f, errA, errB)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between the trained and the external teacher (%d and %d bytes)", f, len(a), len(b))
		}
	}
	var tsum, esum runstore.TeacherSummary
	if err := atomicfile.ReadJSON(filepath.Join(trained, runstore.TeacherKey("small", 0), runstore.SummaryFile), &tsum); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.ReadJSON(filepath.Join(external, runstore.TeacherKey("small", 0), runstore.SummaryFile), &esum); err != nil {
		t.Fatal(err)
	}
	// The trainer evaluates the same float32 logits: equal to rounding of the
	// float64 sums (1e-12).
	if esum.Params != 676 || esum.Family != "external" || math.Abs(esum.Test.Accuracy-tsum.Test.Accuracy) > 1e-12 ||
		math.Abs(esum.Test.ECE-tsum.Test.ECE) > 1e-12 || math.Abs(esum.Val.NLL-tsum.Val.NLL) > 1e-12 {
		t.Errorf("external summary %+v\ntrained summary %+v", esum, tsum)
	}
	if b, err := os.ReadFile(filepath.Join(external, runstore.ReportKey, "README.md")); err != nil ||
		!strings.Contains(string(b), "external, logits from "+ext) {
		t.Errorf("report README does not name the external teachers (%v)", err)
	}

	// Replacing an external file redoes the teacher and what depends on it.
	test, n, c, err := npyfile.ReadMatrix(filepath.Join(ext, "small", "seed-0", "test_logits.npy"))
	if err != nil {
		t.Fatal(err)
	}
	t32 := make([]float32, len(test))
	for i, x := range test {
		t32[i] = float32(x * 2)
	}
	if err := npyfile.WriteFloat32(filepath.Join(ext, "small", "seed-0", "test_logits.npy"), t32, n, c); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = run(t, "", nil, "run", "--config", filepath.Join(dir, "external.yaml"), "--stage", "teachers", "--stage", "calibration")
	if code != 0 || !strings.Contains(stderr, "2 done, 0 already done") {
		t.Errorf("after replacing test_logits.npy: exit %d, want the teacher and its calibration redone\n%s", code, stderr)
	}
}

// writeLogits writes an n×c float32 .npy of arbitrary finite logits.
func writeLogits(t *testing.T, path string, n, c int) {
	t.Helper()
	x := make([]float32, n*c)
	for i := range x {
		x[i] = float32(i%7) - 3
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := npyfile.WriteFloat32(path, x, n, c); err != nil {
		t.Fatal(err)
	}
}

// TestExternalTeacherErrors pins the error of each bad external teacher:
// exit 3 for teacher.* keys, exit 4 naming the file for missing or bad
// data, and nothing run or written in the store (the scratch student, which
// needs no teacher, does not start either).
func TestExternalTeacherErrors(t *testing.T) {
	// A valid layout: sizes small and large, seed 0, 600×4 and 200×4 logits.
	valid := func(t *testing.T, ext string) {
		for _, size := range []string{"small", "large"} {
			writeLogits(t, filepath.Join(ext, size, "seed-0", "train_logits.npy"), 600, 4)
			writeLogits(t, filepath.Join(ext, size, "seed-0", "test_logits.npy"), 200, 4)
		}
	}
	nan := func(t *testing.T, path string) {
		b, _ := os.ReadFile(path)
		copy(b[len(b)-4:], []byte{0, 0, 0xc0, 0x7f}) // float32 NaN, little-endian, in the last element
		os.WriteFile(path, b, 0o644)
	}
	tests := []struct {
		name   string
		set    []string
		break_ func(t *testing.T, ext string)
		code   int
		want   []string
	}{
		{"no external_dir", []string{"teacher.external_dir="}, nil, ExitConfig,
			[]string{"teacher.external_dir: must name the directory"}},
		{"external_dir missing", []string{"teacher.external_dir=EXT/nope"}, nil, ExitConfig,
			[]string{"teacher.external_dir", "EXT/nope does not exist"}},
		{"bad source", []string{"teacher.source=torch"}, nil, ExitConfig,
			[]string{`teacher.source: "torch" is not one of trained, external`}},
		{"size not a name", []string{"teacher.sizes=[../x]"}, nil, ExitConfig,
			[]string{`size "../x" must use only letters`}},
		{"missing size", []string{"teacher.sizes=[small, huge]"}, nil, ExitData,
			[]string{"EXT/huge: teacher size \"huge\" (teacher.sizes) has no directory", "found: large, small"}},
		{"missing seed", []string{"seeds=[0, 1]"}, nil, ExitData,
			[]string{"EXT/small/seed-1/train_logits.npy: missing: teacher small has no logits for seed 1", "found: seed-0"}},
		{"train rows", nil, func(t *testing.T, ext string) {
			writeLogits(t, filepath.Join(ext, "large", "seed-0", "train_logits.npy"), 540, 4)
		},
			ExitData, []string{"EXT/large/seed-0/train_logits.npy: 540 rows, but the official training set (validation rows included) of synthetic has 600 examples"}},
		{"test rows", nil, func(t *testing.T, ext string) {
			writeLogits(t, filepath.Join(ext, "small", "seed-0", "test_logits.npy"), 199, 4)
		},
			ExitData, []string{"EXT/small/seed-0/test_logits.npy: 199 rows, but the official test set of synthetic has 200 examples"}},
		{"classes", nil, func(t *testing.T, ext string) {
			writeLogits(t, filepath.Join(ext, "small", "seed-0", "train_logits.npy"), 600, 10)
		},
			ExitData, []string{"EXT/small/seed-0/train_logits.npy: 10 columns, but synthetic has 4 classes"}},
		{"NaN", nil, func(t *testing.T, ext string) { nan(t, filepath.Join(ext, "small", "seed-0", "test_logits.npy")) },
			ExitData, []string{"EXT/small/seed-0/test_logits.npy: non-finite value NaN at row 199, column 3"}},
		{"integer logits", nil, func(t *testing.T, ext string) {
			npyfile.WriteInt64(filepath.Join(ext, "small", "seed-0", "test_logits.npy"), make([]int, 200))
		}, ExitData, []string{"EXT/small/seed-0/test_logits.npy", "float32"}},
		{"params.json", nil, func(t *testing.T, ext string) {
			writeFile(t, filepath.Join(ext, "small", "params.json"), []byte(`{"parameters": 12}`))
		}, ExitData, []string{"EXT/small/params.json: must be {\"params\": N}", "unknown field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ext := filepath.Join(dir, "ext")
			valid(t, ext)
			if tt.break_ != nil {
				tt.break_(t, ext)
			}
			study := strings.Replace(externalStudy(dir, "x", "  source: external\n  external_dir: "+ext+"\n"),
				"sizes: [small]", "sizes: [small, large]", 1)
			study = strings.Replace(study, "arms: [raw, calibrated]", "arms: [raw, calibrated, scratch]", 1)
			writeFile(t, filepath.Join(dir, "x.yaml"), []byte(study))
			for _, cmd := range [][]string{{"run"}, {"train-teachers"}} {
				args := append(cmd, "--config", filepath.Join(dir, "x.yaml"))
				for _, s := range tt.set {
					args = append(args, "--set", strings.ReplaceAll(s, "EXT", ext))
				}
				code, _, stderr := run(t, "", nil, args...)
				if code != tt.code {
					t.Errorf("%s: exit %d, want %d\n%s", cmd[0], code, tt.code, stderr)
				}
				for _, w := range tt.want {
					if w = strings.ReplaceAll(w, "EXT", ext); !strings.Contains(stderr, w) {
						t.Errorf("%s: stderr lacks %q:\n%s", cmd[0], w, stderr)
					}
				}
				for _, d := range []string{"teachers", "students"} {
					if _, err := os.Stat(filepath.Join(dir, "exp", "x", d)); err == nil {
						t.Errorf("%s: %s/ was written before the check failed", cmd[0], d)
					}
				}
			}
		})
	}
}

// TestExternalListSizes: --list-sizes shows the external sizes with their
// params.json counts and the seeds found, not the family's size table.
func TestExternalListSizes(t *testing.T) {
	dir := t.TempDir()
	ext := filepath.Join(dir, "ext")
	writeLogits(t, filepath.Join(ext, "small", "seed-0", "train_logits.npy"), 600, 4)
	writeFile(t, filepath.Join(ext, "small", "params.json"), []byte(`{"params": 12345}`))
	writeFile(t, filepath.Join(dir, "x.yaml"), []byte(externalStudy(dir, "x", "  source: external\n  external_dir: "+ext+"\n")))
	code, out, stderr := run(t, "", nil, "train-teachers", "--list-sizes", "--config", filepath.Join(dir, "x.yaml"))
	if code != 0 || !strings.Contains(out, "small  12,345  seed-0") || strings.Contains(out, "tiny") {
		t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
}
