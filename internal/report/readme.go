package report

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/report/table"
	"github.com/kdcal/kdcal/internal/spec"
)

// maxListed is how many unused steps the README lists before pointing to steps.csv.
const maxListed = 40

// readmeInput is what the README is rendered from.
type readmeInput struct {
	a          *Analysis
	concl      Conclusion
	hash       string
	configHash string
	tables     []*table.Table // setting tables, then calibration, then stats
	figs       []Figure
	skipped    []string
	formats    []string
}

// recipeString describes the recipe keys that change a model's confidence
// for the same architecture and optimiser: data.normalize and the inits.
func recipeString(cfg *config.Config) string {
	norm := "inputs standardised per channel with the train split's mean and std (`data.normalize: standardize`)"
	if cfg.Data.Normalize == config.NormalizeUnit {
		norm = "inputs scaled to [0, 1] only, x/255 as torchvision's ToTensor (`data.normalize: unit`)"
	}
	return fmt.Sprintf("%s; init: teachers `%s`, student `%s`", norm, cfg.Teacher.Train.Init, cfg.Student.Train.Init)
}

// readme renders README.md: the question and its generated answer, the grid
// and hashes, missing steps, tables, figures and the method.
func readme(in readmeInput) []byte {
	var b bytes.Buffer
	a, s := in.a, in.a.Study
	cfg := s.Cfg
	fmt.Fprintf(&b, "# kdcal report: %s\n\n", cfg.Name)
	b.WriteString("> Does a bigger teacher make a better student, and does calibrating the teacher change the answer?\n\n")
	fmt.Fprintf(&b, "**Answer** (generated from the statistics below): %s\n\n", in.concl.Headline)
	if n := len(s.Unused()); n > 0 {
		fmt.Fprintf(&b, "> [!WARNING]\n> **Partial study:** %d of %d expected steps are missing or excluded (%s). "+
			"Their results are not in any table, figure or statistic; see [Missing and excluded steps](#missing-and-excluded-steps).\n\n",
			n, len(s.Steps), statusCounts(s.Unused()))
	}

	b.WriteString("## Study\n\n| | |\n|---|---|\n")
	row := func(k, v string) { fmt.Fprintf(&b, "| %s | %s |\n", k, strings.ReplaceAll(v, "|", `\|`)) }
	d := cfg.Data
	data := d.Dataset
	if d.TrainLimit > 0 {
		data += fmt.Sprintf(", %d training examples (stratified subset)", d.TrainLimit)
	}
	data += fmt.Sprintf(", %.0f%% of the training set held out for calibration (split seed %d)", 100*d.ValFraction, d.SplitSeed)
	row("Data", data)
	var sizes []string
	for _, size := range s.Sizes {
		ms, _ := cfg.Teacher.Spec(size)
		sizes = append(sizes, fmt.Sprintf("%s %s (%s params)", size, specString(ms), fmtParams(s.Params(size))))
	}
	if cfg.Teacher.Source == config.SourceExternal {
		sizes = sizes[:0]
		for _, size := range s.Sizes {
			sizes = append(sizes, fmt.Sprintf("%s (%s params)", size, fmtParams(s.Params(size))))
		}
		row("Teachers", "external, logits from "+cfg.Teacher.ExternalDir+": "+strings.Join(sizes, ", "))
	} else {
		row("Teachers", cfg.Teacher.Family+": "+strings.Join(sizes, ", ")+fmt.Sprintf("; %d epochs", cfg.Teacher.Train.Epochs))
	}
	row("Student", cfg.Student.Family+" "+specString(cfg.Student.Model))
	row("Recipe", recipeString(cfg))
	row("Seeds", intsString(s.Seeds))
	var sets []string
	for _, set := range s.Settings {
		sets = append(sets, "`"+set.Name()+"`")
	}
	loss := fmt.Sprintf(" (loss = %g·CE + kd_weight·τ²·KL)", cfg.KD.CEWeight)
	if !s.kdOnly() {
		loss = fmt.Sprintf(" (loss = %g·CE + kd_weight·the term of `kd.loss`; each setting's loss is under Conclusion)", cfg.KD.CEWeight)
	}
	row("KD settings", strings.Join(sets, ", ")+loss)
	row("Arms", strings.Join(cfg.KD.Arms, ", ")+" (calibrated arm uses `"+cfg.KD.Calibrator+"`)")
	row("Calibration methods", strings.Join(s.Methods, ", ")+fmt.Sprintf(" (%d-bin ECE)", cfg.Calibration.Bins))
	row("Steps used", fmt.Sprintf("%d of %d expected", s.UsedCount(), len(s.Steps)))
	row("Statistics", fmt.Sprintf("%d bootstrap resamples, %d permutations, seed %d", cfg.Report.Bootstrap, cfg.Report.Permutations, cfg.Report.Seed))
	row("Report hash", "`"+in.hash+"` (report settings + the key and config hash of every step read)")
	row("Config hash", "`"+in.configHash+"` (the whole resolved configuration, [config.yaml](config.yaml))")
	b.WriteString("\n")

	b.WriteString("## Conclusion\n\n")
	for _, sc := range in.concl.Settings {
		if len(a.Settings) > 1 {
			fmt.Fprintf(&b, "### Setting `%s`\n\n", sc.Name)
		}
		if f := s.Formula(sc.Name, config.ArmRaw); f != "" && !s.kdOnly() {
			fmt.Fprintf(&b, "Loss of the raw arm (from its students' manifests): `%s`\n\n", strings.TrimPrefix(f, "loss = "))
		}
		for _, l := range sc.Lines {
			b.WriteString("- " + l + "\n")
		}
		b.WriteString("\n")
	}
	if len(in.concl.EffTemp) > 0 {
		if len(a.Settings) > 1 {
			b.WriteString("### Across settings\n\n")
		}
		for _, l := range in.concl.EffTemp {
			b.WriteString("- " + l + "\n")
		}
		b.WriteString("\n")
	}
	if len(in.concl.Caveats) > 0 {
		b.WriteString("Caveats: " + strings.Join(in.concl.Caveats, " ") + "\n\n")
	}

	b.WriteString("## Tables\n\n")
	for _, t := range in.tables {
		fmt.Fprintf(&b, "### %s\n\n", tableTitle(t))
		b.Write(t.Markdown())
		long := ""
		if t.Name != "calibration" && t.Name != "stats" {
			long = fmt.Sprintf(" · [long CSV](tables/%s)", longName(t.Name))
		}
		fmt.Fprintf(&b, "\n[CSV](tables/%s.csv)%s · [LaTeX](tables/%s.tex) · [Markdown](tables/%s.md)\n\n", t.Name, long, t.Name, t.Name)
	}
	b.WriteString("CSV files hold fractions, not percent: a column's unit ends its name (`_frac`, `_nats`; none when dimensionless), " +
		"and the long CSVs (one row per step and metric) and stats.csv have a `unit` column. " +
		"Every step with every metric (val and test): [steps.csv](steps.csv). Every statistic with its interval and p-value: [stats.json](stats.json).\n\n")

	b.WriteString("## Figures\n\n")
	img := "" // the format GitHub shows inline: PNG, else SVG; PDFs are linked only
	for _, format := range []string{"svg", "png"} {
		if contains(in.formats, format) {
			img = format
		}
	}
	for i, f := range in.figs {
		if img != "" {
			fmt.Fprintf(&b, "![%s](figures/%s.%s)\n\n", f.Name, f.Name, img)
		}
		var links []string
		for _, format := range in.formats {
			links = append(links, fmt.Sprintf("[%s](figures/%s.%s)", strings.ToUpper(format), f.Name, format))
		}
		fmt.Fprintf(&b, "**Figure %d.** %s %s\n\n", i+1, f.Caption, strings.Join(links, " · "))
	}
	if len(in.formats) == 0 {
		b.WriteString("No figures written: `report.formats` is empty.\n\n")
	}
	for _, sk := range in.skipped {
		fmt.Fprintf(&b, "- Not drawn: %s.\n", sk)
	}
	if len(in.skipped) > 0 {
		b.WriteString("\n")
	}

	if un := s.Unused(); len(un) > 0 {
		b.WriteString("## Missing and excluded steps\n\n")
		fmt.Fprintf(&b, "%d of %d expected steps do not enter this report (%s). Stale steps finished under another "+
			"configuration (their config hash differs from what the current configuration expects) and are excluded from every "+
			"statistic; `kdcal run` with this configuration re-runs them.%s\n\n", len(un), len(s.Steps), statusCounts(un), damagedNote(un))
		b.WriteString("| Step | Status | Reason |\n|---|---|---|\n")
		for i, st := range un {
			if i == maxListed {
				fmt.Fprintf(&b, "| … | | %d more in [steps.csv](steps.csv) |\n", len(un)-maxListed)
				break
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", st.Key, st.Status, strings.ReplaceAll(st.Reason, "|", `\|`))
		}
		b.WriteString("\n")
	}

	b.WriteString(methodNote(a))
	return b.Bytes()
}

func tableTitle(t *table.Table) string {
	switch t.Name {
	case "calibration":
		return "Teacher calibration (all methods)"
	case "stats":
		return "Statistics"
	}
	return "Setting `" + t.Name + "`"
}

// damagedNote explains damaged steps when there are any.
func damagedNote(steps []*Step) string {
	if countStatus(steps, StatusDamaged) == 0 {
		return ""
	}
	return " Damaged steps finished, but an output file their manifest records is missing or has changed since " +
		"(the reason names it); `kdcal run` redoes them."
}

// statusCounts renders "3 missing, 1 stale".
func statusCounts(steps []*Step) string {
	n := map[string]int{}
	for _, st := range steps {
		n[st.Status]++
	}
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", n[k], k))
	}
	return strings.Join(parts, ", ")
}

