package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/kdcal/kdcal/configs"
	"github.com/kdcal/kdcal/internal/spec"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "study.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPrecedence checks defaults < file < environment < flags for one key
// of each kind (scalar, nested scalar, list).
func TestPrecedence(t *testing.T) {
	file := writeFile(t, "seeds: [5]\ndata:\n  dir: from-file\nkd:\n  temperature: [3]\n")
	tests := []struct {
		name      string
		src       Source
		wantDir   string
		wantSeeds []int
		wantTau   []float64
	}{
		{"defaults", Source{}, "data", []int{0, 1, 2}, []float64{4}},
		{"file", Source{File: file}, "from-file", []int{5}, []float64{3}},
		{"env over file", Source{File: file, Env: []string{"KDCAL_DATA_DIR=from-env", "KDCAL_SEEDS=7,8"}},
			"from-env", []int{7, 8}, []float64{3}},
		{"flag over env", Source{File: file, Env: []string{"KDCAL_DATA_DIR=from-env"},
			Set: map[string]string{"data.dir": "from-flag", "kd.temperature": "[1, 2]"}},
			"from-flag", []int{5}, []float64{1, 2}},
		{"flag list as csv", Source{Set: map[string]string{"seeds": "3,4"}}, "data", []int{3, 4}, []float64{4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, kv := range tt.src.Env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			c, err := Load(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			if c.Data.Dir != tt.wantDir {
				t.Errorf("data.dir = %q, want %q", c.Data.Dir, tt.wantDir)
			}
			if !reflect.DeepEqual(c.Seeds, tt.wantSeeds) {
				t.Errorf("seeds = %v, want %v", c.Seeds, tt.wantSeeds)
			}
			if !reflect.DeepEqual(c.KD.Temperature, tt.wantTau) {
				t.Errorf("kd.temperature = %v, want %v", c.KD.Temperature, tt.wantTau)
			}
		})
	}
}

// TestUnknownKeys pins the message for unknown keys from each source.
func TestUnknownKeys(t *testing.T) {
	file := writeFile(t, "teacher:\n  sizez: [small]\n")
	nested := writeFile(t, "teacher:\n  cnn:\n    huge: {conv: [8], hiden: [4]}\n")
	tests := []struct {
		name string
		src  Source
		want string
	}{
		{"file", Source{File: file}, file + `:2: teacher.sizez: unknown key (did you mean "teacher.sizes"?)`},
		{"inside a size table", Source{File: nested}, nested + `:3: teacher.cnn.huge.hiden: unknown key (did you mean "teacher.cnn.huge.hidden"?)`},
		{"env", Source{Env: []string{"KDCAL_DATA_DIRR=x"}}, `environment variable KDCAL_DATA_DIRR: matches no configuration key (did you mean "KDCAL_DATA_DIR"?)`},
		{"flag", Source{Set: map[string]string{"kd.temprature": "2"}}, `flag --set: kd.temprature: unknown key (did you mean "kd.temperature"?)`},
		{"nothing close", Source{Set: map[string]string{"zzzzzzzzzzzzzzzzzzzz": "2"}}, `flag --set: zzzzzzzzzzzzzzzzzzzz: unknown key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.src)
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %s\nwant %s", err, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not a *config.Error", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]string
		want string // substring of the error
	}{
		{"negative lr", map[string]string{"teacher.train.lr": "-1"}, "teacher.train.lr: -1 must be > 0"},
		{"undefined size", map[string]string{"teacher.sizes": "[small, huge]"},
			`teacher.sizes: size "huge" is not defined in teacher.cnn; defined sizes: large, medium, small, tiny, xlarge`},
		{"bad optimizer", map[string]string{"student.train.optimizer": "adamw"}, `"adamw" is not one of adam, sgd`},
		{"val fraction", map[string]string{"data.val_fraction": "0"}, "data.val_fraction: 0 must be in (0, 0.5]"},
		{"calibrator not fitted", map[string]string{"kd.calibrator": "vector"}, `kd.calibrator: "vector" must also be in calibration.methods`},
		{"no seeds", map[string]string{"seeds": "[]"}, "seeds: list at least one seed"},
		{"bad name", map[string]string{"name": "a/b"}, `name: "a/b" must be non-empty`},
		{"mlp with conv", map[string]string{"student.model": "{conv: [4], hidden: [8]}"}, "student.model.conv: an mlp has no conv stages"},
		{"not a number", map[string]string{"seeds": "[abc]"}, `flag --set: seeds[0]: got "abc" (text), expected a whole number`},
		{"bad normalize", map[string]string{"data.normalize": "minmax"}, `data.normalize: "minmax" is not one of standardize, unit`},
		{"bad teacher init", map[string]string{"teacher.train.init": "xavier"},
			`teacher.train.init: "xavier" is not an initialisation of the cnn family; use one of he, torch`},
		{"bad student init", map[string]string{"student.train.init": "Torch"}, `student.train.init: "Torch" is not an initialisation of the mlp family`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(Source{Set: tt.set})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestDefaultYAMLListsEveryKey makes sure configs/default.yaml — the single
// source of defaults — sets every key of the Config tree; of the spec keys
// under student.model, those of the default student family (another
// family's keys, e.g. resnet's depth and width, are its to have).
func TestDefaultYAMLListsEveryKey(t *testing.T) {
	var raw map[string]any
	if err := yaml.Unmarshal(configs.Default(), &raw); err != nil {
		t.Fatal(err)
	}
	f, err := spec.LookupFamily(Default().Student.Family)
	if err != nil {
		t.Fatal(err)
	}
	own := map[string]bool{}
	for _, k := range f.Keys() {
		own["student.model."+k.Name] = true
	}
	for _, k := range keyTree() {
		if strings.Contains(k, "*") || (strings.HasPrefix(k, "student.model.") && !own[k]) {
			continue
		}
		if !hasPath(raw, strings.Split(k, ".")) {
			t.Errorf("configs/default.yaml does not set %s", k)
		}
	}
}

func hasPath(m map[string]any, path []string) bool {
	v, ok := m[path[0]]
	if !ok {
		return false
	}
	if len(path) == 1 {
		return true
	}
	sub, ok := v.(map[string]any)
	return ok && hasPath(sub, path[1:])
}

// TestPresetsLoad loads every shipped preset: each must be valid and hold
// only keys of the tree.
func TestPresetsLoad(t *testing.T) {
	entries, err := configs.FS.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join("..", "..", "configs")
	for _, e := range entries {
		t.Run(e.Name(), func(t *testing.T) {
			c, err := Load(Source{File: filepath.Join(root, e.Name())})
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.TrimSuffix(e.Name(), ".yaml"); c.Name != want {
				t.Errorf("name = %q, want %q (the preset's file name)", c.Name, want)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load(Source{File: "no/such.yaml"})
	if err == nil || !strings.Contains(err.Error(), "no/such.yaml: config file not found") {
		t.Fatalf("error = %v", err)
	}
}

func TestNearest(t *testing.T) {
	tests := []struct{ in, want string }{
		{"teacher.sizez", "teacher.sizes"},
		{"data.val_fration", "data.val_fraction"},
		{"seed", "seeds"},
		{"teacher.cnn.large.hiden", "teacher.cnn.large.hidden"},
	}
	for _, tt := range tests {
		if got := Nearest(tt.in); got != tt.want {
			t.Errorf("Nearest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTeacherSizesSpan(t *testing.T) {
	c := Default()
	if got := len(c.Teacher.Sizes); got != 5 {
		t.Fatalf("default sizes = %v", c.Teacher.Sizes)
	}
	for _, s := range []string{"tiny", "small", "medium", "large", "xlarge"} {
		if _, ok := c.Teacher.Spec(s); !ok {
			t.Errorf("default teacher size %q missing", s)
		}
	}
}

// TestStudentFamilyReplacesModel: a file that changes student.family gives
// the new family's student.model whole (before, the mlp default's conv and
// hidden were merged into a resnet's {depth, width}, and the user was told
// about keys they never wrote); a file that keeps the family merges as
// before, so its step hashes do not change.
func TestStudentFamilyReplacesModel(t *testing.T) {
	tests := []struct {
		name, body string
		want       map[string]any
	}{
		{"other family", "student:\n  family: resnet\n  model: {depth: 8, width: 4}\n", map[string]any{"depth": 8, "width": 4}},
		{"same family", "student:\n  model: {hidden: [32]}\n", map[string]any{"conv": []int{}, "hidden": []int{32}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(Source{File: writeFile(t, tt.body)})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]any{}
			for k, v := range c.Student.Model {
				got[k] = v
			}
			if !reflect.DeepEqual(normSpec(got), normSpec(tt.want)) {
				t.Errorf("student.model = %#v, want %#v", got, tt.want)
			}
		})
	}
}

// normSpec renders spec values as text so int and []int types from the
// decoder compare with the literals above.
func normSpec(m map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = strings.Trim(strings.ReplaceAll(fmt.Sprint(v), " ", ","), "[]")
	}
	return out
}

// TestKeyComments: every key `kdcal config keys` lists has its comment from
// configs/default.yaml (a size-table entry inherits its size's comment),
// so a new key without a comment fails here.
func TestKeyComments(t *testing.T) {
	for _, k := range LeafKeys() {
		if KeyComment(k) == "" {
			t.Errorf("%s: no comment in configs/default.yaml", k)
		}
	}
	if got, want := KeyComment("run.workers"), "parallel steps; 0 = number of cores"; got != want {
		t.Errorf("KeyComment(run.workers) = %q, want %q", got, want)
	}
	if got := KeyComment("teacher.resnet.resnet8-w4.depth"); !strings.Contains(got, "4,934") {
		t.Errorf("KeyComment(teacher.resnet.resnet8-w4.depth) = %q, want the size's comment (4,934 params)", got)
	}
}
