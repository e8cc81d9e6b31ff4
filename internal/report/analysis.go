package report

import (
	"math"
	"strconv"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/stats"
)

// Level is the confidence level of every interval in the report.
const Level = 0.95

// Num is a float64 that encodes NaN and ±Inf as JSON null.
type Num float64

// MarshalJSON implements json.Marshaler.
func (n Num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', 10, 64), nil
}

// Point is one unit of a correlation: the per-unit means over seeds.
type Point struct {
	Unit string `json:"unit"`
	X    Num    `json:"x"`
	Y    Num    `json:"y"`
}

// Corr is a Spearman correlation with its bootstrap interval and
// permutation p-value (see the package documentation for the method).
type Corr struct {
	X         string  `json:"x"`                // what is ranked on the x side
	Y         string  `json:"y"`                // and on the y side
	Rho       Num     `json:"rho"`              // Spearman ρ of the per-unit means over all seeds
	CI        [2]Num  `json:"ci95"`             // percentile bootstrap interval (seeds resampled jointly)
	P         Num     `json:"p_value"`          // two-sided permutation p-value
	PMin      Num     `json:"p_min"`            // smallest p-value this design can produce
	PExact    bool    `json:"p_exact"`          // p from all n! permutations (else Monte Carlo)
	N         int     `json:"n_units"`          // units with both values
	Seeds     int     `json:"n_seeds"`          // seeds resampled
	Resamples int     `json:"resamples"`        // bootstrap resamples where ρ was defined
	Points    []Point `json:"points"`           // the per-unit means ρ is computed on
	Note      string  `json:"note,omitempty"`   // why a value is missing
	Unit      string  `json:"unit_of_analysis"` // e.g. "teacher size (mean over seeds)"
}

// Diff is a mean paired difference (fractions of accuracy) with its
// bootstrap interval and, for overall differences, a sign-flip p-value.
type Diff struct {
	Label     string `json:"label,omitempty"` // e.g. the teacher size
	Params    int    `json:"params,omitempty"`
	Mean      Num    `json:"mean"`
	CI        [2]Num `json:"ci95"`
	P         Num    `json:"p_value,omitempty"`
	PMin      Num    `json:"p_min,omitempty"`
	N         int    `json:"n_seeds"` // seeds with both values
	Resamples int    `json:"resamples"`
}

// ArmCell is one arm's student results for one teacher size.
type ArmCell struct {
	Acc, ECE stats.Agg
}

// SizeRow is one teacher size of a setting's table.
type SizeRow struct {
	Size       string
	Params     int
	TeacherAcc stats.Agg
	TeacherNLL stats.Agg
	ECEBefore  stats.Agg // teacher test ECE with its raw logits
	ECEAfter   stats.Agg // after the KD calibrator
	T          stats.Agg // fitted temperature (temp calibrator only)
	Arms       map[string]ArmCell
}

// SettingResult is everything the report says about one KD setting.
type SettingResult struct {
	Setting        plan.Setting
	Name           string
	Rows           []SizeRow
	Scratch        ArmCell // no teacher: the same for every row
	ScratchName    string
	SizeVsAcc      map[string]*Corr // arm → ρ(teacher params, student accuracy)
	ECEVsAcc       map[string]*Corr // arm → ρ(teacher ECE the arm distils from, student accuracy)
	TeacherAccVsAc map[string]*Corr // arm → ρ(teacher accuracy, student accuracy)
	RhoDiff        *Diff            // ρ_calibrated − ρ_raw of SizeVsAcc
	CalMinusRaw    []Diff           // per size, accuracy calibrated − raw paired by seed
	CalMinusRawAll *Diff            // mean over sizes
	KDMinusScratch map[string]*Diff // arm → mean over sizes of arm − scratch, paired by seed

	acc, ece map[string]Grid // arm → student grids over sizes (KD arms)
}

// CalRow is one teacher size of the calibration table (every method).
type CalRow struct {
	Size      string
	Params    int
	ECEBefore stats.Agg
	NLLBefore stats.Agg
	ECEAfter  map[string]stats.Agg // method → test ECE after calibration
	NLLAfter  map[string]stats.Agg // method → test NLL after calibration
	T         stats.Agg            // fitted temperature of TMethod
	// TMethod is the first method whose calibrators soften by one
	// temperature (they say so: CalibrationResult.Temperature), "" if none.
	TMethod string
}

// Analysis is the computed content of a report.
type Analysis struct {
	Study       *Study
	CalMethod   string // the calibrator whose "after" numbers the setting tables show
	Settings    []*SettingResult
	Calibration []CalRow
	EffTemp     map[string]*Corr // raw | calibrated | pooled → ρ(effective temperature, accuracy); nil without a sweep

	teacherAcc, teacherNLL, eceBefore, eceAfter, temp Grid
	params                                            Grid
}

