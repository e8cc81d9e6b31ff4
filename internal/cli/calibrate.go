package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"codeberg.org/sbinet/npyio"
	"github.com/spf13/cobra"
	"gonum.org/v1/gonum/mat"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/calibrate"
	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/executor"
	"github.com/kdcal/kdcal/internal/metrics"
	"github.com/kdcal/kdcal/internal/pipeline"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/runstore"
)

// CalibrateOptions are the inputs of `kdcal calibrate`.
type CalibrateOptions struct {
	G       *Globals
	Methods []string
	Teacher string
	Seeds   []int
	Force   bool // refit finished steps
	Bins    int  // bins of the binned metrics (0: calibration.bins)
	// Anyone's logits mode.
	ValLogits, ValLabels   string
	TestLogits, TestLabels string
	OutProbs               string // write the calibrated probabilities of the test (else val) split here
	JSON                   bool
	Workers                int    // parallel steps in experiment mode (-1: run.workers)
	Executor               string // local or slurm ("": run.executor)
}

// NewCmdCalibrate builds `kdcal calibrate`.
func NewCmdCalibrate(g *Globals, runF func(*CalibrateOptions) error) *cobra.Command {
	opts := &CalibrateOptions{G: g}
	cmd := &cobra.Command{
		Use:   "calibrate",
		Short: "Fit post-hoc calibrators on validation logits (of the experiment's teachers or any .npy)",
		Long: `Fit post-hoc calibrators on validation logits and report every metric before and after
on the validation and test splits. Methods (` + strings.Join(calibrate.Methods(), ", ") + `):
none (identity), temp (temperature scaling: T minimises validation NLL, safeguarded Newton on
log T to |Δ log T| < 1e-10), vector scaling (Newton's method, exact Hessian) and matrix scaling
(L-BFGS, calibration.matrix_l2 on the off-diagonal and bias), both from the temperature fit and
stopped as scipy's L-BFGS-B (max |gradient| ≤ 1e-6 or relative decrease ≤ 1e-12), hist
(histogram binning of the top-label confidence, calibration.hist_bins bins) and isotonic
(pool-adjacent-violators on the top-label confidence).

Metrics are fractions: accuracy; nll (nats); brier (Σ_k (p_k − 1[y=k])², mean over examples);
ece and mce (top-label, --bins equal-width bins (lo, hi], the first also takes 0, as Guo et
al. 2017: Σ_b (n_b/N)|acc_b − conf_b| and max_b |acc_b − conf_b|); rmsce (RMS calibration
error, the same bins: sqrt(Σ_b (n_b/N)(acc_b − conf_b)²)); ece_debiased_l2 (the debiased ℓ2
calibration error of Kumar et al. 2019, the same bins: sqrt(max(Σ_b (n_b/N)[(acc_b − conf_b)²
− acc_b(1 − acc_b)/(n_b − 1)], 0)), bins with fewer than 2 examples count 0); ece_em
(equal-mass bins); cw_ece (classwise, equal-width bins). For hist and isotonic the top-label
confidence binned is the calibrated confidence itself, bit for bit.

Experiment mode (default): for each method × teacher size × seed, read the teacher's
val/test logits from teachers/<size>/seed-<n>/ and write calibration/<method>/<size>/seed-<n>/
with params.json (the fitted calibrator), metrics.json (before/after metrics and
reliability bins) and reliability_{val,test}_{before,after}.csv (lo,hi,count,accuracy,
confidence). Finished steps are skipped unless --force. Prints a table (--json: one JSON
document of every step's outcome, key metrics and metrics.json; docs/json.md).
The steps run as kdcal run's do: in this process with --workers 1 or one step to fit,
otherwise one kdcal process per step, --workers at a time (default run.workers; 0 = one
per core), each logging to <experiment>/logs/<step>.log; with --executor slurm as job arrays.

Anyone's logits (--val-logits): calibrate logits from any framework. Logits are N×C
float32/float64 .npy, labels N int32/int64 .npy (numpy.save). Fits on the validation pair,
evaluates on it and on the optional test pair, prints a table or, with --json, one JSON
object {method, params, fit, bins, val: {before, after, reliability_before,
reliability_after}, test: {...}}; with several methods, a JSON array of such objects in
--method order. Nothing is written to disk unless --out-probs FILE.npy is given (with one
--method): it receives the calibrated probabilities of the test pair (of the validation pair
when there is no test pair), float64 N×C in row order, readable with numpy.load. The file is
written atomically and an existing file is only replaced with --force.

A fit that stops without meeting its convergence criterion is reported on stderr with the
method, the input, the iterations and the gradient norm. Ctrl-C or SIGTERM stops a fit within
about a second (exit 130) and publishes nothing of the interrupted step.`,
		Example: `  kdcal calibrate --config configs/quick.yaml
  kdcal calibrate --method temp,vector --teacher large --seeds 0
  kdcal calibrate --method temp --val-logits val.npy --val-labels val_y.npy \
      --test-logits test.npy --test-labels test_y.npy --json
  kdcal calibrate --method isotonic --val-logits val.npy --val-labels val_y.npy \
      --test-logits test.npy --test-labels test_y.npy --out-probs test_probs.npy`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return calibrateRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&opts.Methods, "method", nil, "calibration methods, e.g. temp or temp,vector: "+strings.Join(calibrate.Methods(), ", ")+" (default: calibration.methods)")
	f.StringVar(&opts.Teacher, "teacher", "all", "teacher size(s) to calibrate, e.g. large or small,large, or all (teacher.sizes)")
	f.IntSliceVar(&opts.Seeds, "seeds", nil, "seeds (default: seeds)")
	f.BoolVar(&opts.Force, "force", false, "refit calibrations that are already done; with --out-probs, replace an existing file")
	f.IntVar(&opts.Bins, "bins", 0, "equal-width bins of ece, mce, rmsce, ece_debiased_l2, cw_ece and reliability diagrams (default: calibration.bins)")
	f.StringVar(&opts.ValLogits, "val-logits", "", "validation logits .npy (N×C float32/float64): calibrate anyone's logits")
	f.StringVar(&opts.ValLabels, "val-labels", "", "validation labels .npy (N int32/int64)")
	f.StringVar(&opts.TestLogits, "test-logits", "", "test logits .npy to evaluate the fitted calibrator on")
	f.StringVar(&opts.TestLabels, "test-labels", "", "test labels .npy")
	f.StringVar(&opts.OutProbs, "out-probs", "", "write the calibrated probabilities (float64 N×C .npy) of the test split, or of the validation split without --test-logits, to this file (needs --val-logits and one --method)")
	f.BoolVar(&opts.JSON, "json", false, "print JSON instead of a table")
	addExecFlags(cmd, &opts.Workers, &opts.Executor)
	return cmd
}

