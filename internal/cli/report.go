package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/report"
	"github.com/kdcal/kdcal/internal/runstore"
)

// ReportOptions are the inputs of `kdcal report`.
type ReportOptions struct {
	G      *Globals
	Out    string // --out: write the report here instead of <experiment>/report
	Verify bool   // --verify: check every used step's outputs by SHA-256, not only size
	JSON   bool   // --json: print a ReportDoc instead of the summary
}

// NewCmdReport builds `kdcal report`.
func NewCmdReport(g *Globals, runF func(*ReportOptions) error) *cobra.Command {
	opts := &ReportOptions{G: g}
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Write tables, statistics and figures from the experiment store",
		Long: `Reads the experiment store (no training) and writes <experiment>/report/:
README.md (the question, the generated answer, tables, figures and method),
tables/<setting>.{md,csv,tex}, tables/calibration.*, tables/stats.*, steps.csv
(every step with every metric), stats.json (every statistic with its 95% CI and
p-value) and figures/*.{png,svg,pdf} (report.formats).

The grid comes from the configuration: pass the --config the study was run with.
Steps that are missing, failed, still running, unreadable, damaged (an output file
missing or changed since the step finished; sizes are checked, SHA-256 too with
--verify) or stale (finished under another configuration) are listed in the README
and excluded from every statistic; the report is still written. The report appears
atomically.

The store is only read. --out DIR must be absent, empty, or a report kdcal wrote
before (it is replaced); anything else — a directory of other files, a regular
file, the experiment directory or one of its parents — is refused (exit 2).`,
		Example: `  kdcal report --config configs/quick.yaml
  kdcal report --config configs/quick.yaml --out /tmp/quick-report`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return reportRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Out, "out", "o", "", "write the report to this directory instead of <experiment>/report (the store is only read); it must be new, empty or an earlier report")
	cmd.Flags().BoolVar(&opts.Verify, "verify", false, "check the SHA-256 of every step's outputs (default: that each exists with its size)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print what was written and the conclusion's numbers as JSON (docs/json.md); the summary goes to stderr")
	return cmd
}

// reportRun loads the configuration, reads the store and writes the report.
func reportRun(ctx context.Context, opts *ReportOptions) error {
	g := opts.G
	cfg, err := g.LoadConfig()
	if err != nil {
		return err
	}
	root := g.ExperimentDir(cfg)
	if _, err := runstore.CheckStoreDir(root); err != nil {
		return err
	}
	store := &runstore.Store{Root: root, Verify: opts.Verify}
	yml, err := ResolvedYAML(cfg)
	if err != nil {
		return err
	}
	ro := report.Options{Log: g.Log, ConfigYAML: yml}
	if opts.Out != "" {
		if ro.Out, ro.Key, err = runstore.OpenOutput(opts.Out, runstore.KindReport, root); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	res, err := report.Write(ctx, cfg, store, ro)
	if err != nil {
		if opts.Out == "" && (errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS)) {
			return fmt.Errorf("%w; the experiment directory is read-only: write the report elsewhere with --out DIR", err)
		}
		return err
	}
	if opts.JSON {
		fmt.Fprint(g.Err, res.Summary())
		printStoreConfigs(g.Err, store, cfg)
		return printJSON(g.Out, reportDoc(res))
	}
	fmt.Fprint(g.Out, res.Summary())
	printStoreConfigs(g.Out, store, cfg)
	return nil
}

// reportDoc is the --json document of a written report: its files, the
// unused steps, and per setting the size claim's numbers from stats.json.
func reportDoc(res *report.Result) ReportDoc {
	d := ReportDoc{Dir: res.Dir, Readme: filepath.Join(res.Dir, "README.md"), Hash: res.Hash, StepsUsed: res.Used,
		StepsExpected: res.Expected, Unused: []UnusedStepDoc{}, Files: res.Files, Headline: res.Headline,
		Settings: []ReportSettingDoc{}, StatsFile: filepath.Join(res.Dir, "stats.json")}
	for _, st := range res.Unused {
		d.Unused = append(d.Unused, UnusedStepDoc{Key: st.Key, Status: st.Status, Reason: st.Reason})
	}
	var stats struct {
		Settings []struct {
			Setting   string               `json:"setting"`
			SizeVsAcc map[string]statsCorr `json:"teacher_params_vs_student_accuracy"`
			RhoDiff   *statsCorr           `json:"rho_calibrated_minus_raw"`
			Claim     map[string]string    `json:"size_claim"`
		} `json:"settings"`
	}
	if err := atomicfile.ReadJSON(d.StatsFile, &stats); err != nil {
		return d
	}
	for _, s := range stats.Settings {
		sd := ReportSettingDoc{Setting: s.Setting, SizeClaim: s.Claim, SizeVsAcc: map[string]CorrDigest{}}
		for arm, c := range s.SizeVsAcc {
			sd.SizeVsAcc[arm] = c.digest()
		}
		if s.RhoDiff != nil {
			dg := s.RhoDiff.digest()
			sd.RhoDiff = &dg
		}
		d.Settings = append(d.Settings, sd)
	}
	return d
}

// statsCorr reads a correlation (rho, n_units) or a difference (mean,
// n_seeds) of stats.json.
type statsCorr struct {
	Rho    *float64    `json:"rho"`
	Mean   *float64    `json:"mean"`
	CI     [2]*float64 `json:"ci95"`
	P      *float64    `json:"p_value"`
	NUnits int         `json:"n_units"`
	NSeeds int         `json:"n_seeds"`
	Note   string      `json:"note"`
}

func (c statsCorr) digest() CorrDigest {
	d := CorrDigest{Value: c.Rho, CI95: c.CI, P: c.P, N: c.NUnits, Note: c.Note}
	if c.Rho == nil && c.Mean != nil {
		d.Value = c.Mean
	}
	if c.NUnits == 0 {
		d.N = c.NSeeds
	}
	return d
}

// printStoreConfigs says, when the store was written with more than one
// configuration, which ones it holds and which this report used.
func printStoreConfigs(w io.Writer, store *runstore.Store, cfg *config.Config) {
	entries, err := store.Configs()
	if err != nil || len(entries) < 2 {
		return
	}
	cur := runstore.Hash(cfg)
	fmt.Fprintf(w, "the store holds %d configurations (%s/); this report used %s:\n", len(entries),
		filepath.Join(store.Root, runstore.ConfigsDir), cur)
	for _, c := range entries {
		mark := ""
		if c.Hash == cur {
			mark = "  ← this report"
		}
		fmt.Fprintf(w, "  %-16s first used %s%s\n", c.Hash, c.FirstUsed.Format(time.RFC3339), mark)
	}
}
