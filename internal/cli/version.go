package cli

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/kdcal/kdcal/internal/version"
)

// versionText is what `kdcal version`, `kdcal --version` and `kdcal -v`
// print.
func versionText() string {
	v := version.Get()
	return fmt.Sprintf("kdcal %s (%s, %s/%s, %s)\nrevision %s (%s)\n",
		v.Version, v.GoVersion, v.OS, v.Arch, version.BLAS(), v.Revision, v.RevisionSource)
}

// blasCommands print the BLAS backend and GEMM kernel on stderr at start:
// the commands that train or calibrate, so that a slow build shows.
var blasCommands = []string{"run", "train-teachers", "calibrate", "distill"}

func announceBLAS(g *Globals, cmd *cobra.Command) {
	if cmd.Parent() != cmd.Root() || !slices.Contains(blasCommands, cmd.Name()) {
		return
	}
	fmt.Fprintln(g.Err, "kdcal: "+version.BLAS())
	if version.GEMM == "gonum" {
		fmt.Fprintln(g.Err, "kdcal: gonum's GEMM trains 2–5× slower than PyTorch (this CPU or build has no AVX2+FMA kernel); "+
			"`make build` links OpenBLAS when libopenblas-dev is installed")
	}
}

// NewCmdVersion builds `kdcal version`.
func NewCmdVersion(g *Globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print kdcal's version, Go toolchain, BLAS backend, GEMM kernel and git revision",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if asJSON {
				b, _ := json.MarshalIndent(version.Get(), "", "  ")
				fmt.Fprintln(g.Out, string(b))
				return nil
			}
			fmt.Fprint(g.Out, versionText())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}
