package cli

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/runstore"
)

// estimateStudy is a small plan: 2 MLP teacher sizes × 2 seeds, temp and
// isotonic calibration, raw students at one setting, scratch, report.
const estimateStudy = `name: est
seeds: [0, 1]
data:
  dataset: synthetic
  val_fraction: 0.2
  synthetic: {train: 1000, test: 200, classes: 4, features: 16, seed: 1}
teacher:
  family: mlp
  sizes: [tiny, large]
  train: {epochs: 3}
student:
  model: {hidden: [8]}
  train: {epochs: 2}
calibration: {methods: [temp, isotonic]}
kd: {arms: [raw, scratch], calibrator: temp}
run: {workers: 2}
`

// fakeDone writes a done manifest (no outputs: "unverified") for a step of
// the plan that started at t0 and took secs, and, when epochs is non-nil,
// a metrics.jsonl with those per-epoch seconds.
func fakeDone(t *testing.T, root string, s plan.Step, hash string, secs float64, epochs []float64) {
	t.Helper()
	dir := filepath.Join(root, s.Key)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 := t0.Add(time.Duration(secs * float64(time.Second)))
	m := runstore.Manifest{Key: s.Key, Kind: s.Stage, Status: runstore.StatusDone, ConfigHash: hash, Started: t0, Finished: &t1}
	if err := atomicfile.WriteJSON(filepath.Join(dir, runstore.ManifestFile), m); err != nil {
		t.Fatal(err)
	}
	if epochs != nil {
		var b strings.Builder
		for i, e := range epochs {
			fmt.Fprintf(&b, `{"epoch":%d,"seconds":%g}`+"\n", i+1, e)
		}
		os.WriteFile(filepath.Join(dir, runstore.MetricsLogFile), []byte(b.String()), 0o644)
	}
}

