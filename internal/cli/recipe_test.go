package cli

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/data"
	"github.com/kdcal/kdcal/internal/model"
	"github.com/kdcal/kdcal/internal/npyfile"
	"github.com/kdcal/kdcal/internal/runstore"
)

// TestTrainTeachersRecipeKeys trains a teacher with data.normalize unit and
// teacher.train.init torch and checks that the manifest records both, that
// the model file's metadata records the normalisation (unit: mean 0, std
// 1), and that a saved model evaluated on the official test inputs
// prepared from its metadata alone, x' = (x·scale − mean_c)/std_c,
// reproduces the step's test logits (tolerance 1e-5: the same float32
// arithmetic, batch order aside).
func TestTrainTeachersRecipeKeys(t *testing.T) {
	dir := t.TempDir()
	cfgPath := syntheticConfig(t, dir, "")
	code, _, stderr := run(t, "", nil, "train-teachers", "--config", cfgPath,
		"--set", "data.normalize=unit", "--set", "teacher.train.init=torch")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	step := filepath.Join(dir, "exp", "t", runstore.TeacherKey("tiny", 0))
	var m runstore.Manifest
	if err := atomicfile.ReadJSON(filepath.Join(step, runstore.ManifestFile), &m); err != nil {
		t.Fatal(err)
	}
	if m.Params["normalize"] != "unit" || m.Params["init"] != "torch" {
		t.Errorf("manifest params %v: want normalize unit, init torch", m.Params)
	}
	w, meta, err := model.Load(filepath.Join(step, runstore.ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	if meta.Normalize != config.NormalizeUnit || !slices.Equal(meta.Mean, []float64{0}) || !slices.Equal(meta.Std, []float64{1}) {
		t.Fatalf("model metadata normalize %q mean %v std %v, want unit [0] [1]", meta.Normalize, meta.Mean, meta.Std)
	}
	cfg := config.Default().Data
	cfg.Dataset = "synthetic"
	_, test, err := data.ReadOfficial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hw := test.H * test.W
	x := make([]float32, len(test.X))
	for i, v := range test.X {
		c := (i % (test.C * hw)) / hw
		x[i] = float32((float64(v)*meta.Scale - meta.Mean[c]) / meta.Std[c])
	}
	ev, err := model.NewEvaluator(w, test.N)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	got, err := ev.Logits(nil, x, test.N)
	if err != nil {
		t.Fatal(err)
	}
	want, _, _, err := npyfile.ReadMatrix(filepath.Join(step, runstore.LogitsFile(runstore.SplitTest)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Abs(float64(got[i])-want[i]) > 1e-5 {
			t.Fatalf("logit %d: %v from the metadata's normalisation, %v written by the step", i, got[i], want[i])
		}
	}
}
