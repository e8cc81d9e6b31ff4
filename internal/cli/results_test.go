package cli

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/spec"
)

// TestStudyDesign pins what issue 16 asks of configs/study.yaml: at least
// six ResNet teacher sizes spanning at least 100× in parameters, at least
// three seeds, τ ∈ {1, 2, 4}, the kd and dkd losses, raw / calibrated /
// scratch arms and one student.
func TestStudyDesign(t *testing.T) {
	c, err := config.Load(config.Source{File: filepath.Join("..", "..", "configs", "study.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	shape, err := c.Data.Shape()
	if err != nil {
		t.Fatal(err)
	}
	var params []int
	for _, size := range c.Teacher.Sizes {
		s, _ := c.Teacher.Spec(size)
		a, err := spec.NewArch(c.Teacher.Family, s, shape)
		if err != nil {
			t.Fatalf("teacher %s: %v", size, err)
		}
		params = append(params, spec.NumParams(a))
	}
	if c.Teacher.Family != "resnet" || len(params) < 6 || slices.Max(params) < 100*slices.Min(params) {
		t.Errorf("teachers: family %s, sizes %v with %v parameters; want ≥ 6 ResNet sizes spanning ≥ 100×",
			c.Teacher.Family, c.Teacher.Sizes, params)
	}
	if len(c.Seeds) < 3 {
		t.Errorf("seeds %v, want at least 3", c.Seeds)
	}
	for _, tau := range []float64{1, 2, 4} {
		if !slices.Contains(c.KD.Temperature, tau) {
			t.Errorf("kd.temperature %v lacks %g", c.KD.Temperature, tau)
		}
	}
	for _, l := range []string{"kd", "dkd"} {
		if !slices.Contains(c.KD.Loss, l) {
			t.Errorf("kd.loss %v lacks %s", c.KD.Loss, l)
		}
	}
	for _, arm := range config.Arms {
		if !slices.Contains(c.KD.Arms, arm) {
			t.Errorf("kd.arms %v lacks %s", c.KD.Arms, arm)
		}
	}
}

// TestPublishedResults: docs/results/study is the complete report of
// configs/study.yaml as it stands — every step of its plan listed done in
// steps.csv with the hash the configuration gives it, and stats.json
// built from all of them. It fails when the study's configuration (or a
// step hash) changes without the study being rerun and republished.
func TestPublishedResults(t *testing.T) {
	root := filepath.Join("..", "..")
	c, err := config.Load(config.Source{File: filepath.Join(root, "configs", "study.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	res := filepath.Join(root, "docs", "results", "study")
	f, err := os.Open(filepath.Join(res, "steps.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := func(name string) int { return slices.Index(rows[0], name) }
	key, status, hash := col("key"), col("status"), col("expected_config_hash")
	published := map[string][]string{}
	for _, r := range rows[1:] {
		published[r[key]] = r
	}
	var n int
	for _, s := range plan.Build(c).Steps {
		if s.Stage == plan.StageReport {
			continue
		}
		n++
		r, ok := published[s.Key]
		switch {
		case !ok:
			t.Errorf("%s: not in the published steps.csv", s.Key)
		case r[status] != "done" || r[hash] != s.Hash:
			t.Errorf("%s: published %s with hash %s; configs/study.yaml gives hash %s", s.Key, r[status], r[hash], s.Hash)
		}
	}
	if len(published) != n {
		t.Errorf("steps.csv lists %d steps, the plan has %d besides the report", len(published), n)
	}
	var stats struct {
		Used     int `json:"steps_used"`
		Expected int `json:"steps_expected"`
	}
	b, err := os.ReadFile(filepath.Join(res, "stats.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &stats); err != nil {
		t.Fatal(err)
	}
	if stats.Used != n || stats.Expected != n {
		t.Errorf("stats.json: %d of %d steps used, want all %d", stats.Used, stats.Expected, n)
	}
	for _, name := range []string{"README.md", "config.yaml", "manifest.json", "tables/calibration.md", "figures/teacher-calibration.png"} {
		if _, err := os.Stat(filepath.Join(res, name)); err != nil {
			t.Error(err)
		}
	}
}