// anyones reports whether the options select the anyone's-logits mode.
func (o *CalibrateOptions) anyones() bool {
	return o.ValLogits != "" || o.ValLabels != "" || o.TestLogits != "" || o.TestLabels != ""
}

// verifyCalibrateOptions checks the flags that need no configuration.
func verifyCalibrateOptions(o *CalibrateOptions) error {
	for _, m := range o.Methods {
		if !slices.Contains(calibrate.Methods(), m) {
			return usageErrorf("--method %q: use one of %s", m, strings.Join(calibrate.Methods(), ", "))
		}
	}
	if o.Bins < 0 {
		return usageErrorf("--bins %d: use a positive number of bins (e.g. 15)", o.Bins)
	}
	if !o.anyones() {
		if o.OutProbs != "" {
			return usageErrorf("--out-probs %s writes the probabilities of --val-logits/--test-logits; in experiment mode each step's results are in calibration/<method>/<size>/seed-<n>/", o.OutProbs)
		}
		return nil
	}
	switch {
	case o.ValLogits == "" || o.ValLabels == "":
		return usageErrorf("calibrating .npy logits needs both --val-logits and --val-labels")
	case (o.TestLogits == "") != (o.TestLabels == ""):
		return usageErrorf("--test-logits and --test-labels go together: give both or neither")
	case o.Teacher != "all" || o.Seeds != nil:
		return usageErrorf("--teacher and --seeds select the experiment's teachers; they cannot be combined with --val-logits")
	case o.Force && o.OutProbs == "":
		return usageErrorf("--force refits the experiment's steps (or, with --out-probs, replaces the file); with --val-logits alone nothing is written")
	case o.OutProbs != "" && len(o.Methods) != 1:
		return usageErrorf("--out-probs %s holds one method's probabilities: give exactly one --method", o.OutProbs)
	}
	return nil
}

