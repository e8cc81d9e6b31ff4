package cli

import (
	"github.com/spf13/cobra"
)

// CalibrateOptions are the inputs of `kdcal calibrate`.
type CalibrateOptions struct {
	G       *Globals
	Methods []string
	Teacher string
	Seeds   []int
	// Anyone's logits mode.
	ValLogits, ValLabels   string
	TestLogits, TestLabels string
	JSON                   bool
}

// NewCmdCalibrate builds `kdcal calibrate`.
func NewCmdCalibrate(g *Globals, runF func(*CalibrateOptions) error) *cobra.Command {
	opts := &CalibrateOptions{G: g}
	cmd := &cobra.Command{
		Use:   "calibrate",
		Short: "Fit post-hoc calibrators on validation logits (of the experiment's teachers or any .npy)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return &NotYetError{What: "calibrate (calibration and metrics, issue #4)"}
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&opts.Methods, "method", nil, "calibration methods, e.g. temp or temp,vector (default: calibration.methods)")
	f.StringVar(&opts.Teacher, "teacher", "all", "teacher size to calibrate, or all")
	f.IntSliceVar(&opts.Seeds, "seeds", nil, "seeds (default: seeds)")
	f.StringVar(&opts.ValLogits, "val-logits", "", "validation logits .npy (N×C float32/float64): calibrate anyone's logits")
	f.StringVar(&opts.ValLabels, "val-labels", "", "validation labels .npy (N int32/int64)")
	f.StringVar(&opts.TestLogits, "test-logits", "", "test logits .npy to evaluate the fitted calibrator on")
	f.StringVar(&opts.TestLabels, "test-labels", "", "test labels .npy")
	f.BoolVar(&opts.JSON, "json", false, "print one JSON object instead of a table")
	return cmd
}
