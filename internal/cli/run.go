package cli

import (
	"github.com/spf13/cobra"
)

// RunOptions are the inputs of `kdcal run`.
type RunOptions struct {
	G        *Globals
	DryRun   bool
	Executor string
	Workers  int
}

// NewCmdRun builds `kdcal run`.
func NewCmdRun(g *Globals, runF func(*RunOptions) error) *cobra.Command {
	opts := &RunOptions{G: g}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the whole study: teachers, calibration, students, report (resumable, parallel)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return &NotYetError{What: "run (the study planner, issue #7)"}
		},
	}
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print the plan and what is already done, run nothing")
	cmd.Flags().StringVar(&opts.Executor, "executor", "", "local or slurm (default: run.executor)")
	cmd.Flags().IntVarP(&opts.Workers, "workers", "j", 0, "parallel steps (default: run.workers; 0 = cores)")
	return cmd
}
