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
	if f := res.Fit; !f.Converged {
		args := []any{"on", where, "method", method, "iterations", f.Iterations, "gradient_max_norm", f.Gradient}
		if f.Status != "" {
			args = append(args, "status", f.Status)
		}
		if f.Note != "" {
			args = append(args, "note", f.Note)
		}
		log.Warn("calibration fit did not converge; its parameters are the last iterate", args...)
	}
	return cal, res, nil
}

// ParamSummary describes a fitted calibrator's parameters in a few words
// ("T=1.1342", "15 bins"), for log lines and the calibrate tables: the
// calibrator's own Describe().Summary, "-" when its parameters do not decode.
func ParamSummary(res runstore.CalibrationResult) string {
	d, err := calibrate.DescribeResult(&res)
	if err != nil {
		return "-"
	}
	return d.Summary
}
