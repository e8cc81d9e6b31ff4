package cli

import (
	"github.com/spf13/cobra"
)

// DistillOptions are the inputs of `kdcal distill`.
type DistillOptions struct {
	G       *Globals
	Teacher string   // size or all
	Arms    []string // raw, calibrated, scratch or all
	Seeds   []int
}

// NewCmdDistill builds `kdcal distill`.
func NewCmdDistill(g *Globals, runF func(*DistillOptions) error) *cobra.Command {
	opts := &DistillOptions{G: g}
	cmd := &cobra.Command{
		Use:   "distill",
		Short: "Distill each teacher (raw and calibrated) into the student, next to a scratch baseline",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return &NotYetError{What: "distill (distillation, issue #5)"}
		},
	}
	cmd.Flags().StringVar(&opts.Teacher, "teacher", "all", "teacher size to distill from, or all")
	cmd.Flags().StringSliceVar(&opts.Arms, "arm", []string{"all"}, "arms: raw, calibrated, scratch or all")
	cmd.Flags().IntSliceVar(&opts.Seeds, "seeds", nil, "seeds (default: seeds)")
	return cmd
}
