package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/runstore"
	"github.com/kdcal/kdcal/internal/testutil"
)

// The report package's test fixture: a generated (not trained) experiment
// and the configuration it was generated for.
var (
	reportFixture       = filepath.Join("..", "report", "testdata", "fixture", "experiment")
	reportFixtureConfig = filepath.Join("..", "report", "testdata", "fixture", "config.yaml")
)

func TestNewCmdReport(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    ReportOptions
		wantErr string
	}{
		{"defaults", nil, ReportOptions{}, ""},
		{"out", []string{"--out", "/tmp/r"}, ReportOptions{Out: "/tmp/r"}, ""},
		{"out short", []string{"-o", "r"}, ReportOptions{Out: "r"}, ""},
		{"argument", []string{"extra"}, ReportOptions{}, "unknown command"},
		{"unknown flag", []string{"--outt", "x"}, ReportOptions{}, "unknown flag: --outt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *ReportOptions
			cmd := NewCmdReport(NewGlobals(&bytes.Buffer{}, &bytes.Buffer{}, nil), func(o *ReportOptions) error {
				got = o
				return nil
			})
			cmd.SetArgs(tt.args)
			cmd.SetOut(&bytes.Buffer{})
			cmd.SetErr(&bytes.Buffer{})
			err := cmd.Execute()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Out != tt.want.Out {
				t.Errorf("Out = %q, want %q", got.Out, tt.want.Out)
			}
		})
	}
}

// copyTree copies the directory src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReportCommand runs `kdcal report` on the fixture: complete, then with
// a missing step, then with --out, then on an empty directory.
func TestReportCommand(t *testing.T) {
	testutil.Slow(t, "about 10 s: the report of the fixture store, three times")
	cfgPath, err := filepath.Abs(reportFixtureConfig)
	if err != nil {
		t.Fatal(err)
	}
	exp := filepath.Join(t.TempDir(), "exp")
	copyTree(t, reportFixture, exp)

	code, out, stderr := run(t, "", nil, "report", "--experiment", exp, "--config", cfgPath)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	readme := filepath.Join(exp, runstore.ReportKey, "README.md")
	if !strings.Contains(out, readme) || !strings.Contains(out, "57 of 57 steps used") {
		t.Errorf("stdout does not name the report and its steps:\n%s", out)
	}
	for _, f := range []string{"README.md", "config.yaml", "stats.json", "steps.csv", "tables/tau4-kdw0.9-ep4.tex",
		"figures/student-vs-size-tau4-kdw0.9-ep4.png", "figures/reliability-tiny.svg"} {
		if _, err := os.Stat(filepath.Join(exp, runstore.ReportKey, f)); err != nil {
			t.Errorf("report lacks %s: %v", f, err)
		}
	}

	// A partial study still gets a report that names what is missing.
	gone := "students/tau4-kdw0.9-ep4/raw/xlarge/seed-1"
	if err := os.RemoveAll(filepath.Join(exp, gone)); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = run(t, "", nil, "report", "--experiment", exp, "--config", cfgPath)
	if code != 0 {
		t.Fatalf("partial: exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "missing  "+gone) || !strings.Contains(stderr, "partial study") {
		t.Errorf("partial study: stdout/stderr do not name %s:\n%s\n%s", gone, out, stderr)
	}
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "| `"+gone+"` | missing |") {
		t.Errorf("README does not list %s as missing", gone)
	}

	// --out leaves the store untouched; --json: what was written and the numbers.
	outDir := filepath.Join(t.TempDir(), "elsewhere")
	code, out, stderr = run(t, "", nil, "report", "--experiment", exp, "--config", cfgPath, "--out", outDir, "--json")
	if code != 0 {
		t.Fatalf("--out: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(outDir, "README.md")); err != nil {
		t.Errorf("--out: %v", err)
	}
	checkReportJSON(t, out, outDir, gone)

	// Nothing to report: exit 5 (missing prerequisite) naming the directory.
	empty := t.TempDir()
	code, _, stderr = run(t, "", nil, "report", "--experiment", empty, "--config", cfgPath)
	if code != ExitMissing || !strings.Contains(stderr, empty) {
		t.Errorf("empty store: exit %d, stderr %q; want %d naming %s", code, stderr, ExitMissing, empty)
	}
	code, _, stderr = run(t, "", nil, "report", "--experiment", filepath.Join(empty, "nope"), "--config", cfgPath)
	if code != ExitMissing {
		t.Errorf("absent store: exit %d, stderr %q; want %d", code, stderr, ExitMissing)
	}
	if _, err := os.Stat(filepath.Join(empty, "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("report created the absent experiment directory")
	}
}

// checkReportJSON checks report --json against the report's own files: the
// files exist, the unused step is listed, and each setting's ρ, CI and p
// are stats.json's.
func checkReportJSON(t *testing.T, out, dir, unused string) {
	t.Helper()
	var doc ReportDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("report --json: %v\n%s", err, out)
	}
	if doc.Dir != dir || doc.Readme != filepath.Join(dir, "README.md") || doc.StepsUsed != 56 || doc.StepsExpected != 57 ||
		len(doc.Unused) != 1 || doc.Unused[0].Key != unused || doc.Unused[0].Status != "missing" || doc.Headline == "" {
		t.Errorf("report --json: %+v", doc)
	}
	for _, f := range doc.Files {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("report --json lists %s: %v", f, err)
		}
	}
	var stats struct {
		Settings []struct {
			Setting   string `json:"setting"`
			SizeVsAcc map[string]struct {
				Rho *float64    `json:"rho"`
				CI  [2]*float64 `json:"ci95"`
				P   *float64    `json:"p_value"`
				N   int         `json:"n_units"`
			} `json:"teacher_params_vs_student_accuracy"`
		} `json:"settings"`
	}
	if err := atomicfile.ReadJSON(filepath.Join(dir, "stats.json"), &stats); err != nil {
		t.Fatal(err)
	}
	if len(doc.Settings) != len(stats.Settings) || len(doc.Settings) == 0 {
		t.Fatalf("report --json has %d settings, stats.json %d", len(doc.Settings), len(stats.Settings))
	}
	eq := func(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	for i, s := range stats.Settings {
		d := doc.Settings[i]
		if d.Setting != s.Setting || len(d.SizeVsAcc) != len(s.SizeVsAcc) {
			t.Errorf("setting %d: %+v; stats.json %+v", i, d, s)
		}
		for arm, c := range s.SizeVsAcc {
			g := d.SizeVsAcc[arm]
			if !eq(g.Value, c.Rho) || !eq(g.P, c.P) || !eq(g.CI95[0], c.CI[0]) || !eq(g.CI95[1], c.CI[1]) || g.N != c.N || g.Value == nil {
				t.Errorf("%s %s: --json %+v; stats.json %+v", s.Setting, arm, g, c)
			}
		}
	}
}
