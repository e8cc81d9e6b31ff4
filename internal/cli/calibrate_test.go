package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"codeberg.org/sbinet/npyio"
	"gonum.org/v1/gonum/mat"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/calibrate"
	"github.com/kdcal/kdcal/internal/calibrate/calibratetest"
	"github.com/kdcal/kdcal/internal/npyfile"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/runstore"
	"github.com/kdcal/kdcal/internal/stage"
	"github.com/kdcal/kdcal/internal/testutil"
)

// calibCLI runs one kdcal command line and returns exit code, stdout, stderr.
func calibCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errw bytes.Buffer
	code := Run(context.Background(), stage.All(), args, &out, &errw, nil)
	return code, out.String(), errw.String()
}

func TestCalibrateFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want CalibrateOptions
	}{
		{"defaults", nil, CalibrateOptions{Teacher: "all", Workers: -1}},
		{"experiment", []string{"--method", "temp,vector", "--teacher", "large", "--seeds", "0,2", "--force", "--bins", "10"},
			CalibrateOptions{Methods: []string{"temp", "vector"}, Teacher: "large", Seeds: []int{0, 2}, Force: true, Bins: 10, Workers: -1}},
		{"workers and executor", []string{"-j", "2", "--executor", "slurm"},
			CalibrateOptions{Teacher: "all", Workers: 2, Executor: "slurm"}},
		{"anyone's logits", []string{"--method", "temp", "--val-logits", "v.npy", "--val-labels", "vl.npy",
			"--test-logits", "t.npy", "--test-labels", "tl.npy", "--json", "--out-probs", "p.npy"},
			CalibrateOptions{Methods: []string{"temp"}, Teacher: "all", ValLogits: "v.npy", ValLabels: "vl.npy",
				TestLogits: "t.npy", TestLabels: "tl.npy", JSON: true, OutProbs: "p.npy", Workers: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *CalibrateOptions
			cmd := NewCmdCalibrate(&Globals{}, func(o *CalibrateOptions) error { got = o; return nil })
			cmd.SetArgs(tt.args)
			cmd.SetOut(io.Discard)
			if err := cmd.Execute(); err != nil {
				t.Fatal(err)
			}
			got.G = nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("options %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestVerifyCalibrateOptions(t *testing.T) {
	ok := func(o CalibrateOptions) CalibrateOptions {
		if o.Teacher == "" {
			o.Teacher = "all"
		}
		return o
	}
	tests := []struct {
		name    string
		opts    CalibrateOptions
		wantErr string
	}{
		{"experiment defaults", ok(CalibrateOptions{}), ""},
		{"logits", ok(CalibrateOptions{ValLogits: "v", ValLabels: "l"}), ""},
		{"logits with test", ok(CalibrateOptions{ValLogits: "v", ValLabels: "l", TestLogits: "t", TestLabels: "u"}), ""},
		{"unknown method", ok(CalibrateOptions{Methods: []string{"temp", "platt"}}), `--method "platt": use one of none, temp, vector, matrix, hist, isotonic`},
		{"negative bins", ok(CalibrateOptions{Bins: -1}), "--bins -1"},
		{"labels without logits", ok(CalibrateOptions{ValLabels: "l"}), "needs both --val-logits and --val-labels"},
		{"logits without labels", ok(CalibrateOptions{ValLogits: "v"}), "needs both --val-logits and --val-labels"},
		{"test logits alone", ok(CalibrateOptions{ValLogits: "v", ValLabels: "l", TestLogits: "t"}), "give both or neither"},
		{"test labels alone", ok(CalibrateOptions{ValLogits: "v", ValLabels: "l", TestLabels: "t"}), "give both or neither"},
		{"teacher with logits", CalibrateOptions{ValLogits: "v", ValLabels: "l", Teacher: "large"}, "cannot be combined with --val-logits"},
		{"force with logits", ok(CalibrateOptions{ValLogits: "v", ValLabels: "l", Force: true}), "with --val-logits alone nothing is written"},
		{"out-probs", ok(CalibrateOptions{ValLogits: "v", ValLabels: "l", Methods: []string{"temp"}, OutProbs: "p.npy"}), ""},
		{"out-probs with force", ok(CalibrateOptions{ValLogits: "v", ValLabels: "l", Methods: []string{"temp"}, OutProbs: "p.npy", Force: true}), ""},
		{"out-probs without a method", ok(CalibrateOptions{ValLogits: "v", ValLabels: "l", OutProbs: "p.npy"}), "give exactly one --method"},
		{"out-probs with two methods", ok(CalibrateOptions{ValLogits: "v", ValLabels: "l", Methods: []string{"temp", "hist"}, OutProbs: "p.npy"}), "p.npy holds one method's"},
		{"out-probs in experiment mode", ok(CalibrateOptions{Methods: []string{"temp"}, OutProbs: "p.npy"}), "--out-probs p.npy writes the probabilities of --val-logits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verifyCalibrateOptions(&tt.opts)
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("unexpected error %v", err)
				}
				return
			}
			var ue *UsageError
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errorsAs(err, &ue) {
				t.Errorf("error %v, want a usage error containing %q", err, tt.wantErr)
			}
		})
	}
}