// TestDryRunEstimate checks the estimate's arithmetic on a fake store whose
// finished steps took known times (hand-computed expectations below).
func TestDryRunEstimate(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "est.yaml")
	os.WriteFile(cfgFile, []byte(estimateStudy), 0o644)
	cfg, err := config.Load(config.Source{File: cfgFile})
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "store")
	if _, err := runstore.Open(root); err != nil {
		t.Fatal(err)
	}
	p := plan.Build(cfg)
	get := func(key string) plan.Step {
		s, ok := p.Get(key)
		if !ok {
			t.Fatalf("no step %s", key)
		}
		return s
	}
	// N_train = 1000 × (1 − 0.2) = 800; work = plan cost × 800.
	if n := trainExamples(cfg); n != 800 {
		t.Fatalf("trainExamples = %d, want 800", n)
	}
	tiny0, large0 := get(runstore.TeacherKey("tiny", 0)), get(runstore.TeacherKey("large", 0))
	wTiny, wLarge := tiny0.Cost*800, large0.Cost*800
	// Teachers took 2 s + 1 ns per multiply-add: the fit recovers both.
	const a, b = 2.0, 1e-9
	fakeDone(t, root, tiny0, tiny0.Hash, a+b*wTiny, nil)
	// large seed 0 was resumed: its manifest covers 1 s, metrics.jsonl all epochs.
	fakeDone(t, root, large0, large0.Hash, 1, []float64{(a + b*wLarge) / 2, (a + b*wLarge) / 2})
	// A teacher of another configuration (hash) is not measured.
	stale := get(runstore.TeacherKey("tiny", 1))
	fakeDone(t, root, stale, "0123456789abcdef", 1e6, nil)
	// One temp calibration took 4 s; isotonic has none, so it takes temp's.
	cal := get(runstore.CalibrationKey("temp", "tiny", 0))
	fakeDone(t, root, cal, cal.Hash, 4, nil)

	code, out, stderr := run(t, "", nil, "run", "--dry-run", "--json", "--config", cfgFile, "-e", root)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc PlanDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	rates := map[string]Rate{}
	for _, r := range doc.Estimate.Rates {
		rates[r.Group] = r
	}
	near := func(got, want float64) bool { return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want)) }
	tr := rates["teachers/mlp"]
	if tr.Source != "measured" || tr.Steps != 2 || !near(tr.SecondsPerStep, a) || !near(tr.SecondsPerUnit, b) {
		t.Errorf("teachers/mlp rate %+v; want measured on 2 steps, %g s + %g s per multiply-add", tr, a, b)
	}
	if r := rates["calibration/temp"]; r.Source != "measured" || r.SecondsPerUnit != 4 || r.Steps != 1 {
		t.Errorf("calibration/temp rate %+v; want 4 s per step, measured", r)
	}
	if r := rates["calibration/isotonic"]; r.Source != "measured-other-group" || r.SecondsPerUnit != 4 {
		t.Errorf("calibration/isotonic rate %+v; want temp's 4 s", r)
	}
	// No student has finished: the teachers' seconds per multiply-add, proportionally.
	studentRate := (2*a + b*(wTiny+wLarge)) / (wTiny + wLarge)
	if r := rates["students/mlp"]; r.Source != "measured-other-stage" || !near(r.SecondsPerUnit, studentRate) || r.SecondsPerStep != 0 {
		t.Errorf("students/mlp rate %+v; want the teachers' %g s per multiply-add", r, studentRate)
	}
	// Nothing like a report has finished: the build's default.
	def := defaultRates[defaultRateKey()]
	if r := rates["report"]; r.Source != "default" || r.SecondsPerUnit != def.report || !strings.Contains(r.From, "not measured") {
		t.Errorf("report rate %+v; want the default %g", r, def.report)
	}

	// Each step's seconds and the totals, by hand.
	want := map[string]float64{}
	var core float64
	for _, s := range p.Steps {
		var secs float64
		switch s.Key {
		case tiny0.Key, large0.Key, cal.Key:
			secs = 0 // done
		default:
			switch s.Stage {
			case plan.StageTeachers:
				secs = a + b*s.Cost*800
			case plan.StageCalibration:
				secs = 4
			case plan.StageStudents:
				secs = studentRate * s.Cost * 800
			case plan.StageReport:
				secs = def.report
			}
		}
		want[s.Key] = secs
		core += secs
	}
	for _, s := range doc.Steps {
		if !near(s.EstimatedSeconds, want[s.Key]) {
			t.Errorf("%s: %g s, want %g", s.Key, s.EstimatedSeconds, want[s.Key])
		}
	}
	if doc.Steps[1].Key != stale.Key || doc.Steps[1].State != "stale" || doc.Steps[0].State != "unverified" {
		t.Errorf("states: %+v, %+v", doc.Steps[0], doc.Steps[1])
	}
	e := doc.Estimate
	if e.StepsToRun != len(p.Steps)-3 || !near(e.CoreSeconds, core) || !near(e.CoreHours, core/3600) || e.Workers != 2 {
		t.Errorf("estimate %+v; want %d steps, %g core-seconds, 2 workers", e, len(p.Steps)-3, core)
	}
	if e.WallSeconds < core/2-1e-9 || e.WallSeconds > core+1e-9 {
		t.Errorf("wall %g s outside [core/2, core] = [%g, %g]", e.WallSeconds, core/2, core)
	}

	// The text form says the same.
	code, text, _ := run(t, "", nil, "run", "--dry-run", "--config", cfgFile, "-e", root)
	if code != 0 || !strings.Contains(text, "estimate: "+hours(core)+" core-hours for the "+fmt.Sprint(len(p.Steps)-3)+" steps to run") ||
		!strings.Contains(text, "from 2 steps finished in") || !strings.Contains(text, "not measured on this machine") {
		t.Errorf("text estimate:\n%s", text)
	}

	// --rates-from: an empty store measures from the other one.
	empty := filepath.Join(dir, "empty")
	code, out, stderr = run(t, "", nil, "run", "--dry-run", "--json", "--config", cfgFile, "-e", empty, "--rates-from", root)
	var doc2 PlanDoc
	if code != 0 || json.Unmarshal([]byte(out), &doc2) != nil {
		t.Fatalf("--rates-from: exit %d: %s", code, stderr)
	}
	for _, r := range doc2.Estimate.Rates {
		if r.Group == "teachers/mlp" && (r.Source != "measured" || !near(r.SecondsPerUnit, b) || !strings.Contains(r.From, root)) {
			t.Errorf("--rates-from: %+v", r)
		}
	}
	if doc2.Estimate.StepsToRun != len(p.Steps) {
		t.Errorf("--rates-from: %d steps to run, want all %d", doc2.Estimate.StepsToRun, len(p.Steps))
	}
	if _, err := os.Stat(empty); err == nil {
		t.Errorf("--dry-run created %s", empty)
	}
}

