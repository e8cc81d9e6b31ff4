package cli

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/report"
	"github.com/kdcal/kdcal/internal/runstore"
)

// ReportOptions are the inputs of `kdcal report`.
type ReportOptions struct {
	G   *Globals
	Out string // --out: write the report here instead of <experiment>/report
}

func init() { registerStep(plan.StageReport, reportStep) }

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
p-value) and figures/*.{png,svg} (report.formats).

The grid comes from the configuration: pass the --config the study was run with.
Steps that are missing, failed, still running, unreadable or stale (finished
under another configuration) are listed in the README and excluded from every
statistic; the report is still written. The report appears atomically.`,
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
	cmd.Flags().StringVarP(&opts.Out, "out", "o", "", "write the report to this directory instead of <experiment>/report (the store is only read)")
	return cmd
}

// reportRun loads the configuration, reads the store and writes the report.
func reportRun(ctx context.Context, opts *ReportOptions) error {
	g := opts.G
	cfg, err := g.LoadConfig()
	if err != nil {
		return err
	}
	store := &runstore.Store{Root: g.ExperimentDir(cfg)}
	yml, err := ResolvedYAML(cfg)
	if err != nil {
		return err
	}
	ro := report.Options{Log: g.Log, ConfigYAML: yml}
	if opts.Out != "" {
		out, err := filepath.Abs(opts.Out)
		if err != nil {
			return usageErrorf("--out %q: %v", opts.Out, err)
		}
		if ro.Out, err = runstore.Open(filepath.Dir(out)); err != nil {
			return err
		}
		ro.Key = filepath.Base(out)
	}
	res, err := report.Write(ctx, cfg, store, ro)
	if err != nil {
		return err
	}
	fmt.Fprint(g.Out, res.Summary())
	return nil
}

// reportStep is the report stage of `kdcal run` (and `kdcal step report`):
// every other step is done by then, so the report is complete and its hash
// is the plan's.
func reportStep(ctx context.Context, env *StepEnv, s plan.Step) error {
	yml, err := ResolvedYAML(env.Cfg)
	if err != nil {
		return err
	}
	res, err := report.Write(ctx, env.Cfg, env.Store, report.Options{Log: env.G.Log, ConfigYAML: yml})
	if err != nil {
		return err
	}
	if res.Hash != s.Hash {
		env.G.Log.Warn("report written from a partial study; `kdcal run` will write it again", "unused", len(res.Unused))
	}
	env.G.Log.Info("report", "readme", filepath.Join(res.Dir, "README.md"))
	return nil
}