func errorsAs(err error, target **UsageError) bool {
	ue, ok := err.(*UsageError)
	*target = ue
	return ok
}

// writeSplit writes logits (float32) and labels (int64) of a split as .npy.
func writeSplit(t *testing.T, dir, name string, s calibrate.Split) (string, string) {
	t.Helper()
	f32 := make([]float32, len(s.Logits))
	for i, v := range s.Logits {
		f32[i] = float32(v)
	}
	lp, yp := filepath.Join(dir, name+"_logits.npy"), filepath.Join(dir, name+"_labels.npy")
	if err := npyfile.WriteFloat32(lp, f32, len(s.Labels), s.C); err != nil {
		t.Fatal(err)
	}
	if err := npyfile.WriteInt64(yp, s.Labels); err != nil {
		t.Fatal(err)
	}
	return lp, yp
}

func writeNpyValue(t *testing.T, path string, v any) {
	t.Helper()
	var b bytes.Buffer
	if err := npyio.Write(&b, v); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Over-confident logits (×3, so the calibrating temperature is ≈ 3) in
// the documented JSON shape, from float32/int64 and float64/int32 files.
func TestCalibrateLogitsJSON(t *testing.T) {
	dir := t.TempDir()
	val := calibratetest.Data(31, 4000, 10, 3)
	test := calibratetest.Data(32, 3000, 10, 3)
	vl, vy := writeSplit(t, dir, "val", val)
	// The test pair as float64 logits and int32 labels.
	tl, ty := filepath.Join(dir, "test64.npy"), filepath.Join(dir, "test32.npy")
	writeNpyValue(t, tl, mat.NewDense(len(test.Labels), 10, test.Logits))
	y32 := make([]int32, len(test.Labels))
	for i, y := range test.Labels {
		y32[i] = int32(y)
	}
	writeNpyValue(t, ty, y32)

	code, out, stderr := calibCLI(t, "calibrate", "--method", "temp", "--val-logits", vl, "--val-labels", vy,
		"--test-logits", tl, "--test-labels", ty, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out)
	}
	temp, _ := res["params"].(map[string]any)["temperature"].(float64)
	if res["method"] != "temp" || math.Abs(temp/3-1) > 0.05 {
		t.Errorf("method %v, temperature %v; want temp, ≈ 3", res["method"], temp)
	}
	for _, split := range []string{"val", "test"} {
		s, ok := res[split].(map[string]any)
		if !ok {
			t.Fatalf("no %q object in %s", split, out)
		}
		before, after := s["before"].(map[string]any), s["after"].(map[string]any)
		for _, k := range []string{"accuracy", "nll", "brier", "ece", "mce", "rmsce", "ece_debiased_l2", "ece_em", "cw_ece"} {
			b, okb := before[k].(float64)
			a, oka := after[k].(float64)
			if !okb || !oka || b < 0 || a < 0 || (k != "nll" && (b > 2 || a > 2)) {
				t.Errorf("%s: %s before %v after %v", split, k, before[k], after[k])
			}
		}
		if !(after["ece"].(float64) < before["ece"].(float64)) || after["accuracy"] != before["accuracy"] {
			t.Errorf("%s: ece %v → %v, accuracy %v → %v", split, before["ece"], after["ece"], before["accuracy"], after["accuracy"])
		}
	}
	if res["bins"] != 15.0 {
		t.Errorf("bins = %v", res["bins"])
	}

	// Several methods: a JSON array in --method order; --bins changes the bins.
	code, out, stderr = calibCLI(t, "calibrate", "--method", "temp,isotonic", "--bins", "10",
		"--val-logits", vl, "--val-labels", vy, "--json")
	var arr []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &arr) != nil || len(arr) != 2 ||
		arr[0]["method"] != "temp" || arr[1]["method"] != "isotonic" || arr[1]["bins"] != 10.0 || arr[0]["test"] != nil {
		t.Errorf("exit %d, %s\n%s", code, stderr, out)
	}
}