// TestSimulate pins the wall-clock schedule on a hand-made plan: A (10 s)
// and B (6 s) are teachers, C (3 s) calibrates A, D (5 s) distils from A
// and C. Two workers: A and B start at 0, C at 10, D at 13, ends at 18;
// one worker: the sum, 24 s.
func TestSimulate(t *testing.T) {
	steps := []plan.Step{
		{Key: "A", Stage: plan.StageTeachers, Cost: 10},
		{Key: "B", Stage: plan.StageTeachers, Cost: 6},
		{Key: "C", Stage: plan.StageCalibration, Deps: []string{"A"}, Cost: 3},
		{Key: "D", Stage: plan.StageStudents, Deps: []string{"A", "C"}, Cost: 5},
	}
	est := map[string]StepEstimate{}
	for _, s := range steps {
		est[s.Key] = StepEstimate{Left: 1, Seconds: s.Cost}
	}
	for _, tt := range []struct {
		workers int
		want    float64
	}{{1, 24}, {2, 18}, {4, 18}} {
		if got := simulate(steps, est, tt.workers); got != tt.want {
			t.Errorf("%d workers: %g s, want %g", tt.workers, got, tt.want)
		}
	}
	// A done: B and C start at 0, D at 3 (after C), ends at 8.
	est["A"] = StepEstimate{Left: 0}
	if got := simulate(steps, est, 2); got != 8 {
		t.Errorf("A done, 2 workers: %g s, want 8", got)
	}
}

// TestExternalTeacherRates: teachers read from teacher.external_dir are
// imports, timed per step in their own group; their seconds never stand in
// for the multiply-add rate of training (before, a store whose only
// finished steps were imports estimated every student at about 0 s).
func TestExternalTeacherRates(t *testing.T) {
	cfg := config.Default()
	cfg.Teacher.Source = config.SourceExternal
	teacher := plan.Step{Stage: plan.StageTeachers, Cost: 1e6}
	if g := rateGroup(cfg, teacher); g != externalGroup {
		t.Fatalf("rateGroup(external teacher) = %q, want %q", g, externalGroup)
	}
	if w := stepWork(cfg, teacher); w != 1 {
		t.Errorf("stepWork(external teacher) = %v, want 1 (one import)", w)
	}
	r := &Rates{backend: "gonum", groups: map[string]*measurement{
		externalGroup: {seconds: []float64{0.2, 0.3}, work: []float64{1, 1}, stores: map[string]bool{"s": true}},
	}}
	if got := r.Rate(externalGroup); got.Unit != "step" || got.Source != "measured" {
		t.Errorf("Rate(%s) = %+v, want a measured per-step rate", externalGroup, got)
	}
	if got := r.Rate("students/mlp"); got.Source != "default" || got.Unit != "multiply-add" {
		t.Errorf("Rate(students/mlp) with only imports measured = %+v, want the build's default training rate", got)
	}
}
