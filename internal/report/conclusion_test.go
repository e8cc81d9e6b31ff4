package report

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kdcal/kdcal/internal/runstore"
)

// TestCorrSentence pins the conclusion rule: the sentence is generated from
// the numbers, and a claim is only "supported" when the interval excludes 0
// and p < 0.05.
func TestCorrSentence(t *testing.T) {
	nan := Num(math.NaN())
	tests := []struct {
		name  string
		c     Corr
		grade Evidence
		want  []string
	}{
		{"inconclusive, 3 sizes × 2 seeds (the issue's example)",
			Corr{Rho: 0.5, CI: [2]Num{-0.5, 1}, P: 2.0 / 3, PMin: 1.0 / 3, PExact: true, N: 3, Seeds: 2},
			Inconclusive, []string{"rises with", "ρ = 0.50, 95% CI [−0.50, 1.00], exact permutation p = 0.667; 3 sizes × 2 seeds",
				"inconclusive", "do not support a size effect", "cannot reach p < 0.05", "smallest attainable permutation p is 0.333"}},
		{"supported positive, 6 sizes",
			Corr{Rho: 0.94, CI: [2]Num{0.6, 1}, P: 0.0167, PMin: 2.0 / 720, PExact: true, N: 6, Seeds: 5},
			Supported, []string{"rises with", "p = 0.017", "the data support a positive size effect"}},
		{"supported negative, Monte Carlo",
			Corr{Rho: -0.9, CI: [2]Num{-1, -0.4}, P: 0.001, PMin: 1.0 / 2001, N: 8, Seeds: 5},
			Supported, []string{"falls with", "Monte Carlo permutation p = 0.001", "support a negative size effect"}},
		{"weak: interval excludes 0, p does not",
			Corr{Rho: 1, CI: [2]Num{1, 1}, P: 1.0 / 3, PMin: 1.0 / 3, PExact: true, N: 3, Seeds: 3},
			Weak, []string{"does not reject", "not evidence of a size effect", "cannot reach"}},
		{"undefined",
			Corr{Rho: nan, CI: [2]Num{nan, nan}, P: nan, PMin: nan, N: 2, Note: "needs at least 3 units with data"},
			Unavailable, []string{"ρ is not estimable with n = 2 sizes", "needs at least 3", "±1 whatever the data"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.c
			s, ev := corrSentence("**Raw KD**", "teacher size", &c, "sizes", "size effect", 500)
			if ev != tt.grade {
				t.Errorf("grade %v, want %v", ev, tt.grade)
			}
			for _, w := range tt.want {
				if !strings.Contains(s, w) {
					t.Errorf("sentence lacks %q:\n%s", w, s)
				}
			}
			if tt.grade != Supported && strings.Contains(s, "support a") && !strings.Contains(s, "do not support") {
				t.Errorf("over-claims:\n%s", s)
			}
		})
	}
}

func TestDiffSentence(t *testing.T) {
	d := &Diff{Mean: 0.0021, CI: [2]Num{-0.001, 0.005}, P: 0.5, PMin: 0.25, N: 3}
	s, ev := diffSentence("Calibrating the teacher changes student accuracy by", d, "x", 500)
	if ev != Inconclusive || !strings.Contains(s, "+0.21 pp") || !strings.Contains(s, "[−0.10, 0.50] pp") ||
		!strings.Contains(s, "no measurable difference") || !strings.Contains(s, "smallest attainable sign-flip p is 0.250") {
		t.Errorf("grade %v:\n%s", ev, s)
	}
}

// TestDiffSentenceWithoutInterval: a −8.09 pp KD-vs-scratch gap from one
// seed has no interval; the sentence says so and why, and claims neither
// "the interval includes 0" nor "no measurable difference".
func TestDiffSentenceWithoutInterval(t *testing.T) {
	nan := Num(math.NaN())
	for _, tc := range []struct {
		name      string
		d         Diff
		bootstrap int
		want      []string
	}{
		{"1 seed", Diff{Mean: -0.0809, CI: [2]Num{nan, nan}, P: 1, PMin: 1, N: 1}, 500,
			[]string{"−8.09 pp", "(1 seed)", "not estimable with n = 1 seed", "single seed has no seed-to-seed variation", "cannot be judged; add seeds"}},
		{"bootstrap off", Diff{Mean: -0.0809, CI: [2]Num{nan, nan}, P: 0.25, PMin: 0.25, N: 3}, 0,
			[]string{"(3 seeds)", "not computed (report.bootstrap = 0)", "cannot reach p < 0.05 with 3 seeds"}},
		{"no interval, test rejects", Diff{Mean: 0.02, CI: [2]Num{nan, nan}, P: 0.01, PMin: 0.002, N: 9}, 0,
			[]string{"rejects a zero difference (p = 0.010): on that test alone, x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := diffSentence("Raw KD students differ from the scratch student by", &tc.d, "x", tc.bootstrap)
			for _, w := range tc.want {
				if !strings.Contains(s, w) {
					t.Errorf("sentence lacks %q:\n%s", w, s)
				}
			}
			for _, bad := range []string{"interval includes 0", "interval excludes 0", "no measurable difference", "CI —"} {
				if strings.Contains(s, bad) {
					t.Errorf("sentence says %q without an interval:\n%s", bad, s)
				}
			}
		})
	}
}

