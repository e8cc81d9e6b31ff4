package cli

import (
	"github.com/spf13/cobra"
)

// ReportOptions are the inputs of `kdcal report`.
type ReportOptions struct {
	G *Globals
}

// NewCmdReport builds `kdcal report`.
func NewCmdReport(g *Globals, runF func(*ReportOptions) error) *cobra.Command {
	opts := &ReportOptions{G: g}
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Write tables, statistics and figures from the experiment store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return &NotYetError{What: "report (issue #6)"}
		},
	}
	return cmd
}