// Analyze computes every table row and statistic of the report.
func Analyze(s *Study) *Analysis {
	a := &Analysis{Study: s, CalMethod: calMethod(s.Cfg)}
	a.teacherGrids()
	a.calibrationRows()
	for _, set := range s.Settings {
		a.Settings = append(a.Settings, a.setting(set))
	}
	if len(s.Settings) > 1 {
		a.effectiveTemperature()
	}
	return a
}

// calMethod is the calibrator the tables show: the KD arm's calibrator when
// it is fitted, else the first configured method.
func calMethod(cfg *config.Config) string {
	for _, m := range cfg.Calibration.Methods {
		if m == cfg.KD.Calibrator {
			return m
		}
	}
	return cfg.Calibration.Methods[0]
}

func (a *Analysis) teacherGrids() {
	s := a.Study
	k := len(s.Seeds)
	a.teacherAcc, a.teacherNLL = newGrid(s.Sizes, k), newGrid(s.Sizes, k)
	a.eceBefore, a.eceAfter, a.temp = newGrid(s.Sizes, k), newGrid(s.Sizes, k), newGrid(s.Sizes, k)
	a.params = newGrid(s.Sizes, k)
	for u, size := range s.Sizes {
		p := float64(s.Params(size))
		for j, seed := range s.Seeds {
			if p > 0 {
				a.params.V[u][j] = p
			}
			if t := s.Teacher(size, seed); t != nil {
				a.teacherAcc.V[u][j] = t.Test.Accuracy
				a.teacherNLL.V[u][j] = t.Test.NLL
				a.eceBefore.V[u][j] = t.Test.ECE
			}
			if c := s.Calibration(a.CalMethod, size, seed); c != nil {
				a.eceAfter.V[u][j] = c.Test.After.ECE
				a.temp.V[u][j] = c.Temperature()
			}
		}
	}
}

func (a *Analysis) calibrationRows() {
	s := a.Study
	for u, size := range s.Sizes {
		r := CalRow{Size: size, Params: s.Params(size), ECEBefore: a.eceBefore.Agg(u), NLLBefore: a.teacherNLL.Agg(u),
			ECEAfter: map[string]stats.Agg{}, NLLAfter: map[string]stats.Agg{}, T: stats.Agg{Mean: math.NaN(), Std: math.NaN()}}
		for _, m := range s.Methods {
			ece, nll := make([]float64, len(s.Seeds)), make([]float64, len(s.Seeds))
			for j, seed := range s.Seeds {
				ece[j], nll[j] = math.NaN(), math.NaN()
				if c := s.Calibration(m, size, seed); c != nil {
					ece[j], nll[j] = c.Test.After.ECE, c.Test.After.NLL
				}
			}
			r.ECEAfter[m] = stats.Aggregate(ece)
			r.NLLAfter[m] = stats.Aggregate(nll)
			if r.TMethod != "" {
				continue
			}
			t, found := make([]float64, len(s.Seeds)), false
			for j, seed := range s.Seeds {
				t[j] = math.NaN()
				if c := s.Calibration(m, size, seed); c != nil {
					t[j] = c.Temperature()
					found = found || !math.IsNaN(t[j])
				}
			}
			if found {
				r.T, r.TMethod = stats.Aggregate(t), m
			}
		}
		a.Calibration = append(a.Calibration, r)
	}
}

// studentGrids returns the test accuracy and ECE grids (units = sizes) of one
// KD arm under one setting.
func (a *Analysis) studentGrids(setting, arm string) (acc, ece Grid) {
	s := a.Study
	acc, ece = newGrid(s.Sizes, len(s.Seeds)), newGrid(s.Sizes, len(s.Seeds))
	for u, size := range s.Sizes {
		for j, seed := range s.Seeds {
			if st := s.Student(setting, arm, size, seed); st != nil {
				acc.V[u][j], ece.V[u][j] = st.Test.Accuracy, st.Test.ECE
			}
		}
	}
	return acc, ece
}

// scratchRow returns the scratch student's accuracy and ECE per seed.
func (a *Analysis) scratchRow(epochs int) (acc, ece []float64) {
	s := a.Study
	acc, ece = make([]float64, len(s.Seeds)), make([]float64, len(s.Seeds))
	for j, seed := range s.Seeds {
		acc[j], ece[j] = math.NaN(), math.NaN()
		if st := s.ScratchStudent(epochs, seed); st != nil {
			acc[j], ece[j] = st.Test.Accuracy, st.Test.ECE
		}
	}
	return acc, ece
}