func calibrateRun(ctx context.Context, opts *CalibrateOptions) error {
	if err := verifyCalibrateOptions(opts); err != nil {
		return err
	}
	var ov []Override
	if opts.Bins > 0 {
		ov = append(ov, Override{Key: "calibration.bins", Value: strconv.Itoa(opts.Bins), Flag: "bins"})
	}
	if opts.anyones() {
		cfg, err := opts.G.LoadConfig(ov...)
		if err != nil {
			return err
		}
		return calibrateLogits(ctx, opts, cfg, methodsOf(opts, cfg))
	}
	if len(opts.Seeds) > 0 {
		ov = append(ov, Override{Key: "seeds", Value: intList(opts.Seeds), Flag: "seeds"})
	}
	// --teacher becomes teacher.sizes, so that the plan holds the teachers' steps.
	cfg, err := opts.G.LoadConfig(ov...)
	if err != nil {
		return err
	}
	sizes, err := teacherSizes(opts.Teacher, cfg)
	if err != nil {
		return err
	}
	if opts.Teacher != "all" {
		ov = append(ov, Override{Key: "teacher.sizes", Value: stringList(sizes), Flag: "teacher"})
	}
	// A --method outside calibration.methods joins it, so that the plan
	// holds its steps (a step's hash does not depend on the other methods).
	if all := slices.Clone(cfg.Calibration.Methods); len(opts.Methods) > 0 {
		for _, m := range methodsOf(opts, cfg) {
			if !slices.Contains(all, m) {
				all = append(all, m)
			}
		}
		if len(all) > len(cfg.Calibration.Methods) {
			ov = append(ov, Override{Key: "calibration.methods", Value: stringList(all), Flag: "method"})
		}
	}
	env, err := opts.G.NewEnv(append(ov, execOverrides(opts.Workers, opts.Executor)...)...)
	if err != nil {
		return err
	}
	return calibrateExperiment(ctx, opts, env, methodsOf(opts, env.Cfg))
}

// methodsOf returns --method, or calibration.methods, without duplicates.
func methodsOf(opts *CalibrateOptions, cfg *config.Config) []string {
	ms := opts.Methods
	if len(ms) == 0 {
		ms = cfg.Calibration.Methods
	}
	var out []string
	for _, m := range ms {
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// teacherSizes resolves --teacher: all → teacher.sizes; otherwise a comma
// list of sizes defined in the teacher family's size table.
func teacherSizes(flag string, cfg *config.Config) ([]string, error) {
	if flag == "all" {
		return cfg.Teacher.Sizes, nil
	}
	var sizes []string
	for _, s := range strings.Split(flag, ",") {
		s = strings.TrimSpace(s)
		if cfg.Teacher.Source == config.SourceExternal && !slices.Contains(cfg.Teacher.Sizes, s) {
			return nil, usageErrorf("--teacher %q: use all or one of teacher.sizes (external teachers): %s", s, strings.Join(cfg.Teacher.Sizes, ", "))
		}
		if _, ok := cfg.Teacher.Spec(s); !ok && cfg.Teacher.Source != config.SourceExternal {
			return nil, usageErrorf("--teacher %q: use all or one of the defined %s sizes: %s",
				s, cfg.Teacher.Family, strings.Join(config.SortedNames(cfg.Teacher.Table()), ", "))
		}
		if !slices.Contains(sizes, s) {
			sizes = append(sizes, s)
		}
	}
	return sizes, nil
}

func calibrateLogits(ctx context.Context, opts *CalibrateOptions, cfg *config.Config, methods []string) error {
	if opts.OutProbs != "" {
		if err := checkOutFile(opts.OutProbs, opts.Force); err != nil {
			return err // before any work: a fit can take minutes
		}
	}
	val, test, err := calibrate.ReadSplits(opts.ValLogits, opts.ValLabels, opts.TestLogits, opts.TestLabels)
	if err != nil {
		return err
	}
	var results []runstore.CalibrationResult
	for _, m := range methods {
		if err := ctx.Err(); err != nil {
			return err
		}
		cal, res, err := pipeline.Fit(ctx, opts.G.Log, cfg, m, val, test, opts.ValLogits)
		if err != nil {
			return err
		}
		results = append(results, res)
		if opts.OutProbs != "" {
			if err := writeProbs(opts, cal, val, test); err != nil {
				return err
			}
		}
	}
	if opts.JSON {
		if len(results) == 1 {
			return printJSON(opts.G.Out, results[0])
		}
		return printJSON(opts.G.Out, results)
	}
	for i, res := range results {
		if i > 0 {
			fmt.Fprintln(opts.G.Out)
		}
		printResultTable(opts.G.Out, res)
	}
	return nil
}

// checkOutFile refuses an output path that exists (unless force) or is a
// directory, naming it.
func checkOutFile(path string, force bool) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("--out-probs %s: %w", path, err)
	case fi.IsDir():
		return usageErrorf("--out-probs %s is a directory: give a file name, e.g. %s", path, filepath.Join(path, "probs.npy"))
	case !force:
		return usageErrorf("--out-probs %s already exists: use --force to replace it, or choose another name", path)
	}
	return nil
}

