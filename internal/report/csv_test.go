package report

import (
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kdcal/kdcal/internal/runstore"
)

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rows
}

// unitless are the CSV columns that carry no unit suffix: labels, counts
// and dimensionless numbers.
var unitless = []string{"setting", "tau", "kd_weight", "ce_weight", "epochs", "size", "params", "teacher_params", "seed", "kind", "key",
	"status", "reason", "expected_config_hash", "method", "arm", "fitted_temperature", "calibration_temperature",
	"effective_temperature", "val_brier", "test_brier", "quantity", "unit", "estimate", "ci_low", "ci_high", "p_value", "p_min",
	"n_units", "n_seeds", "resamples", "split", "metric", "value"}

// TestCSVUnits: every numeric column of the wide CSVs names its unit
// (_frac, _nats, _seconds), or is a count, a label or dimensionless; the
// long CSVs and stats.csv have a unit column.
func TestCSVUnits(t *testing.T) {
	cfg := loadFixtureConfig(t)
	cfg.Report.Formats = nil // figures are not what is tested
	root := copyFixture(t)
	writeReport(t, cfg, root)
	dir := filepath.Join(root, runstore.ReportKey)
	for _, f := range []string{"tables/tau2-kdw0.9-ep4.csv", "tables/calibration.csv", "tables/stats.csv", "steps.csv", "tables/tau2-kdw0.9-ep4-long.csv"} {
		head := readCSV(t, filepath.Join(dir, f))[0]
		for _, c := range head {
			switch {
			case slices.Contains(unitless, c), strings.HasSuffix(c, "_n"), strings.HasPrefix(c, "temperature_"),
				strings.HasSuffix(c, "_frac"), strings.HasSuffix(c, "_nats"), strings.HasSuffix(c, "_seconds"):
			default:
				t.Errorf("%s: column %q names no unit", f, c)
			}
		}
	}
	for _, f := range []string{"tables/stats.csv", "tables/tau2-kdw0.9-ep4-long.csv"} {
		rows := readCSV(t, filepath.Join(dir, f))
		u := slices.Index(rows[0], "unit")
		if u < 0 {
			t.Fatalf("%s has no unit column", f)
		}
		for _, r := range rows[1:] {
			if !slices.Contains([]string{"frac", "nats", "rho", "1"}, r[u]) {
				t.Errorf("%s: unit %q", f, r[u])
			}
		}
	}
}

// TestLongCSV: the long file of a setting has one row per finished step
// and metric, and its test accuracies average (over seeds) to the wide
// table's means, to the 6 significant digits both are written with.
func TestLongCSV(t *testing.T) {
	cfg := loadFixtureConfig(t)
	cfg.Report.Formats = nil // figures are not what is tested
	root := copyFixture(t)
	writeReport(t, cfg, root)
	dir := filepath.Join(root, runstore.ReportKey, "tables")
	long := readCSV(t, filepath.Join(dir, "tau4-kdw0.9-ep4-long.csv"))
	if !slices.Equal(long[0], longHeader) {
		t.Fatalf("header %v", long[0])
	}
	// 3 sizes × 3 seeds: teachers 14 metrics (7 per split), calibrations
	// 14 + T, raw and calibrated students 14 + τ·T; 3 scratch students 14.
	if want := 9*14 + 9*15 + 2*9*15 + 3*14; len(long)-1 != want {
		t.Errorf("%d rows, want %d", len(long)-1, want)
	}
	col := func(name string) int { return slices.Index(long[0], name) }
	sum, n := map[string]float64{}, map[string]int{}
	for _, r := range long[1:] {
		if r[col("split")] != "test" || r[col("metric")] != "accuracy" {
			continue
		}
		v, err := strconv.ParseFloat(r[col("value")], 64)
		if err != nil {
			t.Fatal(err)
		}
		k := r[col("kind")] + "/" + r[col("arm")] + "/" + r[col("size")]
		sum[k] += v
		n[k]++
	}
	wide := readCSV(t, filepath.Join(dir, "tau4-kdw0.9-ep4.csv"))
	wcol := func(name string) int { return slices.Index(wide[0], name) }
	for _, r := range wide[1:] {
		size := r[wcol("size")]
		for k, c := range map[string]string{"teacher//" + size: "teacher_acc_mean_frac", "student/raw/" + size: "raw_acc_mean_frac",
			"student/calibrated/" + size: "calibrated_acc_mean_frac", "student/scratch/": "scratch_acc_mean_frac"} {
			want, err := strconv.ParseFloat(r[wcol(c)], 64)
			if err != nil {
				t.Fatalf("%s: %v", c, err)
			}
			if got := sum[k] / float64(n[k]); n[k] != 3 || math.Abs(got-want) > 1e-5*want {
				t.Errorf("%s: mean of %d long rows = %v, wide %s = %v", k, n[k], got, c, want)
			}
		}
	}
}
