package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/kdcal/kdcal/internal/artifact"
	"github.com/kdcal/kdcal/internal/metrics"
	"github.com/kdcal/kdcal/internal/pipeline"
	"github.com/kdcal/kdcal/internal/runstore"
	"github.com/kdcal/kdcal/internal/spec"
	"github.com/kdcal/kdcal/internal/train"
)

// documented are the types whose JSON docs/json.md and docs/store.md
// describe field by field, by the name of their "<!-- fields: NAME -->"
// marker.
var documented = map[string]reflect.Type{
	"cli.PlanDoc":                reflect.TypeFor[PlanDoc](),
	"cli.PlanStepDoc":            reflect.TypeFor[PlanStepDoc](),
	"cli.EstimateDoc":            reflect.TypeFor[EstimateDoc](),
	"cli.Rate":                   reflect.TypeFor[Rate](),
	"cli.ConfigDoc":              reflect.TypeFor[ConfigDoc](),
	"cli.StageDoc":               reflect.TypeFor[StageDoc](),
	"cli.StageStepDoc":           reflect.TypeFor[StageStepDoc](),
	"cli.ReportDoc":              reflect.TypeFor[ReportDoc](),
	"cli.UnusedStepDoc":          reflect.TypeFor[UnusedStepDoc](),
	"cli.ReportSettingDoc":       reflect.TypeFor[ReportSettingDoc](),
	"cli.CorrDigest":             reflect.TypeFor[CorrDigest](),
	"runstore.Manifest":          reflect.TypeFor[runstore.Manifest](),
	"runstore.Output":            reflect.TypeFor[runstore.Output](),
	"runstore.TeacherSummary":    reflect.TypeFor[runstore.TeacherSummary](),
	"runstore.StudentSummary":    reflect.TypeFor[runstore.StudentSummary](),
	"runstore.CalibrationResult": reflect.TypeFor[runstore.CalibrationResult](),
	"runstore.SplitResult":       reflect.TypeFor[runstore.SplitResult](),
	"spec.ConvSpec":              reflect.TypeFor[spec.ConvSpec](),
	"metrics.Summary":            reflect.TypeFor[metrics.Summary](),
	"metrics.Bin":                reflect.TypeFor[metrics.Bin](),
	"artifact.Fit":               reflect.TypeFor[artifact.Fit](),
	"train.Record":               reflect.TypeFor[train.Record](),
	"pipeline.Progress":          reflect.TypeFor[pipeline.Progress](),
	"pipeline.SplitInfo":         reflect.TypeFor[pipeline.SplitInfo](),
}

// jsonFields are the names encoding/json gives a struct's fields.
func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

var (
	markerRe = regexp.MustCompile(`<!-- fields: ([\w.]+) -->`)
	rowRe    = regexp.MustCompile("^\\| `([^`]+)` \\|")
)

// docTables returns, per marker in a Markdown file, the field names of the
// table that follows it (first column, in backticks).
func docTables(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string][]string{}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		m := markerRe.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if _, dup := tables[m[1]]; dup {
			t.Errorf("%s: %s documented twice", path, m[1])
		}
		var names []string
		for _, row := range lines[i+1:] {
			if !strings.HasPrefix(row, "|") {
				if len(names) > 0 || strings.TrimSpace(row) != "" {
					break
				}
				continue
			}
			if r := rowRe.FindStringSubmatch(row); r != nil {
				names = append(names, r[1])
			}
		}
		sort.Strings(names)
		tables[m[1]] = names
	}
	return tables
}

// TestJSONDocsCoverFields keeps docs/json.md and docs/store.md true: each
// documented type's table lists exactly the fields its JSON has, and every
// type is documented.
func TestJSONDocsCoverFields(t *testing.T) {
	root := filepath.Join("..", "..", "docs")
	tables := docTables(t, filepath.Join(root, "json.md"))
	for k, v := range docTables(t, filepath.Join(root, "store.md")) {
		if _, dup := tables[k]; dup {
			t.Errorf("%s documented in both json.md and store.md", k)
		}
		tables[k] = v
	}
	for name, typ := range documented {
		got, ok := tables[name]
		if !ok {
			t.Errorf("%s (%v) has no <!-- fields: %s --> table in docs/json.md or docs/store.md", name, typ, name)
			continue
		}
		if want := jsonFields(typ); !slices.Equal(got, want) {
			t.Errorf("%s: the docs list %q; its JSON has %q", name, got, want)
		}
	}
	// kdcal-store.json's type is unexported: check the table against a store's file.
	store := t.TempDir()
	if _, err := runstore.Open(store); err != nil {
		t.Fatal(err)
	}
	var marker map[string]any
	b, _ := os.ReadFile(filepath.Join(store, runstore.MarkerFile))
	if err := json.Unmarshal(b, &marker); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range marker {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !slices.Equal(tables["runstore.marker"], keys) {
		t.Errorf("runstore.marker: the docs list %q; %s has %q", tables["runstore.marker"], runstore.MarkerFile, keys)
	}
	for name := range tables {
		if _, known := documented[name]; !known && name != "runstore.marker" {
			t.Errorf("the docs have a table for %s, which this test does not check", name)
		}
	}
}
