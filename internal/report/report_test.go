package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/report/figure"
	"github.com/kdcal/kdcal/internal/runstore"
)

// golden compares got with testdata/golden/<name>, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", filepath.FromSlash(name))
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s (rerun with -update after an intended change):\n%s", name, path, firstDiff(want, got))
	}
}

// firstDiff shows the first differing line.
func firstDiff(want, got []byte) string {
	wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + w + "\n  got:  " + g
		}
	}
	return ""
}

// writeReport writes the report of the store at root with cfg.
func writeReport(t *testing.T, cfg *config.Config, root string) *Result {
	t.Helper()
	store, err := runstore.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Write(context.Background(), cfg, store, Options{ConfigYAML: []byte("name: fixture\n")})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGoldenReport pins every text output of the report on the complete
// fixture: the per-setting, calibration and statistics tables in Markdown,
// CSV and LaTeX, steps.csv, stats.json and README.md.
func TestGoldenReport(t *testing.T) {
	cfg := loadFixtureConfig(t)
	root := copyFixture(t)
	res := writeReport(t, cfg, root)
	if res.Used != res.Expected || len(res.Unused) != 0 {
		t.Fatalf("complete fixture: used %d of %d steps, unused %v", res.Used, res.Expected, res.Unused)
	}
	dir := filepath.Join(root, runstore.ReportKey)
	for _, name := range []string{"tau2-kdw0.9-ep4", "tau4-kdw0.9-ep4", "calibration", "stats"} {
		for _, ext := range []string{"md", "csv", "tex"} {
			f := "tables/" + name + "." + ext
			golden(t, "complete/"+f, readFile(t, filepath.Join(dir, f)))
		}
	}
	for _, f := range []string{"steps.csv", "stats.json", "README.md", "tables/tau4-kdw0.9-ep4-long.csv"} {
		golden(t, "complete/"+f, readFile(t, filepath.Join(dir, f)))
	}
	if _, err := os.Stat(dir + ".partial"); !os.IsNotExist(err) {
		t.Errorf("report work directory left behind: %v", err)
	}
	var m runstore.Manifest
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, runstore.ManifestFile)), &m); err != nil {
		t.Fatal(err)
	}
	if m.Status != runstore.StatusDone || m.Kind != runstore.KindReport || m.ConfigHash != res.Hash || len(m.Inputs) != res.Used {
		t.Errorf("report manifest = status %q kind %q hash %q inputs %d; want done report %q %d",
			m.Status, m.Kind, m.ConfigHash, len(m.Inputs), res.Hash, res.Used)
	}
}

