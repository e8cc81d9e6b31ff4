package train

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kdcal/kdcal/internal/calibrate"
	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/data"
	"github.com/kdcal/kdcal/internal/npyfile"
	"github.com/kdcal/kdcal/internal/testutil"
)

// parityRow is one line of scripts/torch_parity.py's output, or the same
// figures of a kdcal run.
type parityRow struct {
	Recipe  string  `json:"recipe"`
	Width   int     `json:"width"`
	Seed    int     `json:"seed"`
	T       float64 `json:"T"`
	ValAcc  float64 `json:"val_acc"`
	TestAcc float64 `json:"test_acc"`
}

// parityRecipes maps the script's recipe names to kdcal's keys.
var parityRecipes = []struct{ name, normalize, init string }{
	{"unit-torch", config.NormalizeUnit, config.InitTorch},
	{"standardize-he", config.NormalizeStandardize, config.InitHe},
}

// TestTorchParity trains the MLP 784-W-W-10 teacher with both recipes
// (data.normalize unit + init torch, PyTorch's defaults; standardize + he,
// kdcal's) in kdcal and in PyTorch (scripts/torch_parity.py) on the same
// Fashion-MNIST rows, Adam 1e-3 constant, and compares the temperature T
// fitted on validation and the test accuracy, averaged over seeds.
//
// Size: W = 64, a stratified 6,000 of the train split, 10 epochs, seeds 0
// and 1 (about 40 s on 2 loaded cores). Tolerances are seed noise as
// measured at this size (kdcal and torch, both recipes): two seeds' T
// differ by 0.025–0.067 within one framework and recipe, a per-run
// standard deviation of ≈ 0.04, so the difference of two 2-seed means has
// a standard deviation of ≈ 0.04; the means must agree within 0.08 (2σ)
// in T and 1.5 points in test accuracy (per-run sd ≈ 0.5 points).
// Measured: ΔT 0.022 (unit+torch), 0.030 (standardize+he); Δacc ≤ 0.54
// points. The recipes themselves must differ: the standardize+he T above
// the unit+torch T of both frameworks by more than 0.08 (measured 0.17 and
// 0.20; issue 13 found 1.86 → 2.52 at W = 128, 30 epochs), so a recipe key
// that did nothing would fail here.
func TestTorchParity(t *testing.T) {
	testutil.Slow(t, "trains 8 MLPs in kdcal and in PyTorch")
	testutil.RequirePython(t, "torch", "numpy")
	dir := testutil.RequireDataset(t, "fashion-mnist")
	const (
		width, limit, epochs = 64, 6000, 10
		tolT, tolAcc         = 0.08, 0.015
	)
	seeds := []int{0, 1}
	idx := t.TempDir()
	got := map[string][]parityRow{}
	for _, rc := range parityRecipes {
		d := config.Default().Data
		d.Dataset, d.Dir, d.TrainLimit, d.Normalize = "fashion-mnist", dir, limit, rc.normalize
		s, err := data.Load(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := npyfile.WriteInt64(filepath.Join(idx, "index_train.npy"), s.Train.Index); err != nil {
			t.Fatal(err)
		}
		if err := npyfile.WriteInt64(filepath.Join(idx, "index_val.npy"), s.Val.Index); err != nil {
			t.Fatal(err)
		}
		r := recipe(epochs, 128)
		r.Schedule, r.Init = "constant", rc.init
		for _, seed := range seeds {
			res, err := Run(context.Background(), job(config.FamilyMLP, config.ModelSpec{"hidden": []int{width, width}}, r, seed, s))
			if err != nil {
				t.Fatal(err)
			}
			got["kdcal "+rc.name] = append(got["kdcal "+rc.name], parityRow{Recipe: rc.name, Width: width, Seed: seed,
				T: fitT(t, res.ValLogits, s.Val.Y), ValAcc: res.Val.Accuracy, TestAcc: res.Test.Accuracy})
		}
	}
	// The split is the same for both recipes (data.Load splits before it
	// normalises); idx holds it.
	for _, row := range runTorchParity(t, dir, idx, width, epochs, seeds) {
		got["torch "+row.Recipe] = append(got["torch "+row.Recipe], row)
	}
	mean := func(k string, f func(parityRow) float64) float64 {
		rows := got[k]
		if len(rows) != len(seeds) {
			t.Fatalf("%s: %d runs, want %d", k, len(rows), len(seeds))
		}
		var s float64
		for _, r := range rows {
			s += f(r)
		}
		return s / float64(len(rows))
	}
	T := func(r parityRow) float64 { return r.T }
	acc := func(r parityRow) float64 { return r.TestAcc }
	for _, rc := range parityRecipes {
		kT, pT := mean("kdcal "+rc.name, T), mean("torch "+rc.name, T)
		kA, pA := mean("kdcal "+rc.name, acc), mean("torch "+rc.name, acc)
		t.Logf("%-15s W=%d: T kdcal %.3f torch %.3f; test acc kdcal %.4f torch %.4f (runs %v / %v)",
			rc.name, width, kT, pT, kA, pA, got["kdcal "+rc.name], got["torch "+rc.name])
		if math.Abs(kT-pT) > tolT {
			t.Errorf("%s: fitted T kdcal %.3f, torch %.3f: differ by more than %.2f", rc.name, kT, pT, tolT)
		}
		if math.Abs(kA-pA) > tolAcc {
			t.Errorf("%s: test accuracy kdcal %.4f, torch %.4f: differ by more than %.3f", rc.name, kA, pA, tolAcc)
		}
	}
	he, unitK, unitP := mean("kdcal standardize-he", T), mean("kdcal unit-torch", T), mean("torch unit-torch", T)
	if he-unitK <= tolT || he-unitP <= tolT {
		t.Errorf("standardize+he T %.3f is not above unit+torch T (kdcal %.3f, torch %.3f) by more than %.2f: the recipe keys change nothing?",
			he, unitK, unitP, tolT)
	}
}

// fitT fits kdcal's temperature scaling to float32 validation logits.
func fitT(t *testing.T, z []float32, y []int) float64 {
	t.Helper()
	zf := make([]float64, len(z))
	for i, v := range z {
		zf[i] = float64(v)
	}
	var c calibrate.Temp
	if _, err := c.Fit(context.Background(), zf, y, len(zf)/len(y)); err != nil {
		t.Fatal(err)
	}
	return c.Temperature()
}

// runTorchParity runs scripts/torch_parity.py and parses its JSON lines.
func runTorchParity(t *testing.T, dataDir, indexDir string, width, epochs int, seeds []int) []parityRow {
	t.Helper()
	var ss []string
	for _, s := range seeds {
		ss = append(ss, strconv.Itoa(s))
	}
	script := filepath.Join(testutil.RepoRoot(t), "scripts", "torch_parity.py")
	cmd := exec.Command(testutil.Python, script, "--data", dataDir, "--index-dir", indexDir,
		"--widths", strconv.Itoa(width), "--seeds", strings.Join(ss, ","), "--epochs", strconv.Itoa(epochs))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	var rows []parityRow
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r parityRow
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: line %q: %v", script, sc.Text(), err)
		}
		rows = append(rows, r)
	}
	return rows
}

func (r parityRow) String() string { return fmt.Sprintf("s%d T %.3f acc %.4f", r.Seed, r.T, r.TestAcc) }