func (a *Analysis) setting(set plan.Setting) *SettingResult {
	s := a.Study
	cfg := s.Cfg.Report
	r := &SettingResult{Setting: set, Name: set.Name(), ScratchName: scratchName(set.Epochs),
		SizeVsAcc: map[string]*Corr{}, ECEVsAcc: map[string]*Corr{}, TeacherAccVsAc: map[string]*Corr{},
		KDMinusScratch: map[string]*Diff{}, acc: map[string]Grid{}, ece: map[string]Grid{}}
	for _, arm := range s.KDArms {
		r.acc[arm], r.ece[arm] = a.studentGrids(r.Name, arm)
	}
	var scratchAcc []float64
	if s.Scratch {
		var scratchECE []float64
		scratchAcc, scratchECE = a.scratchRow(set.Epochs)
		r.Scratch = ArmCell{Acc: stats.Aggregate(scratchAcc), ECE: stats.Aggregate(scratchECE)}
	}
	for u, size := range s.Sizes {
		row := SizeRow{Size: size, Params: s.Params(size), TeacherAcc: a.teacherAcc.Agg(u), TeacherNLL: a.teacherNLL.Agg(u),
			ECEBefore: a.eceBefore.Agg(u), ECEAfter: a.eceAfter.Agg(u), T: a.temp.Agg(u), Arms: map[string]ArmCell{}}
		for _, arm := range s.KDArms {
			row.Arms[arm] = ArmCell{Acc: r.acc[arm].Agg(u), ECE: r.ece[arm].Agg(u)}
		}
		r.Rows = append(r.Rows, row)
	}
	const sizeUnit = "teacher size (mean over seeds)"
	for _, arm := range s.KDArms {
		name := r.Name + "/" + arm
		r.SizeVsAcc[arm] = correlate(cfg, name+"/size", "teacher parameters", "student test accuracy", sizeUnit, a.params, r.acc[arm])
		ece, what := a.eceBefore, "teacher test ECE (raw logits)"
		if arm == config.ArmCalibrated {
			ece, what = a.eceAfter, "teacher test ECE after "+a.CalMethod
		}
		r.ECEVsAcc[arm] = correlate(cfg, name+"/ece", what, "student test accuracy", sizeUnit, ece, r.acc[arm])
		r.TeacherAccVsAc[arm] = correlate(cfg, name+"/teacher-acc", "teacher test accuracy", "student test accuracy", sizeUnit, a.teacherAcc, r.acc[arm])
		if s.Scratch {
			d := pairedDiffs(r.acc[arm], scratchAcc)
			all := overallDiff(cfg, name+"/minus-scratch", d)
			r.KDMinusScratch[arm] = &all
		}
	}
	raw, okRaw := r.acc[config.ArmRaw]
	cal, okCal := r.acc[config.ArmCalibrated]
	if okRaw && okCal {
		d := make(stats.Grid, len(s.Sizes))
		for u := range d {
			d[u] = make([]float64, len(s.Seeds))
			for j := range d[u] {
				d[u][j] = cal.V[u][j] - raw.V[u][j] // NaN when either is missing
			}
			pd := sizeDiff(cfg, r.Name+"/cal-raw/"+s.Sizes[u], d[u])
			pd.Label, pd.Params = s.Sizes[u], s.Params(s.Sizes[u])
			r.CalMinusRaw = append(r.CalMinusRaw, pd)
		}
		all := overallDiff(cfg, r.Name+"/cal-raw", d)
		r.CalMinusRawAll = &all
		r.RhoDiff = rhoDiff(cfg, r.Name+"/rho-diff", a.params, raw, cal)
	}
	return r
}

// pairedDiffs returns arm − base per unit and seed (base is per seed).
func pairedDiffs(arm Grid, base []float64) stats.Grid {
	d := make(stats.Grid, len(arm.V))
	for u := range d {
		d[u] = make([]float64, len(base))
		for j := range base {
			d[u][j] = arm.V[u][j] - base[j]
		}
	}
	return d
}

// Notes of a Corr, by what stats left uncomputed.
var corrNotes = map[stats.Missing]string{
	stats.TooFewUnits:      "needs at least 3 units with data",
	stats.ConstantVariable: "undefined: one variable is constant across units",
	stats.TooFewReplicates: "no bootstrap interval: needs at least 2 seeds with data",
}