func TestCalibrateLogitsTable(t *testing.T) {
	dir := t.TempDir()
	vl, vy := writeSplit(t, dir, "val", calibratetest.Data(33, 2000, 4, 2))
	tl, ty := writeSplit(t, dir, "test", calibratetest.Data(34, 2000, 4, 2))
	code, out, stderr := calibCLI(t, "calibrate", "--method", "temp", "--val-logits", vl, "--val-labels", vy,
		"--test-logits", tl, "--test-labels", ty)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"method temp: T=", "val before", "test after", "cw_ece", "rmsce", "ece_debiased_l2", "converged true", "15 equal-width bins"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// Bad inputs are data errors (exit 4) naming the file; bad flags usage errors (exit 2).
func TestCalibrateLogitsBadInput(t *testing.T) {
	dir := t.TempDir()
	val := calibratetest.Data(35, 100, 3, 2)
	vl, vy := writeSplit(t, dir, "val", val)
	short := filepath.Join(dir, "short_labels.npy")
	npyfile.WriteInt64(short, val.Labels[:99])
	badLabel := filepath.Join(dir, "bad_labels.npy")
	bl := append([]int(nil), val.Labels...)
	bl[7] = 3
	npyfile.WriteInt64(badLabel, bl)
	nanLogits := filepath.Join(dir, "nan.npy")
	nl := make([]float32, 300)
	nl[5] = float32(math.NaN())
	npyfile.WriteFloat32(nanLogits, nl, 100, 3)
	empty := filepath.Join(dir, "empty.npy")
	npyfile.WriteFloat32(empty, nil, 0, 3)
	notNpy := filepath.Join(dir, "logits.csv")
	os.WriteFile(notNpy, []byte("1,2,3\n"), 0o644)
	fourClass := calibratetest.Data(36, 50, 4, 2)
	tl, ty := writeSplit(t, dir, "test4", fourClass)
	oneD := filepath.Join(dir, "oned.npy")
	writeNpyValue(t, oneD, []float64{1, 2, 3})

	base := []string{"calibrate", "--method", "temp"}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string
	}{
		{"label count mismatch", []string{"--val-logits", vl, "--val-labels", short}, ExitData, []string{short, "99 labels", vl, "100 rows"}},
		{"label out of range", []string{"--val-logits", vl, "--val-labels", badLabel}, ExitData, []string{badLabel, "label 3 at index 7", "[0, 3)"}},
		{"NaN logits", []string{"--val-logits", nanLogits, "--val-labels", vy}, ExitData, []string{nanLogits, "non-finite", "row 1, column 2"}},
		{"empty logits", []string{"--val-logits", empty, "--val-labels", vy}, ExitData, []string{empty, "empty"}},
		{"not an npy file", []string{"--val-logits", notNpy, "--val-labels", vy}, ExitData, []string{notNpy, "not a NumPy .npy file"}},
		{"missing file", []string{"--val-logits", filepath.Join(dir, "nope.npy"), "--val-labels", vy}, ExitData, []string{"nope.npy", "not found"}},
		{"1-D logits", []string{"--val-logits", oneD, "--val-labels", vy}, ExitData, []string{oneD, "2-D"}},
		{"logits as labels", []string{"--val-logits", vl, "--val-labels", vl}, ExitData, []string{vl, "1-D"}},
		{"test classes differ", []string{"--val-logits", vl, "--val-labels", vy, "--test-logits", tl, "--test-labels", ty}, ExitData,
			[]string{tl, "4 classes", vl, "has 3"}},
		{"no labels", []string{"--val-logits", vl}, ExitUsage, []string{"--val-labels"}},
		{"test logits alone", []string{"--val-logits", vl, "--val-labels", vy, "--test-logits", tl}, ExitUsage, []string{"give both or neither"}},
		{"seeds with logits", []string{"--val-logits", vl, "--val-labels", vy, "--seeds", "1"}, ExitUsage, []string{"cannot be combined"}},
		{"unknown method", []string{"--method", "platt", "--val-logits", vl, "--val-labels", vy}, ExitUsage, []string{`"platt"`, "isotonic"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := calibCLI(t, append(base, tt.args...)...)
			if code != tt.wantCode || out != "" {
				t.Errorf("exit %d (want %d), stdout %q, stderr %q", code, tt.wantCode, out, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
		})
	}
}

// fakeTeacher publishes a finished teacher step with synthetic logits
// (over-confident ×scale) under the hash the default configuration gives
// it (or under hash when non-empty) — a fixture standing in for train-teachers.
func fakeTeacher(t *testing.T, exp, size string, seed int, scale float64, hash string) {
	t.Helper()
	fakeTeacherWith(t, exp, size, seed, hash, func(split int) calibrate.Split {
		return calibratetest.Data(uint64(40+10*seed+split), 3000, 10, scale)
	})
}

// fakeTeacherWith publishes a finished teacher step whose val (split 0)
// and test (split 1) logits are data(split), stored as float32.
func fakeTeacherWith(t *testing.T, exp, size string, seed int, hash string, data func(split int) calibrate.Split) {
	t.Helper()
	g := NewGlobals(io.Discard, io.Discard, nil)
	cfg, err := g.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if hash == "" {
		hash = plan.TeacherHash(cfg, size, seed)
	}
	store, err := runstore.Open(exp)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Begin(runstore.Manifest{Key: runstore.TeacherKey(size, seed), Kind: runstore.KindTeacher, ConfigHash: hash, Seed: &seed})
	if err != nil {
		t.Fatal(err)
	}
	for i, split := range []string{runstore.SplitVal, runstore.SplitTest} {
		d := data(i)
		f32 := make([]float32, len(d.Logits))
		for j, v := range d.Logits {
			f32[j] = float32(v)
		}
		if err := npyfile.WriteFloat32(st.Path(runstore.LogitsFile(split)), f32, len(d.Labels), d.C); err != nil {
			t.Fatal(err)
		}
		if err := npyfile.WriteInt64(st.Path(runstore.LabelsFile(split)), d.Labels); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Commit(); err != nil {
		t.Fatal(err)
	}
}

// separable is calibratetest.Data with each true class's logit raised to
// 5 above the row's largest: every example is classified correctly with a
// margin, so the validation NLL keeps falling as T → 0 and the temperature
// fit stops at its bound, unconverged.
func separable(seed uint64, n, c int) calibrate.Split {
	d := calibratetest.Data(seed, n, c, 1)
	for i, y := range d.Labels {
		d.Logits[i*c+y] = slices.Max(d.Logits[i*c:(i+1)*c]) + 5
	}
	return d
}

func TestCalibrateExperiment(t *testing.T) {
	exp := t.TempDir()
	fakeTeacher(t, exp, "small", 0, 2.5, "")
	args := []string{"calibrate", "-e", exp, "--teacher", "small", "--seeds", "0", "--method", "temp,hist"}
	code, out, stderr := calibCLI(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"small", "temp", "T=2.", "hist", "15 bins", "fitted", "→"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	g := NewGlobals(io.Discard, io.Discard, nil)
	cfg, _ := g.LoadConfig()
	store, _ := runstore.Open(exp)
	key := runstore.CalibrationKey("temp", "small", 0)
	m, done := store.Manifest(key)
	if !done || m.Kind != runstore.KindCalibration || m.ConfigHash != plan.CalibrationHash(cfg, "temp", "small", 0) ||
		!reflect.DeepEqual(m.Inputs, []string{runstore.TeacherKey("small", 0)}) || m.Params["temperature"] == nil {
		t.Errorf("manifest %+v", m)
	}
	cal, rep, err := calibrate.Load(store.Path(key, runstore.CalibParamsFile))
	if err != nil {
		t.Fatal(err)
	}
	if temp := cal.(*calibrate.Temp).Temperature(); math.Abs(temp/2.5-1) > 0.05 || !rep.Converged {
		t.Errorf("T = %v (want ≈ 2.5), report %+v", temp, rep)
	}
	var res runstore.CalibrationResult
	if err := atomicfile.ReadJSON(store.Path(key, runstore.CalibResultFile), &res); err != nil {
		t.Fatal(err)
	}
	if res.Method != "temp" || res.Test == nil || !(res.Test.After.ECE < res.Test.Before.ECE) || math.IsNaN(res.Temperature()) {
		t.Errorf("metrics.json: %+v", res)
	}
	for _, split := range []string{"val", "test"} {
		for _, when := range []string{"before", "after"} {
			b, err := os.ReadFile(store.Path(key, runstore.ReliabilityFile(split, when)))
			if err != nil || !strings.HasPrefix(string(b), "lo,hi,count,accuracy,confidence\n") || strings.Count(string(b), "\n") != 16 {
				t.Errorf("%s %s CSV: %v\n%s", split, when, err, b)
			}
		}
	}

	// A rerun skips finished steps; --force refits them.
	params, _ := os.ReadFile(store.Path(key, runstore.CalibParamsFile))
	code, out, _ = calibCLI(t, args...)
	if code != 0 || !strings.Contains(out, "done") || strings.Contains(out, "fitted") {
		t.Errorf("rerun: exit %d\n%s", code, out)
	}
	code, out, _ = calibCLI(t, append(args, "--force")...)
	again, _ := os.ReadFile(store.Path(key, runstore.CalibParamsFile))
	if code != 0 || !strings.Contains(out, "fitted") || !bytes.Equal(params, again) {
		t.Errorf("--force: exit %d, params changed %v\n%s", code, !bytes.Equal(params, again), out)
	}

	// --json: one document, a record per step with its metrics.json.
	code, out, _ = calibCLI(t, append(args, "--json")...)
	var doc StageDoc
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil || len(doc.Steps) != 2 || !doc.OK || doc.Command != "calibrate" ||
		doc.Steps[1].Result == nil || doc.Steps[1].Result.Method != "hist" || doc.Steps[0].Outcome != "skipped" ||
		doc.Counts["skipped"] != 2 || doc.Steps[0].Metrics["test_ece_after"] != doc.Steps[0].Result.Test.After.ECE {
		t.Errorf("--json: exit %d\n%s", code, out)
	}
}

func TestCalibrateExperimentErrors(t *testing.T) {
	exp := t.TempDir()
	fakeTeacher(t, exp, "small", 0, 2, "")
	fakeTeacher(t, exp, "medium", 0, 2, "0123456789abcdef") // trained under another configuration
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string
	}{
		{"missing teachers", []string{"--teacher", "small,large", "--seeds", "0,1"}, ExitMissing,
			[]string{"kdcal train-teachers --sizes large --seeds 0", "kdcal train-teachers --sizes small --seeds 1"}},
		{"stale teacher", []string{"--teacher", "medium", "--seeds", "0"}, ExitMissing, []string{"another configuration", "--sizes medium"}},
		{"unknown size", []string{"--teacher", "huge"}, ExitUsage, []string{`--teacher "huge"`, "large, medium, small, tiny, xlarge"}},
		{"unknown method", []string{"--method", "platt"}, ExitUsage, []string{`"platt"`}},
		{"bad seeds", []string{"--seeds", "-1"}, ExitConfig, []string{"seed -1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := calibCLI(t, append([]string{"calibrate", "-e", exp}, tt.args...)...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d: %s", code, tt.wantCode, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q: %s", w, stderr)
				}
			}
		})
	}
	// Nothing was fitted while prerequisites were missing.
	if _, err := os.Stat(filepath.Join(exp, "calibration", "temp", "small")); !os.IsNotExist(err) {
		t.Errorf("calibration ran although a teacher was missing: %v", err)
	}
}

// `kdcal step` (what `kdcal run` and the stage commands start per step)
// runs a calibration step through the pipeline that main wires in.
func TestStepRunsCalibration(t *testing.T) {
	exp := t.TempDir()
	fakeTeacher(t, exp, "tiny", 1, 2, "")
	key := runstore.CalibrationKey("temp", "tiny", 1)
	code, _, stderr := calibCLI(t, "step", "-e", exp, key)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	store, _ := runstore.Open(exp)
	if !store.Done(key, "") {
		t.Errorf("%s not done after kdcal step", key)
	}
}

// --out-probs writes the calibrated probabilities of the test split (of
// the validation split without one) as a float64 N×C .npy equal to the
// calibrator's Probs; it refuses to replace a file unless --force, and
// refuses a directory, naming the path, before any fitting.
func TestCalibrateOutProbs(t *testing.T) {
	dir := t.TempDir()
	val, test := calibratetest.Data(51, 2000, 4, 2), calibratetest.Data(52, 1500, 4, 2)
	vl, vy := writeSplit(t, dir, "val", val)
	tl, ty := writeSplit(t, dir, "test", test)
	out := filepath.Join(dir, "probs", "test_probs.npy") // the parent is created
	args := []string{"calibrate", "--method", "isotonic", "--val-logits", vl, "--val-labels", vy, "--out-probs", out}
	withTest := append(slices.Clone(args), "--test-logits", tl, "--test-labels", ty)

	code, _, stderr := calibCLI(t, withTest...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "wrote calibrated probabilities") || !strings.Contains(stderr, "split=test") {
		t.Errorf("stderr does not say what was written: %s", stderr)
	}
	// The same fit in-process, on the logits as read from the files.
	v, tsp, err := calibrate.ReadSplits(vl, vy, tl, ty)
	if err != nil {
		t.Fatal(err)
	}
	cal, _, err := calibrate.Run(context.Background(), "isotonic", calibrate.Options{}, v, tsp, 15)
	if err != nil {
		t.Fatal(err)
	}
	checkProbsFile(t, out, cal.Probs(tsp.Logits, 4), len(test.Labels), 4)
	before, _ := os.ReadFile(out)

	// An existing file is kept, with a usage error naming it.
	code, stdout, stderr := calibCLI(t, withTest...)
	after, _ := os.ReadFile(out)
	if code != ExitUsage || stdout != "" || !strings.Contains(stderr, out) || !strings.Contains(stderr, "--force") || !bytes.Equal(before, after) {
		t.Errorf("existing file: exit %d, stdout %q, stderr %q, file changed %v", code, stdout, stderr, !bytes.Equal(before, after))
	}
	// --force replaces it; without a test pair the validation split is written.
	code, _, stderr = calibCLI(t, append(args, "--force")...)
	if code != 0 || !strings.Contains(stderr, "split=validation") {
		t.Fatalf("--force: exit %d: %s", code, stderr)
	}
	checkProbsFile(t, out, cal.Probs(v.Logits, 4), len(val.Labels), 4)
	// A directory is refused.
	code, _, stderr = calibCLI(t, "calibrate", "--method", "temp", "--val-logits", vl, "--val-labels", vy, "--out-probs", dir)
	if code != ExitUsage || !strings.Contains(stderr, dir+" is a directory") {
		t.Errorf("directory: exit %d, stderr %q", code, stderr)
	}
}

// checkProbsFile checks that path is a float64 (n, c) .npy holding want,
// read by kdcal and, when Debian's python3 has numpy, by numpy.load.
func checkProbsFile(t *testing.T, path string, want []float64, n, c int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if hdr := string(b[:min(len(b), 128)]); !strings.Contains(hdr, "'descr': '<f8'") || !strings.Contains(hdr, fmt.Sprintf("'shape': (%d, %d)", n, c)) {
		t.Errorf("%s header %q: want float64 shape (%d, %d)", path, hdr, n, c)
	}
	got, rows, cols, err := npyfile.ReadMatrix(path)
	if err != nil || rows != n || cols != c || !slices.Equal(got, want) {
		t.Errorf("%s: %d×%d, err %v; equal to Probs: %v", path, rows, cols, err, slices.Equal(got, want))
	}
	if exec.Command(testutil.Python, "-c", "import numpy").Run() != nil {
		return
	}
	out, err := exec.Command(testutil.Python, "-c", `import sys, numpy as np
p = np.load(sys.argv[1])
print(p.dtype, p.shape, repr(float(np.abs(p.sum(axis=1) - 1).max() < 1e-12)))`, path).Output()
	if want := fmt.Sprintf("float64 (%d, %d) 1.0", n, c); err != nil || strings.TrimSpace(string(out)) != want {
		t.Errorf("numpy.load(%s): %q, %v; want %q", path, out, err, want)
	}
}

// A fit that stops without meeting its criterion is reported on stderr,
// in both modes, with the input, method, iterations and gradient norm;
// the experiment table flags the row.
func TestCalibrateWarnsNotConverged(t *testing.T) {
	dir := t.TempDir()
	vl, vy := writeSplit(t, dir, "sep", separable(61, 500, 5))
	code, _, stderr := calibCLI(t, "calibrate", "--method", "temp", "--val-logits", vl, "--val-labels", vy)
	for _, want := range []string{"level=WARN", "did not converge", vl, "method=temp", "iterations=", "gradient_max_norm="} {
		if code != 0 || !strings.Contains(stderr, want) {
			t.Errorf("logits mode: exit %d, stderr lacks %q: %s", code, want, stderr)
		}
	}

	exp := t.TempDir()
	fakeTeacherWith(t, exp, "small", 0, "", func(split int) calibrate.Split { return separable(uint64(62+split), 500, 5) })
	code, out, stderr := calibCLI(t, "calibrate", "-e", exp, "--teacher", "small", "--seeds", "0", "--method", "temp")
	for _, want := range []string{"did not converge", runstore.CalibrationKey("temp", "small", 0), "method=temp", "iterations=", "gradient_max_norm="} {
		if code != 0 || !strings.Contains(stderr, want) {
			t.Errorf("experiment mode: exit %d, stderr lacks %q: %s", code, want, stderr)
		}
	}
	if !strings.Contains(out, "fitted (not converged)") {
		t.Errorf("table does not flag the unconverged fit:\n%s", out)
	}
}

// A signal during a long fit (a cancelled context, as signal.NotifyContext
// in Main makes it) stops kdcal calibrate promptly with exit 130; nothing
// is written: no --out-probs file, no published calibration step.
func TestCalibrateInterrupted(t *testing.T) {
	// 20000×100 logits: one matrix-scaling pass is 2 GEMMs of 4·10⁸ flops,
	// and the fit takes many passes.
	big := func(seed uint64) calibrate.Split { return calibratetest.Data(seed, 20000, 100, 3) }
	interrupt := func(args ...string) (int, string, time.Duration) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		time.AfterFunc(300*time.Millisecond, cancel)
		var out, errw bytes.Buffer
		start := time.Now()
		code := Run(ctx, stage.All(), args, &out, &errw, nil)
		return code, errw.String(), time.Since(start)
	}
	dir := t.TempDir()
	vl, vy := writeSplit(t, dir, "val", big(71))
	probs := filepath.Join(dir, "probs.npy")
	code, stderr, took := interrupt("calibrate", "--method", "matrix", "--val-logits", vl, "--val-labels", vy, "--out-probs", probs)
	if code != ExitInterrupted || !strings.Contains(stderr, "interrupted") || took > 30*time.Second {
		t.Errorf("logits mode: exit %d after %v (want %d), stderr %q", code, took, ExitInterrupted, stderr)
	}
	if _, err := os.Stat(probs); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("--out-probs written by an interrupted run: %v", err)
	}

	exp := t.TempDir()
	fakeTeacherWith(t, exp, "small", 0, "", func(split int) calibrate.Split { return big(uint64(72 + split)) })
	code, stderr, took = interrupt("calibrate", "-e", exp, "--teacher", "small", "--seeds", "0", "--method", "matrix")
	if code != ExitInterrupted || took > 30*time.Second {
		t.Errorf("experiment mode: exit %d after %v (want %d), stderr %q", code, took, ExitInterrupted, stderr)
	}
	store, _ := runstore.Open(exp)
	key := runstore.CalibrationKey("matrix", "small", 0)
	if store.Done(key, "") {
		t.Errorf("%s published by an interrupted fit", key)
	}
	if _, err := os.Stat(store.Dir(key)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists after an interrupted fit: %v", store.Dir(key), err)
	}
}
