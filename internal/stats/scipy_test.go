package stats

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os/exec"
	"sort"
	"testing"

	"github.com/kdcal/kdcal/internal/testutil"
)

// scipyCase is one input of testdata/scipy_peer.py; empty fields are omitted.
type scipyCase struct {
	Kind  string     `json:"kind"`
	X     []float64  `json:"x,omitempty"`
	Y     []float64  `json:"y,omitempty"`
	D     []float64  `json:"d,omitempty"`
	XN    []*float64 `json:"xn,omitempty"` // x with NaN as null (aggregate)
	Level float64    `json:"level,omitempty"`
}

type scipyResult struct {
	Rho, P, Lo, Hi, Mean, Std float64
	Count                     int
}

// runScipy evaluates cases with numpy/scipy (Debian's /usr/bin/python3).
func runScipy(t *testing.T, cases []scipyCase) []scipyResult {
	t.Helper()
	testutil.RequirePython(t, "numpy", "scipy")
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testutil.Python, "testdata/scipy_peer.py")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scipy_peer.py: %v\n%s", err, stderr.String())
	}
	var res []struct {
		Rho   *float64 `json:"rho"`
		P     *float64 `json:"p"`
		Lo    *float64 `json:"lo"`
		Hi    *float64 `json:"hi"`
		Mean  *float64 `json:"mean"`
		Std   *float64 `json:"std"`
		Count int      `json:"count"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("scipy_peer.py output: %v\n%s", err, out)
	}
	f := func(p *float64) float64 {
		if p == nil {
			return math.NaN()
		}
		return *p
	}
	r := make([]scipyResult, len(res))
	for i, v := range res {
		r[i] = scipyResult{Rho: f(v.Rho), P: f(v.P), Lo: f(v.Lo), Hi: f(v.Hi), Mean: f(v.Mean), Std: f(v.Std), Count: v.Count}
	}
	return r
}

// tiedValues draws n values from a few levels, so that ties are common.
func tiedValues(rng *rand.Rand, n, levels int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = float64(rng.IntN(levels)) / 4
	}
	return x
}

// distinctValues draws n distinct values (a shuffled ramp with noise).
func distinctValues(rng *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = float64(i) + 0.5*rng.Float64()
	}
	rng.Shuffle(n, func(i, j int) { x[i], x[j] = x[j], x[i] })
	return x
}

// TestScipy cross-checks stats against numpy and scipy (Debian's
// /usr/bin/python3; skipped without it), in one Python process: the cases
// come from seeded generators, the expected values from
// testdata/scipy_peer.py.
func TestScipy(t *testing.T) {
	checks := []scipyCheck{spearmanScipy(), permutationScipy(), signFlipScipy(), percentileScipy(), aggregateScipy()}
	var cases []scipyCase
	for _, c := range checks {
		cases = append(cases, c.cases...)
	}
	res := runScipy(t, cases)
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			for i := range c.cases {
				c.check(t, i, res[i])
			}
		})
		res = res[len(c.cases):]
	}
}

// scipyCheck is one family of cases and how to check each against scipy.
type scipyCheck struct {
	name  string
	cases []scipyCase
	check func(t *testing.T, i int, r scipyResult)
}

// spearmanScipy: Spearman against scipy.stats.spearmanr on random data
// with and without ties (n = 3..10); both are the Pearson correlation of
// average ranks, computed in float64, so they agree to rounding.
func spearmanScipy() scipyCheck {
	const tol = 1e-12
	rng := rand.New(rand.NewPCG(11, 12))
	var cases []scipyCase
	for i := range 24 {
		n := 3 + i%8
		x, y := distinctValues(rng, n), tiedValues(rng, n, 4)
		if i%2 == 0 {
			x = tiedValues(rng, n, 5)
		}
		if c := (scipyCase{Kind: "spearman", X: x, Y: y}); !math.IsNaN(Spearman(x, y)) {
			cases = append(cases, c)
		}
	}
	return scipyCheck{"Spearman", cases, func(t *testing.T, i int, r scipyResult) {
		c := cases[i]
		if got := Spearman(c.X, c.Y); math.Abs(got-r.Rho) > tol {
			t.Errorf("Spearman(%v, %v) = %.16g, scipy %.16g", c.X, c.Y, got, r.Rho)
		}
	}}
}

// permutationScipy: the exact two-sided p of PermutationSpearman
// against scipy.stats.permutation_test(permutation_type="pairings",
// n_resamples=inf; y permuted against the fixed x, ρ from scipy.stats.rankdata)
// for n = 3..7 distinct x and tied or distinct y. scipy
// reports 2·min(P(ρ ≤ ρ_obs), P(ρ ≥ ρ_obs)), which equals P(|ρ| ≥ |ρ_obs|)
// because the null distribution is symmetric for distinct x; both are
// counts over the same n! permutations, so they agree exactly.
func permutationScipy() scipyCheck {
	const tol = 1e-12
	rng := rand.New(rand.NewPCG(13, 14))
	var cases []scipyCase
	for i := range 20 {
		n := 3 + i%5
		x, y := distinctValues(rng, n), tiedValues(rng, n, 3)
		if i%3 == 0 {
			y = distinctValues(rng, n)
		}
		if !math.IsNaN(Spearman(x, y)) {
			cases = append(cases, scipyCase{Kind: "perm_spearman", X: x, Y: y})
		}
	}
	return scipyCheck{"PermutationSpearman", cases, func(t *testing.T, i int, r scipyResult) {
		c := cases[i]
		got := PermutationSpearman(nil, c.X, c.Y, 10000)
		if !got.Exact || got.Count != r.Count || math.Abs(got.P-r.P) > tol {
			t.Errorf("PermutationSpearman(%v, %v) = %+v; scipy p = %v over %d", c.X, c.Y, got, r.P, r.Count)
		}
	}}
}

// signFlipScipy: the exact p of SignFlipTest against
// scipy.stats.permutation_test((d,), mean, permutation_type="samples",
// n_resamples=inf), which flips signs, for k = 2..8 differences (scipy
// needs two).
func signFlipScipy() scipyCheck {
	const tol = 1e-12
	rng := rand.New(rand.NewPCG(15, 16))
	var cases []scipyCase
	for i := range 14 {
		d := make([]float64, 2+i%7)
		for j := range d {
			d[j] = math.Round((rng.NormFloat64()+0.3)*100) / 100
		}
		cases = append(cases, scipyCase{Kind: "sign_flip", D: d})
	}
	return scipyCheck{"SignFlipTest", cases, func(t *testing.T, i int, r scipyResult) {
		c := cases[i]
		got := SignFlipTest(nil, c.D, 1<<12)
		if !got.Exact || got.Count != r.Count || math.Abs(got.P-r.P) > tol {
			t.Errorf("SignFlipTest(%v) = %+v; scipy p = %v over %d", c.D, got, r.P, r.Count)
		}
	}}
}

// percentileScipy: PercentileCI against numpy.quantile(method=
// "inverted_cdf"), the same order statistics, exactly.
func percentileScipy() scipyCheck {
	rng := rand.New(rand.NewPCG(17, 18))
	var cases []scipyCase
	var sorted [][]float64
	for i := range 12 {
		x := make([]float64, 1+i*37)
		for j := range x {
			x[j] = rng.NormFloat64()
		}
		s := append([]float64(nil), x...)
		sort.Float64s(s)
		sorted = append(sorted, s)
		cases = append(cases, scipyCase{Kind: "quantiles", X: x, Level: []float64{0.95, 0.9, 0.5}[i%3]})
	}
	return scipyCheck{"PercentileCI", cases, func(t *testing.T, i int, r scipyResult) {
		lo, hi := PercentileCI(sorted[i], cases[i].Level)
		if lo != r.Lo || hi != r.Hi {
			t.Errorf("case %d (n = %d, level %v): [%v, %v], numpy [%v, %v]", i, len(sorted[i]), cases[i].Level, lo, hi, r.Lo, r.Hi)
		}
	}}
}

// aggregateScipy: Aggregate against numpy.nanmean and
// numpy.nanstd(ddof=1); the summation orders differ (numpy sums pairwise),
// so the mean agrees to 1e-14 and the std to 1e-13, relative.
func aggregateScipy() scipyCheck {
	const meanTol, stdTol = 1e-14, 1e-13
	rng := rand.New(rand.NewPCG(19, 20))
	var cases []scipyCase
	var xs [][]float64
	for i := range 10 {
		x := make([]float64, 2+3*i)
		xn := make([]*float64, len(x))
		for j := range x {
			x[j] = 0.8 + 0.05*rng.NormFloat64()
			if j%4 == 3 {
				x[j] = math.NaN()
				continue
			}
			v := x[j]
			xn[j] = &v
		}
		xs = append(xs, x)
		cases = append(cases, scipyCase{Kind: "aggregate", XN: xn})
	}
	return scipyCheck{"Aggregate", cases, func(t *testing.T, i int, r scipyResult) {
		a := Aggregate(xs[i])
		if math.Abs(a.Mean-r.Mean) > meanTol*math.Abs(r.Mean) || math.Abs(a.Std-r.Std) > stdTol*r.Std {
			t.Errorf("Aggregate(%v) = %+v; numpy mean %.16g std %.16g", xs[i], a, r.Mean, r.Std)
		}
	}}
}
