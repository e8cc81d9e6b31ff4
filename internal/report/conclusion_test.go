package report

import (
	"math"
	"strings"
	"testing"
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
			Unavailable, []string{"cannot be computed", "needs at least 3 units", "2 sizes with data"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.c
			s, ev := corrSentence("**Raw KD**", "teacher size", &c, "sizes", "size effect")
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
	s, ev := diffSentence("Calibrating the teacher changes student accuracy by", d, "x")
	if ev != Inconclusive || !strings.Contains(s, "+0.21 pp") || !strings.Contains(s, "[−0.10, 0.50] pp") ||
		!strings.Contains(s, "no measurable difference") || !strings.Contains(s, "smallest attainable sign-flip p is 0.250") {
		t.Errorf("grade %v:\n%s", ev, s)
	}
}