// correlate computes Spearman's ρ between the per-unit means of x and y over
// all seeds with its joint bootstrap CI and permutation p-value
// (stats.JointSpearman), on the named statistic's own RNG stream.
func correlate(cfg config.Report, name, xs, ys, unit string, x, y Grid) *Corr {
	r := stats.JointSpearman(streamRNG(cfg.Seed, name), x.V, y.V, resampling(cfg.Bootstrap, cfg.Permutations))
	c := &Corr{X: xs, Y: ys, Unit: unit, N: len(r.X), Seeds: r.Replicates, Rho: Num(r.Rho),
		CI: [2]Num{Num(r.Lo), Num(r.Hi)}, P: Num(r.Test.P), PMin: Num(r.Test.PMin), PExact: r.Test.Exact,
		Resamples: r.Resamples, Note: corrNotes[r.Missing]}
	for i, u := range r.Units {
		c.Points = append(c.Points, Point{Unit: x.Units[u], X: Num(r.X[i]), Y: Num(r.Y[i])})
	}
	return c
}

// diffOf converts a stats.Diff.
func diffOf(d stats.Diff) Diff {
	return Diff{Mean: Num(d.Mean), CI: [2]Num{Num(d.Lo), Num(d.Hi)}, P: Num(d.Test.P), PMin: Num(d.Test.PMin),
		N: d.N, Resamples: d.Resamples}
}

// sizeDiff is the mean over seeds of one size's paired differences d (NaN
// where a pair is missing) with its percentile bootstrap CI over seeds
// (stats.MeanCI).
func sizeDiff(cfg config.Report, name string, d []float64) Diff {
	return diffOf(stats.MeanCI(streamRNG(cfg.Seed, name), d, resampling(cfg.Bootstrap, cfg.Permutations)))
}

// overallDiff is the mean over units of the per-unit mean paired differences
// d[unit][seed], with a bootstrap CI (seeds resampled jointly across units)
// and a sign-flip p-value on the per-seed averages over units (stats.JointMean).
func overallDiff(cfg config.Report, name string, d stats.Grid) Diff {
	return diffOf(stats.JointMean(streamRNG(cfg.Seed, name), d, resampling(cfg.Bootstrap, cfg.Permutations)))
}

// rhoDiff is ρ(params, calibrated accuracy) − ρ(params, raw accuracy) with a
// joint bootstrap CI (stats.JointSpearmanDiff): does calibrating the teacher
// change the size trend?
func rhoDiff(cfg config.Report, name string, params, raw, cal Grid) *Diff {
	d := diffOf(stats.JointSpearmanDiff(streamRNG(cfg.Seed, name), params.V, raw.V, cal.V, resampling(cfg.Bootstrap, cfg.Permutations)))
	return &d
}

// effectiveTemperature correlates student accuracy with the effective KD
// temperature τ·T_cal over (setting, size) cells, per KD arm and pooled over
// arms. Cells are the units; seeds are resampled jointly.
func (a *Analysis) effectiveTemperature() {
	s := a.Study
	a.EffTemp = map[string]*Corr{}
	const unit = "(KD setting, teacher size) cell (mean over seeds)"
	pooledX, pooledY := Grid{}, Grid{}
	for _, arm := range s.KDArms {
		var units []string
		for _, set := range s.Settings {
			for _, size := range s.Sizes {
				units = append(units, set.Name()+"/"+arm+"/"+size)
			}
		}
		x, y := newGrid(units, len(s.Seeds)), newGrid(units, len(s.Seeds))
		u := 0
		for _, set := range s.Settings {
			for _, size := range s.Sizes {
				for j, seed := range s.Seeds {
					if st := s.Student(set.Name(), arm, size, seed); st != nil {
						x.V[u][j] = effectiveTemp(st.EffectiveTemperature, st.Tau, st.CalibrationTemperature, set.Tau)
						y.V[u][j] = st.Test.Accuracy
					}
				}
				u++
			}
		}
		a.EffTemp[arm] = correlate(s.Cfg.Report, "efftemp/"+arm, "effective KD temperature τ·T", "student test accuracy", unit, x, y)
		pooledX.Units, pooledX.V = append(pooledX.Units, x.Units...), append(pooledX.V, x.V...)
		pooledY.Units, pooledY.V = append(pooledY.Units, y.Units...), append(pooledY.V, y.V...)
	}
	if len(s.KDArms) > 1 {
		a.EffTemp["pooled"] = correlate(s.Cfg.Report, "efftemp/pooled", "effective KD temperature τ·T", "student test accuracy", unit, pooledX, pooledY)
	}
}

// effectiveTemp returns the student's recorded effective temperature, else
// τ·T_cal from its summary, else the setting's τ.
func effectiveTemp(eff, tau, tcal, settingTau float64) float64 {
	switch {
	case eff > 0:
		return eff
	case tau > 0 && tcal > 0:
		return tau * tcal
	case tau > 0:
		return tau
	default:
		return settingTau
	}
}
