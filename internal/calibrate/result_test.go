package calibrate_test

import (
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/kdcal/kdcal/internal/calibrate"
	"github.com/kdcal/kdcal/internal/calibrate/calibratetest"
	"github.com/kdcal/kdcal/internal/metrics"
)

// Run produces the CalibrationResult printed by `kdcal calibrate --json`:
// the documented keys, fractions, and before = raw metrics.
func TestRunResult(t *testing.T) {
	val := calibratetest.Data(21, 3000, 6, 2.5)
	test := calibratetest.Data(22, 2000, 6, 2.5)
	cal, res, err := calibrate.Run(context.Background(), "temp", calibrate.Options{}, val, &test, 15)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["method"] != "temp" || m["bins"] != 15.0 {
		t.Errorf("method, bins = %v, %v", m["method"], m["bins"])
	}
	if temp := m["params"].(map[string]any)["temperature"]; temp != cal.(*calibrate.Temp).Temperature() {
		t.Errorf("params.temperature = %v", temp)
	}
	for _, split := range []string{"val", "test"} {
		s := m[split].(map[string]any)
		for _, when := range []string{"before", "after"} {
			sum := s[when].(map[string]any)
			for _, key := range []string{"accuracy", "nll", "brier", "ece", "mce", "ece_em", "cw_ece"} {
				v, ok := sum[key].(float64)
				if !ok || v < 0 || (key != "nll" && v > 2) {
					t.Errorf("%s.%s.%s = %v", split, when, key, sum[key])
				}
			}
		}
		if bins := s["reliability_after"].([]any); len(bins) != 15 {
			t.Errorf("%s: %d reliability bins", split, len(bins))
		}
	}
	if want := metrics.Evaluate(test.Logits, test.Labels, 6, 15); res.Test.Before != want {
		t.Errorf("test before = %+v, want the raw metrics %+v", res.Test.Before, want)
	}
	if res.Test.After.Accuracy != res.Test.Before.Accuracy {
		t.Error("temperature scaling changed test accuracy")
	}
	if !(res.Test.After.ECE < res.Test.Before.ECE) || math.Abs(res.Val.After.NLL-res.Fit.NLLAfter) > 1e-12 {
		t.Errorf("test ECE %v → %v; val NLL %v, fit record %v",
			res.Test.Before.ECE, res.Test.After.ECE, res.Val.After.NLL, res.Fit.NLLAfter)
	}
	if _, _, err := calibrate.Run(context.Background(), "platt", calibrate.Options{}, val, nil, 15); err == nil {
		t.Error("Run accepted an unknown method")
	}
}
