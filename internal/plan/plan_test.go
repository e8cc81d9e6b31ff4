package plan

import (
	"sort"
	"strings"
	"testing"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/spec"
)

func load(t *testing.T, set map[string]string) *config.Config {
	t.Helper()
	c, err := config.Load(config.Source{Set: set})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// changed returns the keys whose hash differs between two plans (both must
// have the same steps) and the keys present in only one of them.
func changed(a, b *Plan) []string {
	var out []string
	for _, s := range a.Steps {
		o, ok := b.Get(s.Key)
		if !ok || o.Hash != s.Hash {
			out = append(out, s.Key)
		}
	}
	sort.Strings(out)
	return out
}

// stagesOf summarises keys by kind: teachers, calibration, raw, calibrated, scratch, report.
func stagesOf(keys []string) string {
	seen := map[string]bool{}
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, "teachers/"):
			seen["teachers"] = true
		case strings.HasPrefix(k, "calibration/"):
			seen["calibration"] = true
		case strings.Contains(k, "/raw/"):
			seen["raw"] = true
		case strings.Contains(k, "/calibrated/"):
			seen["calibrated"] = true
		case strings.Contains(k, "scratch"):
			seen["scratch"] = true
		case k == "report":
			seen["report"] = true
		}
	}
	var out []string
	for _, s := range []string{"teachers", "calibration", "raw", "calibrated", "scratch", "report"} {
		if seen[s] {
			out = append(out, s)
		}
	}
	return strings.Join(out, ",")
}

// TestHashInvalidation pins what re-runs when each kind of key changes.
func TestHashInvalidation(t *testing.T) {
	base := Build(load(t, nil))
	tests := []struct {
		name string
		set  map[string]string
		want string // kinds of steps that must re-run
	}{
		{"nothing", nil, ""},
		{"data location only", map[string]string{"data.dir": "/elsewhere", "run.workers": "7", "name": "other"}, ""},
		{"report setting", map[string]string{"report.bootstrap": "10"}, "report"},
		{"KD weight", map[string]string{"kd.ce_weight": "0.5"}, "raw,calibrated,report"},
		{"calibration setting", map[string]string{"calibration.matrix_l2": "0.1"}, "calibration,calibrated,report"},
		{"teacher recipe", map[string]string{"teacher.train.lr": "0.01"}, "teachers,calibration,raw,calibrated,report"},
		{"student recipe", map[string]string{"student.train.lr": "0.01"}, "raw,calibrated,scratch,report"},
		{"data split", map[string]string{"data.split_seed": "3"}, "teachers,calibration,raw,calibrated,scratch,report"},
		{"one size's architecture", map[string]string{"teacher.cnn.large.hidden": "[64]"}, "teachers,calibration,raw,calibrated,report"},
		{"recipe defaults spelled out", map[string]string{"data.normalize": "standardize", "teacher.train.init": "he", "student.train.init": "he"}, ""},
		{"data normalize", map[string]string{"data.normalize": "unit"}, "teachers,calibration,raw,calibrated,scratch,report"},
		{"teacher init", map[string]string{"teacher.train.init": "torch"}, "teachers,calibration,raw,calibrated,report"},
		{"student init", map[string]string{"student.train.init": "torch"}, "raw,calibrated,scratch,report"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := stagesOf(changed(base, Build(load(t, tt.set))))
			if got != tt.want {
				t.Errorf("re-runs %q, want %q", got, tt.want)
			}
		})
	}
	// Only the large teacher's own steps change when only its architecture changes.
	for _, k := range changed(base, Build(load(t, map[string]string{"teacher.cnn.large.hidden": "[64]"}))) {
		if k != "report" && !strings.Contains(k, "/large/") {
			t.Errorf("%s re-runs although only the large teacher changed", k)
		}
	}
}

// TestNewSettingAddsStepsOnly: adding a KD temperature keeps every existing
// step's hash and adds the new setting's students.
func TestNewSettingAddsStepsOnly(t *testing.T) {
	a := Build(load(t, nil))
	b := Build(load(t, map[string]string{"kd.temperature": "[4, 2]"}))
	if got := changed(a, b); len(got) != 1 || got[0] != "report" {
		t.Errorf("existing steps that re-run: %v (want only report)", got)
	}
	if extra := len(b.Steps) - len(a.Steps); extra != 2*5*3 { // 2 arms × 5 sizes × 3 seeds
		t.Errorf("%d new steps, want 30", extra)
	}
}

func TestBuildShape(t *testing.T) {
	c := load(t, map[string]string{"seeds": "[0, 1]", "teacher.sizes": "[tiny, large]", "calibration.methods": "[temp, vector]"})
	p := Build(c)
	count := map[string]int{}
	for _, s := range p.Steps {
		count[s.Stage]++
		for _, d := range s.Deps {
			dep, ok := p.Get(d)
			if !ok {
				t.Fatalf("%s depends on unknown %s", s.Key, d)
			}
			if stageIndex(dep.Stage) >= stageIndex(s.Stage) {
				t.Errorf("%s depends on %s of a later or same stage", s.Key, d)
			}
		}
	}
	want := map[string]int{StageTeachers: 4, StageCalibration: 8, StageStudents: 2*2*2 + 2, StageReport: 1}
	for st, n := range want {
		if count[st] != n {
			t.Errorf("%s: %d steps, want %d", st, count[st], n)
		}
	}
	tiny, _ := p.Get("teachers/tiny/seed-0")
	large, _ := p.Get("teachers/large/seed-0")
	if r := large.Cost / tiny.Cost; r < 10 {
		t.Errorf("large/tiny cost ratio %.1f, want > 10", r)
	}
}

func stageIndex(s string) int {
	for i, st := range Stages {
		if st == s {
			return i
		}
	}
	return -1
}

// TestTrainCost checks the cost model against a hand count for a small CNN:
// conv 1→4 on 28×28: 9·1·4·784 = 28224; conv 4→8 on 14×14: 9·4·8·196 = 56448;
// dense 8·7·7=392→32: 12544; 32→10: 320; total 97536 MACs, ×3 for training.
func TestTrainCost(t *testing.T) {
	got := TrainCost(config.FamilyCNN, config.ModelSpec{"conv": []int{4, 8}, "hidden": []int{32}}, spec.Shape{C: 1, H: 28, W: 28, Classes: 10})
	if want := 3.0 * 97536; got != want {
		t.Errorf("TrainCost = %v, want %v", got, want)
	}
}