// writeProbs writes the calibrated probabilities of the test split (the
// validation split without one) to opts.OutProbs as a float64 N×C .npy.
func writeProbs(opts *CalibrateOptions, cal calibrate.Calibrator, val calibrate.Split, test *calibrate.Split) error {
	s, split, from := val, "validation", opts.ValLogits
	if test != nil {
		s, split, from = *test, "test", opts.TestLogits
	}
	n := len(s.Labels)
	var b bytes.Buffer
	if err := npyio.Write(&b, mat.NewDense(n, s.C, cal.Probs(s.Logits, s.C))); err != nil {
		return fmt.Errorf("--out-probs %s: encode: %w", opts.OutProbs, err)
	}
	if err := writeNew(opts.OutProbs, b.Bytes(), opts.Force); err != nil {
		return err
	}
	opts.G.Log.Info("wrote calibrated probabilities", "file", opts.OutProbs, "method", cal.Method(),
		"split", split, "of", from, "shape", fmt.Sprintf("%d×%d", n, s.C), "dtype", "float64")
	return nil
}

// writeNew writes data to path atomically (a complete file or none). Unless
// replace, it never overwrites: the temporary file is hard-linked to path,
// which fails if path appeared since checkOutFile.
func writeNew(path string, data []byte, replace bool) error {
	if replace {
		return atomicfile.Write(path, data)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--out-probs %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("--out-probs %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Link(tmp.Name(), path)
	}
	switch {
	case errors.Is(err, fs.ErrExist):
		return usageErrorf("--out-probs %s already exists (created while kdcal was fitting): use --force to replace it", path)
	case err != nil:
		return fmt.Errorf("--out-probs %s: %w", path, err)
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	b, err := pipeline.IndentJSON(v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// printResultTable prints one method's metrics before and after, per split.
func printResultTable(w io.Writer, res runstore.CalibrationResult) {
	fmt.Fprintf(w, "method %s: %s\n", res.Method, pipeline.ParamSummary(res))
	fmt.Fprintf(w, "fit: %s\n", fitSummary(res))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "metric\tval before\tval after\t")
	if res.Test != nil {
		fmt.Fprint(tw, "test before\ttest after\t")
	}
	fmt.Fprintln(tw)
	for _, m := range summaryFields {
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t", m.name, m.get(res.Val.Before), m.get(res.Val.After))
		if res.Test != nil {
			fmt.Fprintf(tw, "%.4f\t%.4f\t", m.get(res.Test.Before), m.get(res.Test.After))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	n := fmt.Sprintf("val N=%d", res.Val.Before.N)
	if res.Test != nil {
		n += fmt.Sprintf(", test N=%d", res.Test.Before.N)
	}
	fmt.Fprintf(w, "(%s; ece/mce/rmsce/ece_debiased_l2/cw_ece: %d equal-width bins, ece_em: %d equal-mass bins; fractions, nll in nats)\n",
		n, res.Bins, res.Bins)
}

var summaryFields = []struct {
	name string
	get  func(metrics.Summary) float64
}{
	{"accuracy", func(s metrics.Summary) float64 { return s.Accuracy }},
	{"nll", func(s metrics.Summary) float64 { return s.NLL }},
	{"brier", func(s metrics.Summary) float64 { return s.Brier }},
	{"ece", func(s metrics.Summary) float64 { return s.ECE }},
	{"mce", func(s metrics.Summary) float64 { return s.MCE }},
	{"rmsce", func(s metrics.Summary) float64 { return s.RMSCE }},
	{"ece_debiased_l2", func(s metrics.Summary) float64 { return s.ECEDebiasedL2 }},
	{"ece_em", func(s metrics.Summary) float64 { return s.ECEEM }},
	{"cw_ece", func(s metrics.Summary) float64 { return s.CWECE }},
}

// summaryField returns the getter of the named summaryFields entry.
func summaryField(name string) func(metrics.Summary) float64 {
	for _, f := range summaryFields {
		if f.name == name {
			return f.get
		}
	}
	panic("cli: no summary field " + name)
}

// rowStatus is a row's status, flagged when its fit did not converge.
func rowStatus(r calibRow) string {
	if !r.Result.Fit.Converged {
		return r.Status + " (not converged)"
	}
	return r.Status
}

func fitSummary(res runstore.CalibrationResult) string {
	f := res.Fit
	s := fmt.Sprintf("%v, %v iterations, %v passes, converged %v, val NLL %.4f → %.4f",
		f.Optimizer, f.Iterations, f.Evaluations, f.Converged, f.NLLBefore, f.NLLAfter)
	if f.Note != "" {
		s += " (" + f.Note + ")"
	}
	return s
}

// calibRow is one line of experiment mode's output.
type calibRow struct {
	Key    string                     `json:"key"`
	Method string                     `json:"method"`
	Size   string                     `json:"size"`
	Seed   int                        `json:"seed"`
	Status string                     `json:"status"` // fitted | done (skipped)
	Result runstore.CalibrationResult `json:"result"`
}

func calibrateExperiment(ctx context.Context, opts *CalibrateOptions, env *pipeline.Env, methods []string) error {
	g := opts.G
	var steps []plan.Step
	for _, m := range methods {
		for _, size := range env.Cfg.Teacher.Sizes {
			for _, seed := range env.Cfg.Seeds {
				s, ok := env.Plan.Get(runstore.CalibrationKey(m, size, seed))
				if !ok {
					return fmt.Errorf("calibrate: %s is not in the plan", runstore.CalibrationKey(m, size, seed))
				}
				steps = append(steps, s)
			}
		}
	}
	statuses := map[string]string{}
	for _, s := range steps {
		statuses[s.Key] = "fitted"
		if !opts.Force && env.Store.Done(s.Key, s.Hash) {
			statuses[s.Key] = "done"
		}
	}
	// Every prerequisite is checked first, so that nothing runs when teachers are missing.
	r := stageRun{name: "calibrate", skipMsg: "skip: already done (use --force to refit)", force: opts.Force, checkFirst: true}
	if opts.JSON {
		var res executor.Result
		r.result = &res
		err := g.runStage(ctx, env, steps, r)
		return g.printStageJSON("calibrate", env, steps, res, err)
	}
	if err := g.runStage(ctx, env, steps, r); err != nil {
		return err
	}
	var rows []calibRow
	for _, s := range steps {
		var res runstore.CalibrationResult
		if err := atomicfile.ReadJSON(env.Store.Path(s.Key, runstore.CalibResultFile), &res); err != nil {
			return fmt.Errorf("read result of %s: %w", s.Key, err)
		}
		rows = append(rows, calibRow{Key: s.Key, Method: s.Method, Size: s.Size, Seed: s.Seed, Status: statuses[s.Key], Result: res})
	}
	printExperimentTable(g.Out, rows)
	return nil
}

func printExperimentTable(w io.Writer, rows []calibRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "size\tseed\tmethod\tparams\ttest acc\ttest nll\ttest ece\ttest cw_ece\tstatus")
	for _, r := range rows {
		sp := r.Result.Val
		if r.Result.Test != nil {
			sp = *r.Result.Test
		}
		arrow := func(get func(metrics.Summary) float64) string {
			return fmt.Sprintf("%.4f → %.4f", get(sp.Before), get(sp.After))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Size, r.Seed, r.Method, pipeline.ParamSummary(r.Result),
			arrow(summaryField("accuracy")), arrow(summaryField("nll")), arrow(summaryField("ece")), arrow(summaryField("cw_ece")), rowStatus(r))
	}
	tw.Flush()
}
