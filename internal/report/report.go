package report

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/report/table"
	"github.com/kdcal/kdcal/internal/runstore"
)

// Options configures Write.
type Options struct {
	// Log receives progress and warnings; nil discards them.
	Log *slog.Logger
	// ConfigYAML is the resolved configuration, written to config.yaml in
	// the report; nil skips the file.
	ConfigYAML []byte
	// Out is where the report step is committed, as a store and key; nil
	// means the experiment's own store under runstore.ReportKey.
	Out *runstore.Store
	Key string
}

// Result describes a written report.
type Result struct {
	Dir      string  // the published report directory
	Hash     string  // the report step's config hash
	Used     int     // steps read
	Expected int     // steps the configuration expects
	Unused   []*Step // missing, stale, failed, running or invalid steps
	Files    []string
	Headline string // the generated answer
}

// Write analyses the study in store under cfg and publishes the report as
// one step (runstore.KindReport): README.md, config.yaml, steps.csv,
// stats.json, tables/<name>.{md,csv,tex}, tables/<setting>-long.csv and
// figures/<name>.{png,svg,pdf} (report.formats). The
// report appears all at once: everything is written into the step's work
// directory, which Commit renames. A study with missing steps gets a report
// that names them; a store with no usable step at all is a
// *runstore.MissingError.
func Write(ctx context.Context, cfg *config.Config, store *runstore.Store, opts Options) (*Result, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	study, err := Load(cfg, store)
	if err != nil {
		return nil, err
	}
	if study.UsedCount() == 0 {
		return nil, noStepsError(study)
	}
	for _, st := range study.Unused() {
		log.Debug("step not used", "key", st.Key, "status", st.Status, "reason", st.Reason)
	}
	if n := len(study.Unused()); n > 0 {
		log.Warn("partial study: the report lists the steps it could not use", "unused", n, "expected", len(study.Steps),
			"counts", statusCounts(study.Unused()))
	}
	out, key := opts.Out, opts.Key
	if out == nil {
		out, key = store, runstore.ReportKey
	}
	var inputs []string
	for _, st := range study.Steps {
		if st.Used() {
			inputs = append(inputs, st.Key)
		}
	}
	hash := study.Hash()
	step, err := out.Begin(runstore.Manifest{Key: key, Kind: runstore.KindReport, ConfigHash: hash, Inputs: inputs})
	if err != nil {
		return nil, err
	}
	res := &Result{Dir: out.Dir(key), Hash: hash, Used: study.UsedCount(), Expected: len(study.Steps), Unused: study.Unused()}
	if err := writeAll(ctx, step, study, hash, opts, res, log); err != nil {
		return nil, step.Fail(err)
	}
	step.SetParam("steps_used", res.Used)
	step.SetParam("steps_expected", res.Expected)
	step.SetParam("steps_unused", statusCounts(res.Unused))
	if err := step.Commit(); err != nil {
		return nil, err
	}
	return res, nil
}

// longName is the file name of a setting's long-format CSV.
func longName(setting string) string { return setting + "-long.csv" }

// noStepsError explains an experiment with nothing to report, naming its
// first expected step and the command that makes it.
func noStepsError(s *Study) error {
	counts := statusCounts(s.Steps)
	first := &runstore.MissingError{Key: s.Root}
	if len(s.Steps) > 0 {
		first.Key = filepath.Join(s.Root, s.Steps[0].Key)
	}
	if n := countStatus(s.Steps, StatusStale); n > 0 {
		return fmt.Errorf("no step in %s matches this configuration (%s): the store was written with another configuration; "+
			"report that one with `kdcal report --config %s --experiment %s`, or run this one with `kdcal run`: %w",
			s.Root, counts, filepath.Join(s.Root, "config.yaml"), s.Root, first)
	}
	first.Hint = "kdcal run"
	return fmt.Errorf("nothing to report in %s (%d expected steps: %s): %w", s.Root, len(s.Steps), counts, first)
}

func countStatus(steps []*Step, status string) int {
	var n int
	for _, st := range steps {
		if st.Status == status {
			n++
		}
	}
	return n
}

// writeAll writes every file of the report into the step's work directory.
func writeAll(ctx context.Context, step *runstore.Step, study *Study, hash string, opts Options, res *Result, log *slog.Logger) error {
	a := Analyze(study)
	concl := a.Conclude()
	res.Headline = concl.Headline
	write := func(name string, b []byte) error {
		path := step.Path(name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return err
		}
		res.Files = append(res.Files, name)
		return nil
	}
	var tables []*table.Table
	for _, r := range a.Settings {
		tables = append(tables, a.settingTable(r))
	}
	tables = append(tables, a.calibrationTable(), a.statsTable())
	for _, t := range tables {
		c, err := t.CSVBytes()
		if err != nil {
			return err
		}
		for _, f := range []struct {
			ext string
			b   []byte
		}{{"md", t.Markdown()}, {"csv", c}, {"tex", t.LaTeX()}} {
			if err := write(filepath.Join("tables", t.Name+"."+f.ext), f.b); err != nil {
				return err
			}
		}
	}
	for _, r := range a.Settings {
		long, err := a.longCSV(r)
		if err != nil {
			return err
		}
		if err := write(filepath.Join("tables", longName(r.Name)), long); err != nil {
			return err
		}
	}
	steps, err := a.stepsCSV()
	if err != nil {
		return err
	}
	if err := write("steps.csv", steps); err != nil {
		return err
	}
	sj, err := json.MarshalIndent(a.statsDoc(hash, concl), "", "  ")
	if err != nil {
		return err
	}
	if err := write("stats.json", append(sj, '\n')); err != nil {
		return err
	}
	if opts.ConfigYAML != nil {
		if err := write("config.yaml", opts.ConfigYAML); err != nil {
			return err
		}
	}
	figs, skipped, err := a.Figures()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(step.Path("figures"), 0o755); err != nil {
		return err
	}
	for _, f := range figs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := writeFigure(step.Path("figures"), f, study.Cfg.Report.Formats); err != nil {
			return err
		}
		for _, format := range study.Cfg.Report.Formats {
			res.Files = append(res.Files, filepath.Join("figures", f.Name+"."+format))
		}
		log.Debug("figure", "name", f.Name)
	}
	md := readme(readmeInput{a: a, concl: concl, hash: hash, configHash: runstore.Hash(study.Cfg), tables: tables,
		figs: figs, skipped: skipped, formats: study.Cfg.Report.Formats})
	return write("README.md", md)
}

// Summary renders a short plain-text account of a written report for the terminal.
func (r *Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "report: %s (%d of %d steps used)\n", filepath.Join(r.Dir, "README.md"), r.Used, r.Expected)
	if len(r.Unused) > 0 {
		fmt.Fprintf(&b, "not used (%s):\n", statusCounts(r.Unused))
		for i, st := range r.Unused {
			if i == 20 {
				fmt.Fprintf(&b, "  … %d more, see README.md and steps.csv\n", len(r.Unused)-20)
				break
			}
			fmt.Fprintf(&b, "  %-8s %s: %s\n", st.Status, st.Key, st.Reason)
		}
	}
	fmt.Fprintf(&b, "%s\n", r.Headline)
	return b.String()
}
