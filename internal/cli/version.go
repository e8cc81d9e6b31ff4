package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kdcal/kdcal/internal/version"
)

func versionString() string {
	v := version.Get()
	s := fmt.Sprintf("%s (%s, %s/%s, BLAS backend: %s)", v.Version, v.GoVersion, v.OS, v.Arch, v.Backend)
	if v.Revision != "" {
		s += " revision " + v.Revision
	}
	return s
}

// NewCmdVersion builds `kdcal version`.
func NewCmdVersion(g *Globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print kdcal's version, Go toolchain and BLAS backend",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if asJSON {
				b, _ := json.MarshalIndent(version.Get(), "", "  ")
				fmt.Fprintln(g.Out, string(b))
				return nil
			}
			fmt.Fprintln(g.Out, "kdcal", versionString())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}
