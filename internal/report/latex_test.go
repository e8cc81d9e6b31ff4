package report

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/report/table"
	"github.com/kdcal/kdcal/internal/runstore"
	"github.com/kdcal/kdcal/internal/stats"
)

// twoColumn is the page the tables must fit: a two-column article with
// \textwidth 505 pt and \columnwidth 241 pt, the narrowest of the common
// two-column formats (ACM's column is 241 pt, IEEE's 252 pt; both text
// widths are 505–516 pt). A table float is one column wide, table* the
// text width.
const twoColumn = `\documentclass[10pt,twocolumn]{article}
\usepackage[textwidth=505pt,columnsep=23pt,textheight=9in]{geometry}
\usepackage{booktabs}
\begin{document}
`

// latexTables returns every LaTeX table of the report of a, by file name.
func latexTables(a *Analysis, design string) map[string][]byte {
	out := map[string][]byte{}
	var ts []*table.Table
	for _, r := range a.Settings {
		ts = append(ts, a.settingTable(r))
	}
	ts = append(ts, a.calibrationTable(), a.statsTable())
	for _, t := range ts {
		out[design+"-"+t.Name+".tex"] = t.LaTeX()
	}
	return out
}

// widest turns the fixture's analysis into the widest tables the report
// makes of a plausible study: every calibrator, a long size name, and every
// cell at its widest (two-digit percentages with two-digit stds, NLL and T
// with one-digit integer parts, negative estimates, p < 0.001).
func widest(a *Analysis) *Analysis {
	wide := stats.Agg{Mean: 0.9999, Std: 0.1234, N: 3}
	nll := stats.Agg{Mean: 2.345, Std: 1.234, N: 3}
	a.Study.Methods = append([]string(nil), config.Calibrators...)
	a.Study.Sizes = append(a.Study.Sizes, "xxxlarge")
	for i := range a.Calibration {
		r := &a.Calibration[i]
		r.Size, r.ECEBefore, r.NLLBefore, r.T = "xxxlarge", wide, nll, stats.Agg{Mean: 9.99, Std: 9.99, N: 3}
		for _, m := range a.Study.Methods {
			r.ECEAfter[m], r.NLLAfter[m] = wide, nll
		}
	}
	neg := func(c *Corr) {
		c.Rho, c.CI, c.P = -1, [2]Num{-1, -1}, 0.0005
	}
	for _, r := range a.Settings {
		r.Scratch = ArmCell{Acc: wide, ECE: wide}
		for i := range r.Rows {
			row := &r.Rows[i]
			row.Size, row.TeacherAcc, row.ECEBefore = "xxxlarge", wide, wide
			for arm := range row.Arms {
				row.Arms[arm] = ArmCell{Acc: wide, ECE: wide}
			}
		}
		for _, m := range []map[string]*Corr{r.SizeVsAcc, r.ECEVsAcc, r.TeacherAccVsAc, a.EffTemp} {
			for _, c := range m {
				neg(c)
			}
		}
		for i := range r.CalMinusRaw {
			r.CalMinusRaw[i].Label, r.CalMinusRaw[i].Mean, r.CalMinusRaw[i].CI = "xxxlarge", -1, [2]Num{-1, -1}
		}
		for _, d := range append([]*Diff{r.RhoDiff, r.CalMinusRawAll}, r.KDMinusScratch["raw"], r.KDMinusScratch["calibrated"]) {
			if d != nil {
				d.Mean, d.CI, d.N = -1, [2]Num{-1, -1}, 100
			}
		}
	}
	return a
}

var overfull = regexp.MustCompile(`Overfull \\hbox \(([0-9.]+pt) too wide\)`)

// TestLaTeXFits compiles every generated LaTeX table (complete, partial,
// one-seed and widest designs) with pdflatex inside the two-column article
// above and fails on any overfull \hbox, naming the table. It skips without
// pdflatex (CI installs texlive-latex-recommended, scripts/setup.sh).
func TestLaTeXFits(t *testing.T) {
	pdflatex, err := exec.LookPath("pdflatex")
	if err != nil {
		t.Skip("pdflatex not installed (apt-get install texlive-latex-recommended)")
	}
	cfg := loadFixtureConfig(t)
	analyse := func(mutate func(*config.Config, string)) *Analysis {
		c := *cfg
		root := copyFixture(t)
		if mutate != nil {
			mutate(&c, root)
		}
		store, err := runstore.Open(root)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Load(&c, store)
		if err != nil {
			t.Fatal(err)
		}
		return Analyze(s)
	}
	files := map[string][]byte{}
	for design, a := range map[string]*Analysis{
		"complete": analyse(nil),
		"partial":  analyse(func(_ *config.Config, root string) { makePartial(t, root) }),
		"one-seed": analyse(func(c *config.Config, _ string) { c.Seeds = []int{0} }),
		"widest":   widest(analyse(nil)),
	} {
		for name, b := range latexTables(a, design) {
			files[name] = b
		}
	}
	dir := t.TempDir()
	var doc strings.Builder
	doc.WriteString(twoColumn)
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&doc, "\\typeout{KDCAL-TABLE %s}\n\\input{%s}\n\\clearpage\n", name, name)
	}
	doc.WriteString("\\end{document}\n")
	if err := os.WriteFile(filepath.Join(dir, "doc.tex"), []byte(doc.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pdflatex, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "doc.tex")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pdflatex: %v\n%s", err, tail(out, 30))
	}
	log, err := os.ReadFile(filepath.Join(dir, "doc.log"))
	if err != nil {
		t.Fatal(err)
	}
	current, checked := "", 0
	for _, line := range strings.Split(string(log), "\n") {
		if name, ok := strings.CutPrefix(line, "KDCAL-TABLE "); ok {
			current = name
			checked++
		}
		if m := overfull.FindStringSubmatch(line); m != nil {
			t.Errorf("%s is %s too wide for its float (see %s)", current, m[1], filepath.Join(dir, current))
		}
	}
	if checked != len(files) {
		t.Errorf("pdflatex typeset %d of %d tables", checked, len(files))
	}
	t.Logf("%d tables compiled with %s, none overfull", checked, pdflatex)
}

func tail(b []byte, n int) string {
	lines := strings.Split(string(b), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

var _ = math.NaN
