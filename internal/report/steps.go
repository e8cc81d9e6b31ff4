package report

import (
	"math"
	"strconv"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/metrics"
	"github.com/kdcal/kdcal/internal/report/table"
)

// metricNames are the metrics.Summary fields of steps.csv, in column order.
var metricNames = []string{"accuracy", "nll", "brier", "ece", "mce", "ece_em", "cw_ece"}

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
		for _, m := range metricNames {
			head = append(head, split+"_"+m)
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
			fitT = temperatureOf(c.Params)
			val, test = metricValues(c.Val.After), metricValues(c.Test.After)
		case st.Student != nil:
			u := st.Student
			tau, kdw, cew, wall = u.Tau, u.KDWeight, u.CEWeight, u.WallSeconds
			epochs, params = strconv.Itoa(u.Epochs), strconv.Itoa(u.Params)
			if u.Arm != config.ArmScratch {
				calT = u.CalibrationTemperature
				effT = effectiveTemp(u.EffectiveTemperature, u.Tau, u.CalibrationTemperature, u.Tau)
			} else {
				tau, kdw = nan, nan
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
