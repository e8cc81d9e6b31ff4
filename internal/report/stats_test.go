package report

import (
	"math"
	"testing"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/stats"
)

// TestCorrelateJointBootstrap checks correlate's conversion of
// stats.JointSpearman on a grid where the bootstrap is enumerable: 3 sizes ×
// 2 seeds, seed 1 reverses the order of seed 0 but its values are tiny, so
// per-size means follow seed 0 unless a resample draws seed 1 twice
// (probability ¼, ρ = −1).
func TestCorrelateJointBootstrap(t *testing.T) {
	units := []string{"s", "m", "l"}
	params := Grid{Units: units, V: stats.Grid{{1, 1}, {2, 2}, {3, 3}}}
	acc := Grid{Units: units, V: stats.Grid{{10, 0.3}, {20, 0.2}, {30, 0.1}}}
	c := correlate(cfgReport(4000, 100), "test", "x", "y", "unit", params, acc)
	if c.Rho != 1 || c.N != 3 || c.Seeds != 2 || c.Note != "" {
		t.Fatalf("ρ = %v, n = %d × %d, note %q; want 1, 3 × 2, no note", c.Rho, c.N, c.Seeds, c.Note)
	}
	// Resamples: (0,0),(0,1),(1,0) → ρ = 1; (1,1) → ρ = −1. The 2.5% quantile
	// is −1 (P = ¼ > 2.5%), the 97.5% one is 1.
	if c.CI[0] != -1 || c.CI[1] != 1 || c.Resamples != 4000 {
		t.Errorf("CI = %v from %d resamples, want [−1, 1] from 4000", c.CI, c.Resamples)
	}
	if !c.PExact || math.Abs(float64(c.P)-1.0/3) > 1e-12 {
		t.Errorf("p = %v (exact %v), want exact 1/3", c.P, c.PExact)
	}
	if len(c.Points) != 3 || c.Points[2].Unit != "l" || c.Points[2].X != 3 || c.Points[2].Y != 15.05 {
		t.Errorf("points = %+v, want s, m, l with l at (3, 15.05)", c.Points)
	}
	one := Grid{Units: units, V: stats.Grid{{10}, {20}, {30}}}
	if c := correlate(cfgReport(100, 100), "test", "x", "y", "unit", Grid{Units: units, V: stats.Grid{{1}, {2}, {3}}}, one); c.Note != corrNotes[stats.TooFewReplicates] {
		t.Errorf("one seed: note %q", c.Note)
	}
}

func cfgReport(bootstrap, permutations int) config.Report {
	return config.Report{Bootstrap: bootstrap, Permutations: permutations, Seed: 0}
}