// specString renders an architecture: "conv 4-8, dense 32".
func specString(m config.ModelSpec) string {
	join := func(xs []int) string {
		parts := make([]string, len(xs))
		for i, x := range xs {
			parts[i] = strconv.Itoa(x)
		}
		return strings.Join(parts, "-")
	}
	var parts []string
	conv, _ := spec.Ints(m["conv"])
	hidden, _ := spec.Ints(m["hidden"])
	if len(conv) > 0 {
		parts = append(parts, "conv "+join(conv))
	}
	if len(hidden) > 0 {
		parts = append(parts, "dense "+join(hidden))
	}
	for _, k := range slices.Sorted(maps.Keys(m)) { // keys of other families
		if xs, _ := spec.Ints(m[k]); k != "conv" && k != "hidden" && len(xs) > 0 {
			parts = append(parts, k+" "+join(xs))
		}
	}
	if len(parts) == 0 {
		return "linear"
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func intsString(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(x)
	}
	return strings.Join(parts, ", ")
}

// methodNote documents exactly how every number was computed.
func methodNote(a *Analysis) string {
	cfg := a.Study.Cfg
	k := len(a.Study.Seeds)
	var b strings.Builder
	b.WriteString("## Method\n\n")
	fmt.Fprintf(&b, "- **Metrics.** Test-set accuracy, NLL (nats) and top-label ECE with %d equal-width confidence bins (Guo et al. 2017). "+
		"Calibrators are fitted on the validation split only. Tables show mean ± sample std (n − 1) over seeds.\n", cfg.Calibration.Bins)
	b.WriteString("- **Unit of analysis.** Correlations with teacher size use one point per teacher size: the mean over seeds of each quantity " +
		"(so n = number of sizes). Teacher size is its number of trainable parameters; Spearman's ρ uses ranks, so the log scale does not matter. " +
		"Ties get average ranks.\n")
	fmt.Fprintf(&b, "- **Bootstrap.** %d resamples of the %d seeds, drawn with replacement *jointly*: the same seed indices for every size and arm, "+
		"because a seed is one replicate of the whole pipeline (student seed s shares its initialisation and batch order across raw, calibrated "+
		"and scratch arms and is distilled from teacher seed s). Each resample recomputes the per-size means and the statistic; the %d%% interval "+
		"is the percentile interval (empirical %.1f%% and %.1f%% quantiles). Resamples in which a size loses all its seeds are dropped (counted in stats.json).\n",
		cfg.Report.Bootstrap, k, int(Level*100), 100*(1-Level)/2, 100*(1+Level)/2)
	fmt.Fprintf(&b, "- **Permutation test.** Two-sided p-value of ρ: the per-size means of student accuracy are permuted against the sizes; "+
		"all n! permutations when n! ≤ %d (exact), otherwise %d random ones with p = (b+1)/(m+1). With n sizes the smallest attainable p is 2/n! "+
		"(1/3 for 3 sizes, 1/12 for 4), so fewer than 5 sizes can never reach p < 0.05.\n", cfg.Report.Permutations, cfg.Report.Permutations)
	b.WriteString("- **Paired differences.** Calibrated − raw (and KD − scratch) accuracy is paired by seed (same student initialisation and batch order). " +
		"Per size: mean over seeds with a bootstrap interval over seeds. Overall: mean over sizes of the per-size means, bootstrap interval with seeds " +
		"resampled jointly, and an exact sign-flip permutation p-value on the per-seed averages (2/2^k is the smallest attainable p with k seeds).\n")
	b.WriteString("- **Δρ.** ρ(size, calibrated-KD accuracy) − ρ(size, raw-KD accuracy) with the joint bootstrap interval: whether calibrating the teacher changes the size trend.\n")
	b.WriteString("- **Effective temperature.** τ·T: the KD temperature times the fitted calibration temperature (T = 1 for raw KD); " +
		"correlated with student accuracy over (setting, size) cells when the study sweeps KD settings.\n")
	fmt.Fprintf(&b, "- **Reliability diagrams** pool the test predictions of all seeds of a teacher size (bin counts add; accuracy and confidence are count-weighted), "+
		"before and after `%s`. The ECE printed in a diagram is that of the pooled bins.\n", a.CalMethod)
	b.WriteString("- **Conclusion rule.** A claim is *supported* when its 95% interval excludes 0 and its permutation p < 0.05; *a trend without significance* when " +
		"only the interval excludes 0; *inconclusive* otherwise. A number stats.json lacks (no interval with one seed or report.bootstrap = 0, no ρ with fewer than 3 sizes) is " +
		"called not estimable, with n and the reason, and never read as an interval that includes 0. Every sentence above is generated from the numbers in stats.json.\n")
	b.WriteString("- **Missing and stale steps.** Only steps that finished with the config hash the current configuration expects are used; " +
		"missing, failed, running, stale and unreadable steps are listed and excluded, and cells computed from fewer seeds show (n=k).\n")
	return b.String()
}
