package pipeline

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/kdcal/kdcal/internal/calibrate"
	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/runstore"
)

// Fit runs one calibration method — for the calibration stage and for
// `kdcal calibrate --val-logits` alike — and warns when the fit did not
// converge, naming the input (a teacher's step key or the --val-logits
// file), the method, the iterations and the final gradient norm. A
// cancelled ctx (Ctrl-C, SIGTERM) stops the fit within one pass over the data.
func Fit(ctx context.Context, log *slog.Logger, cfg *config.Config, method string, val calibrate.Split, test *calibrate.Split, where string) (calibrate.Calibrator, runstore.CalibrationResult, error) {
	cal, res, err := calibrate.Run(ctx, method, calibrate.OptionsFrom(cfg.Calibration), val, test, cfg.Calibration.Bins)
	if err != nil {
		return nil, res, fmt.Errorf("%s: %s: %w", where, method, err)
	}
	if conv, _ := res.Fit["converged"].(bool); !conv {
		args := []any{"on", where, "method", method, "iterations", res.Fit["iterations"], "gradient_max_norm", res.Fit["gradient"]}
		for _, k := range []string{"status", "note"} {
			if v, _ := res.Fit[k].(string); v != "" {
				args = append(args, k, v)
			}
		}
		log.Warn("calibration fit did not converge; its parameters are the last iterate", args...)
	}
	return cal, res, nil
}

// ParamSummary describes a fitted calibrator's parameters in a few words
// ("T=1.1342", "15 bins"), for log lines and the calibrate tables.
func ParamSummary(res runstore.CalibrationResult) string {
	p := res.Params
	switch res.Method {
	case "temp":
		return fmt.Sprintf("T=%.4f", p["temperature"])
	case "vector":
		return "scale " + rangeOf(p["scale"]) + ", bias " + rangeOf(p["bias"])
	case "matrix":
		return fmt.Sprintf("%v×%v weights, bias %s, l2 %v", p["classes"], p["classes"], rangeOf(p["bias"]), p["l2"])
	case "hist":
		return fmt.Sprintf("%v bins", p["bins"])
	case "isotonic":
		if x, ok := p["x"].([]any); ok {
			return fmt.Sprintf("%d breakpoints", len(x))
		}
	}
	return "-"
}

// rangeOf formats the range of a JSON number array as "[lo, hi]".
func rangeOf(v any) string {
	xs, _ := v.([]any)
	var lo, hi float64
	for i, x := range xs {
		f, _ := x.(float64)
		if i == 0 || f < lo {
			lo = f
		}
		if i == 0 || f > hi {
			hi = f
		}
	}
	return fmt.Sprintf("[%.3g, %.3g]", lo, hi)
}