// TestConclusionDesigns writes the report of the fixture under four designs
// and checks that the text never reads an interval that stats.json lacks:
// with 1 seed there is no interval at all, with 2 sizes no ρ and no Δρ, and
// with 2 or 3 seeds over 3 sizes everything is estimable.
func TestConclusionDesigns(t *testing.T) {
	tests := []struct {
		name   string
		seeds  []int
		sizes  []string
		noCI   bool // stats.json has no interval anywhere
		noRho  bool // stats.json has no ρ of size
		want   []string
		forbid []string
	}{
		{name: "1 seed", seeds: []int{0}, noCI: true,
			want:   []string{"not estimable with n = 1 seed", "(1 seed)", "3 sizes × 1 seed"},
			forbid: []string{"interval includes 0", "interval excludes 0", "no measurable", "CI —"}},
		{name: "2 sizes", sizes: []string{"tiny", "xlarge"}, noRho: true,
			want:   []string{"ρ is not estimable with n = 2 sizes", "Δρ is not estimable with n = 2 sizes", "With 2 teacher sizes no correlation"},
			forbid: []string{"Δρ interval includes 0", "Δρ interval excludes 0", "too few finished students", "cannot be computed"}},
		{name: "3 sizes × 2 seeds", seeds: []int{0, 1},
			want: []string{"Δρ interval includes 0", "95% CI ["}, forbid: []string{"not estimable", "not computed"}},
		{name: "full", want: []string{"95% CI ["}, forbid: []string{"not estimable", "not computed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := loadFixtureConfig(t)
			if tt.seeds != nil {
				cfg.Seeds = tt.seeds
			}
			if tt.sizes != nil {
				cfg.Teacher.Sizes = tt.sizes
			}
			cfg.Report.Formats = nil
			root := copyFixture(t)
			res := writeReport(t, cfg, root)
			if res.Used != res.Expected {
				t.Fatalf("used %d of %d steps", res.Used, res.Expected)
			}
			dir := filepath.Join(root, runstore.ReportKey)
			readme := string(readFile(t, filepath.Join(dir, "README.md")))
			text := readme[:strings.Index(readme, "## Tables")]
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("conclusion lacks %q", w)
				}
			}
			for _, bad := range append(tt.forbid, "1 seeds", "1 sizes", "2 sizes with data") {
				if strings.Contains(text, bad) {
					t.Errorf("conclusion says %q:\n%s", bad, grepLines(text, bad))
				}
			}
			var doc struct { // stats.json, with null for a missing number
				Settings []struct {
					Setting   string `json:"setting"`
					SizeVsAcc map[string]struct {
						Rho *float64   `json:"rho"`
						CI  []*float64 `json:"ci95"`
					} `json:"teacher_params_vs_student_accuracy"`
					CalMinusRaw struct {
						CI []*float64 `json:"ci95"`
					} `json:"accuracy_calibrated_minus_raw"`
				} `json:"settings"`
			}
			if err := json.Unmarshal(readFile(t, filepath.Join(dir, "stats.json")), &doc); err != nil {
				t.Fatal(err)
			}
			for _, s := range doc.Settings {
				for arm, c := range s.SizeVsAcc {
					if got := c.CI[0] != nil; got != !(tt.noCI || tt.noRho) {
						t.Errorf("%s %s: ρ interval present = %v", s.Setting, arm, got)
					}
					if got := c.Rho != nil; got == tt.noRho {
						t.Errorf("%s %s: ρ present = %v", s.Setting, arm, got)
					}
				}
				if got := s.CalMinusRaw.CI[0] != nil; got == tt.noCI {
					t.Errorf("%s: calibrated − raw interval present = %v", s.Setting, got)
				}
			}
		})
	}
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
