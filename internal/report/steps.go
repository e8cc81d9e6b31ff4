package report

import (
	"math"
	"strconv"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/metrics"
	"github.com/kdcal/kdcal/internal/report/table"
	"github.com/kdcal/kdcal/internal/runstore"
)

// metricNames are the metrics.Summary fields of steps.csv, in column order,
// and metricUnits their units: frac (a fraction in [0, 1]; the Markdown and
// LaTeX tables show percent), nats, or 1 (dimensionless: the Brier score
// summed over classes, in [0, 2]).
var (
	metricNames = []string{"accuracy", "nll", "brier", "ece", "mce", "ece_em", "cw_ece"}
	metricUnits = []string{"frac", "nats", "1", "frac", "frac", "frac", "frac"}
)

// metricColumn is the CSV column of metric i on split: val_accuracy_frac,
// test_nll_nats, test_brier (no suffix when dimensionless).
func metricColumn(split string, i int) string {
	c := split + "_" + metricNames[i]
	if u := metricUnits[i]; u != "1" {
		c += "_" + u
	}
	return c
}

func metricValues(m metrics.Summary) []float64 {
	return []float64{m.Accuracy, m.NLL, m.Brier, m.ECE, m.MCE, m.ECEEM, m.CWECE}
}

// stepsCSV is the long-format table of the study: one row per expected step
// (every status), with every metric of the finished ones. Calibration rows
// hold the metrics after calibration; the teacher row of the same (size,
// seed) holds them before.
func (a *Analysis) stepsCSV() ([]byte, error) {
	s := a.Study
	head := []string{"kind", "key", "status", "reason", "expected_config_hash", "size", "teacher_params", "seed", "method",
		"setting", "arm", "tau", "kd_weight", "ce_weight", "epochs", "params", "fitted_temperature", "calibration_temperature",
		"effective_temperature", "wall_seconds"}
	for _, split := range []string{"val", "test"} {
		for i := range metricNames {
			head = append(head, metricColumn(split, i))
		}
	}
	rows := [][]string{head}
	for _, st := range s.Steps {
		teacherParams := ""
		if st.Size != "" {
			if p := s.Params(st.Size); p > 0 {
				teacherParams = strconv.Itoa(p)
			}
		}
		r := []string{st.Kind, st.Key, st.Status, st.Reason, st.Hash, st.Size, teacherParams, strconv.Itoa(st.Seed), st.Method,
			st.Setting, st.Arm}
		nan := math.NaN()
		var (
			tau, kdw, cew, fitT, calT, effT, wall = nan, nan, nan, nan, nan, nan, nan
			epochs, params                        string
			val, test                             []float64
		)
		switch {
		case st.Teacher != nil:
			t := st.Teacher
			epochs, params, wall = strconv.Itoa(t.Epochs), strconv.Itoa(t.Params), t.WallSeconds
			val, test = metricValues(t.Val), metricValues(t.Test)
		case st.Calibration != nil:
			c := st.Calibration
			fitT = c.Temperature()
			val, test = metricValues(c.Val.After), metricValues(c.Test.After)
		case st.Student != nil:
			u := st.Student
			tau, kdw, cew, wall = u.Tau, u.KDWeight, u.CEWeight, u.WallSeconds
			epochs, params = strconv.Itoa(u.Epochs), strconv.Itoa(u.Params)
			if u.Tau == 0 { // scratch, or a loss without a temperature
				tau = nan
			}
			if u.Arm != config.ArmScratch {
				calT = u.CalibrationTemperature
				effT = effectiveTemp(u.EffectiveTemperature, u.Tau, u.CalibrationTemperature, u.Tau)
			} else {
				kdw = nan
			}
			val, test = metricValues(u.Val), metricValues(u.Test)
		}
		r = append(r, csvNum(tau), csvNum(kdw), csvNum(cew), epochs, params)
		for _, x := range []float64{fitT, calT, effT, wall} {
			r = append(r, csvNum(x))
		}
		for _, vs := range [][]float64{val, test} {
			if vs == nil {
				vs = make([]float64, len(metricNames))
				for i := range vs {
					vs[i] = nan
				}
			}
			for _, v := range vs {
				r = append(r, csvNum(v))
			}
		}
		rows = append(rows, r)
	}
	return table.CSV(rows)
}

// longHeader is the header of tables/<setting>-long.csv.
var longHeader = []string{"setting", "kind", "arm", "method", "size", "teacher_params", "seed", "key", "split", "metric", "value", "unit"}

// longCSV is the long-format companion of a setting's wide table: one row
// per finished step and metric (val and test splits) of everything the
// table is computed from — the teachers, their calibration by the KD
// calibrator (metrics after calibration, and the fitted temperature), the
// KD students of the setting (and their effective temperature) and the
// scratch students of its epochs. unit is frac, nats or 1 (dimensionless).
func (a *Analysis) longCSV(r *SettingResult) ([]byte, error) {
	s := a.Study
	rows := [][]string{longHeader}
	add := func(kind, arm, method, size string, seed int, key string, metrics ...[]string) {
		params := ""
		if p := s.Params(size); size != "" && p > 0 {
			params = strconv.Itoa(p)
		}
		for _, m := range metrics {
			rows = append(rows, append([]string{r.Name, kind, arm, method, size, params, strconv.Itoa(seed), key}, m...))
		}
	}
	splits := func(val, test metrics.Summary) [][]string {
		var out [][]string
		for _, sp := range []struct {
			name string
			m    metrics.Summary
		}{{"val", val}, {"test", test}} {
			for i, v := range metricValues(sp.m) {
				out = append(out, []string{sp.name, metricNames[i], csvNum(v), metricUnits[i]})
			}
		}
		return out
	}
	for _, size := range s.Sizes {
		for _, seed := range s.Seeds {
			if t := s.Teacher(size, seed); t != nil {
				add(runstore.KindTeacher, "", "", size, seed, runstore.TeacherKey(size, seed), splits(t.Val, t.Test)...)
			}
		}
	}
	for _, size := range s.Sizes {
		for _, seed := range s.Seeds {
			if c := s.Calibration(a.CalMethod, size, seed); c != nil {
				m := splits(c.Val.After, c.Test.After)
				if t := c.Temperature(); !math.IsNaN(t) {
					m = append(m, []string{"", "temperature", csvNum(t), "1"})
				}
				add(runstore.KindCalibration, "", a.CalMethod, size, seed, runstore.CalibrationKey(a.CalMethod, size, seed), m...)
			}
		}
	}
	for _, arm := range s.KDArms {
		for _, size := range s.Sizes {
			for _, seed := range s.Seeds {
				if u := s.Student(r.Name, arm, size, seed); u != nil {
					m := append(splits(u.Val, u.Test), []string{"", "effective_temperature",
						csvNum(effectiveTemp(u.EffectiveTemperature, u.Tau, u.CalibrationTemperature, r.Setting.Tau)), "1"})
					add(runstore.KindStudent, arm, "", size, seed, runstore.StudentKey(r.Name, arm, size, seed), m...)
				}
			}
		}
	}
	if s.Scratch {
		for _, seed := range s.Seeds {
			if u := s.ScratchStudent(r.Setting.Epochs, seed); u != nil {
				add(runstore.KindStudent, config.ArmScratch, "", "", seed, runstore.ScratchKey(r.Setting.Epochs, seed), splits(u.Val, u.Test)...)
			}
		}
	}
	return table.CSV(rows)
}