// TestFixtureHasSizeEffect checks the fixture's built-in positive size effect
// shows: ρ = 1 for both arms (the generated effect is much larger than the
// noise), with the exact permutation p = 1/3 of 3 sizes, and the
// conclusion says the design cannot reach significance.
func TestFixtureHasSizeEffect(t *testing.T) {
	cfg := loadFixtureConfig(t)
	store, err := runstore.Open(copyFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Load(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	a := Analyze(s)
	for _, r := range a.Settings {
		for _, arm := range []string{"raw", "calibrated"} {
			c := r.SizeVsAcc[arm]
			if c.Rho != 1 || !c.PExact || !near(float64(c.P), 1.0/3, 1e-12) || c.N != 3 || c.Seeds != 3 {
				t.Errorf("%s %s: ρ = %v, p = %v (exact %v), n = %d × %d; want ρ = 1, exact p = 1/3, 3 × 3",
					r.Name, arm, c.Rho, c.P, c.PExact, c.N, c.Seeds)
			}
		}
	}
	concl := a.Conclude()
	if !strings.Contains(concl.Headline, "Raw KD: not shown — a trend consistent across seeds but without statistical support in 2 of 2 settings") {
		t.Errorf("headline = %q; want the weak-evidence verdict for ρ = 1 with p = 1/3", concl.Headline)
	}
	text := strings.Join(concl.Settings[0].Lines, " ")
	if !strings.Contains(text, "cannot reach p < 0.05") {
		t.Errorf("conclusion does not say that 3 sizes cannot reach significance:\n%s", text)
	}
}

func near(a, b, tol float64) bool { return a-b <= tol && b-a <= tol }

// TestPartialReport checks that a partial, partly stale study still gets a
// report that names every missing or excluded step with its status.
func TestGoldenPartialReport(t *testing.T) {
	cfg := loadFixtureConfig(t)
	root := copyFixture(t)
	makePartial(t, root)
	res := writeReport(t, cfg, root)
	if len(res.Unused) != len(partialSteps) {
		t.Errorf("unused steps = %d, want %d", len(res.Unused), len(partialSteps))
	}
	got := map[string]string{}
	for _, st := range res.Unused {
		got[st.Key] = st.Status
	}
	readme := string(readFile(t, filepath.Join(root, runstore.ReportKey, "README.md")))
	steps := string(readFile(t, filepath.Join(root, runstore.ReportKey, "steps.csv")))
	for _, p := range partialSteps {
		if got[p.key] != p.status {
			t.Errorf("%s: status %q, want %q", p.key, got[p.key], p.status)
		}
		if !strings.Contains(readme, "| `"+p.key+"` | "+p.status+" |") {
			t.Errorf("README does not list %s as %s", p.key, p.status)
		}
		if !strings.Contains(steps, p.key+","+p.status+",") {
			t.Errorf("steps.csv does not list %s as %s", p.key, p.status)
		}
	}
	for _, want := range []string{"Partial study", "temperature fit did not converge", "config_hash 0123456789abcdef", "(n=2)"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README lacks %q", want)
		}
	}
	golden(t, "partial/README.md", []byte(readme))
}

// TestNothingToReport: a store without any finished step of the
// configuration is a MissingError (exit code 5), and nothing is written.
func TestNothingToReport(t *testing.T) {
	cfg := loadFixtureConfig(t)
	store, err := runstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = Write(context.Background(), cfg, store, Options{})
	var missing *runstore.MissingError
	if !errors.As(err, &missing) {
		t.Fatalf("err = %v, want a *runstore.MissingError", err)
	}
	if _, err := os.Stat(store.Dir(runstore.ReportKey)); !os.IsNotExist(err) {
		t.Errorf("report directory written for an empty store")
	}
	// A store filled under another configuration: every step is stale.
	other := loadFixtureConfig(t)
	other.Data.SplitSeed = 7 // every step depends on the data split
	store, err = runstore.Open(copyFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Write(context.Background(), other, store, Options{})
	if !errors.As(err, &missing) || !strings.Contains(err.Error(), "written with another configuration") {
		t.Fatalf("err = %v, want a MissingError saying the store was written with another configuration", err)
	}
}

// TestReportOut writes the report to another directory (read-only stores).
func TestReportOut(t *testing.T) {
	cfg := loadFixtureConfig(t)
	store, err := runstore.Open(copyFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	outRoot := t.TempDir()
	out, err := runstore.Open(outRoot)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Write(context.Background(), cfg, store, Options{Out: out, Key: "myreport"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Dir != filepath.Join(outRoot, "myreport") {
		t.Errorf("dir = %s", res.Dir)
	}
	if _, err := os.Stat(filepath.Join(outRoot, "myreport", "README.md")); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(store.Dir(runstore.ReportKey)); !os.IsNotExist(err) {
		t.Errorf("report written into the store despite Out")
	}
}

// TestFigures renders every figure of the fixture report and checks each PNG
// decodes to the figure's pixel size and each SVG is a non-trivial SVG
// document of the figure's size.
func TestFigures(t *testing.T) {
	cfg := loadFixtureConfig(t)
	root := copyFixture(t)
	writeReport(t, cfg, root)
	store, _ := runstore.Open(root)
	s, err := Load(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	figs, skipped, err := Analyze(s).Figures()
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 0 {
		t.Errorf("complete fixture skipped figures: %v", skipped)
	}
	// 3 reliability diagrams, teacher calibration, 2 × 2 student figures, effective temperature.
	if len(figs) != 3+1+4+1 {
		t.Errorf("%d figures, want 9", len(figs))
	}
	dir := filepath.Join(root, runstore.ReportKey, "figures")
	for _, f := range figs {
		b := readFile(t, filepath.Join(dir, f.Name+".png"))
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Errorf("%s.png: %v", f.Name, err)
			continue
		}
		w, h := f.PixelSize()
		if got := img.Bounds().Size(); got.X != w || got.Y != h {
			t.Errorf("%s.png is %v, want %dx%d", f.Name, got, w, h)
		}
		if nonWhite(img) < w*h/50 {
			t.Errorf("%s.png is nearly blank", f.Name)
		}
		svg := string(readFile(t, filepath.Join(dir, f.Name+".svg")))
		if !strings.Contains(svg, "<svg") || len(svg) < 5000 {
			t.Errorf("%s.svg is not a drawn SVG (%d bytes)", f.Name, len(svg))
		}
	}
}

// nonWhite counts pixels that are not (near) white.
func nonWhite(img image.Image) int {
	var n int
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r < 0xF000 || g < 0xF000 || bl < 0xF000 {
				n++
			}
		}
	}
	return n
}

// TestHashMatchesPlan: the report of a complete study carries exactly the
// hash `kdcal run` plans for it (so the planner sees it as done); a partial
// study's report gets another hash (so the planner writes it again).
func TestHashMatchesPlan(t *testing.T) {
	cfg := loadFixtureConfig(t)
	// The report hash does not depend on input shape or classes (only costs do).
	want, ok := plan.Build(cfg).Get(runstore.ReportKey)
	if !ok {
		t.Fatal("plan has no report step")
	}
	root := copyFixture(t)
	store, _ := runstore.Open(root)
	s, err := Load(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Hash(); got != want.Hash {
		t.Errorf("complete study: report hash %s, plan's %s", got, want.Hash)
	}
	makePartial(t, root)
	if s, err = Load(cfg, store); err != nil {
		t.Fatal(err)
	}
	if got := s.Hash(); got == want.Hash {
		t.Errorf("partial study has the complete study's report hash")
	}
}

// TestOneSeedNoFigures: a single seed gives no bootstrap interval (it would
// be degenerate, not certain), and report.formats = [] writes no figures.
func TestOneSeedNoFigures(t *testing.T) {
	cfg := loadFixtureConfig(t)
	cfg.Seeds = []int{0} // the fixture's seed-0 steps have the same hashes
	cfg.Report.Formats = nil
	root := copyFixture(t)
	res := writeReport(t, cfg, root)
	if res.Used != res.Expected {
		t.Fatalf("used %d of %d", res.Used, res.Expected)
	}
	var doc struct {
		Settings []struct {
			Size map[string]struct {
				Rho  *float64   `json:"rho"`
				CI   []*float64 `json:"ci95"`
				Note string     `json:"note"`
			} `json:"teacher_params_vs_student_accuracy"`
			All struct {
				CI []*float64 `json:"ci95"`
			} `json:"accuracy_calibrated_minus_raw"`
		} `json:"settings"`
	}
	dir := filepath.Join(root, runstore.ReportKey)
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, "stats.json")), &doc); err != nil {
		t.Fatal(err)
	}
	raw := doc.Settings[0].Size["raw"]
	if raw.Rho == nil || raw.CI[0] != nil || raw.CI[1] != nil || !strings.Contains(raw.Note, "2 seeds") {
		t.Errorf("one seed: ρ %v, CI %v, note %q; want ρ with a null CI and a note", raw.Rho, raw.CI, raw.Note)
	}
	if ci := doc.Settings[0].All.CI; ci[0] != nil || ci[1] != nil {
		t.Errorf("one seed: paired-difference CI %v, want null", ci)
	}
	readme := string(readFile(t, filepath.Join(dir, "README.md")))
	for _, want := range []string{"With 1 seed", "No figures written"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README lacks %q", want)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "figures")); len(entries) != 0 {
		t.Errorf("%d figure files written with report.formats = []", len(entries))
	}
}

// TestFigureKinds: report.formats accepts exactly the formats the figures
// render, and each one renders.
func TestFigureKinds(t *testing.T) {
	if !slices.Equal(config.FigureKinds, figure.Formats) {
		t.Errorf("config.FigureKinds = %v, figure.Formats = %v", config.FigureKinds, figure.Formats)
	}
	cfg := loadFixtureConfig(t)
	cfg.Report.Formats = []string{"pdf"}
	root := copyFixture(t)
	writeReport(t, cfg, root)
	dir := filepath.Join(root, runstore.ReportKey)
	b := readFile(t, filepath.Join(dir, "figures", "teacher-calibration.pdf"))
	if !bytes.HasPrefix(b, []byte("%PDF-")) {
		t.Errorf("teacher-calibration.pdf is not a PDF")
	}
	readme := string(readFile(t, filepath.Join(dir, "README.md")))
	if strings.Contains(readme, "![") || !strings.Contains(readme, "[PDF](figures/teacher-calibration.pdf)") {
		t.Errorf("README with PDF figures only: want links and no inline image")
	}
}

// TestNoStepsError: a store with nothing usable names its first expected
// step and a command that gets the user further — the store's own
// configuration when every step was written with another one.
func TestNoStepsError(t *testing.T) {
	steps := func(status string) []*Step {
		return []*Step{{Key: "teachers/tiny/seed-0", Status: status}, {Key: "teachers/tiny/seed-1", Status: StatusMissing}}
	}
	for _, tc := range []struct {
		name   string
		status string
		want   []string
	}{
		{"missing", StatusMissing, []string{"nothing to report in /s (2 expected steps: 2 missing)",
			"missing /s/teachers/tiny/seed-0; run `kdcal run` first"}},
		{"stale", StatusStale, []string{"no step in /s matches this configuration (1 missing, 1 stale)",
			"`kdcal report --config /s/config.yaml --experiment /s`", "missing /s/teachers/tiny/seed-0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := noStepsError(&Study{Root: "/s", Steps: steps(tc.status)})
			var missing *runstore.MissingError
			if !errors.As(err, &missing) {
				t.Fatalf("error %v is not a *runstore.MissingError (exit status 5)", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestFigureSettingTitle: with several losses in the grid a figure's
// title names the loss, so kd and dkd at the same τ are told apart.
func TestFigureSettingTitle(t *testing.T) {
	for _, tc := range []struct {
		s    plan.Setting
		want string
	}{
		{plan.Setting{Loss: "kd", Tau: 4, KDWeight: 0.9, Epochs: 10}, "τ = 4, kd_weight = 0.9, 10 student epochs"},
		{plan.Setting{Loss: "dkd", Tau: 4, KDWeight: 0.9, Epochs: 10, Tagged: true}, "dkd, τ = 4, kd_weight = 0.9, 10 student epochs"},
		{plan.Setting{Loss: "mse", KDWeight: 0.9, Epochs: 10, Tagged: true}, "mse, kd_weight = 0.9, 10 student epochs"},
	} {
		if got := figureSettingTitle(&SettingResult{Setting: tc.s}); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.s, got, tc.want)
		}
	}
}
