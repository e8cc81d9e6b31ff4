package report

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/report/table"
	"github.com/kdcal/kdcal/internal/stats"
)

// aggCSV returns the mean, std and n columns of an Agg.
func aggCSV(a stats.Agg) []string {
	return []string{csvNum(a.Mean), csvNum(a.Std), strconv.Itoa(a.N)}
}

// aggHeader names the mean, std and n columns of a quantity in unit ("frac",
// "nats", or "" when dimensionless): teacher_acc_mean_frac,
// teacher_acc_std_frac, teacher_acc_n.
func aggHeader(prefix, unit string) []string {
	if unit != "" {
		unit = "_" + unit
	}
	return []string{prefix + "_mean" + unit, prefix + "_std" + unit, prefix + "_n"}
}

// settingTable is the per-size table of one KD setting.
func (a *Analysis) settingTable(r *SettingResult) *table.Table {
	s := a.Study
	full := len(s.Seeds)
	t := &table.Table{Name: r.Name, Align: "l"}
	t.Caption = fmt.Sprintf("Teachers and students on the test set, KD setting %s (%s). Mean ± std over %d seeds; "+
		"accuracy and ECE in %%, ECE with %d equal-width bins; T is the temperature fitted by the %s calibrator; a cell from fewer seeds shows (n=k).",
		r.Name, settingTitle(r.Setting.Tau, r.Setting.KDWeight, r.Setting.Epochs), full, s.Cfg.Calibration.Bins, a.CalMethod)
	t.Header = []string{"Teacher", "Params", "n", "Teacher acc (%)", "Teacher NLL (nats)", "Teacher ECE (%)", "ECE after " + a.CalMethod + " (%)", "T"}
	t.TeX = &table.TeX{Align: "llr", Header: []string{"Teacher", "Model", "n", "Acc (%)", "ECE (%)"},
		Caption: fmt.Sprintf("Teachers and students on the test set, KD setting %s (%s): mean ± std over the seeds counted in column n; "+
			"accuracy and ECE (%d equal-width bins) in %%. %s distils the teacher calibrated by %s; "+
			"teacher NLL, calibrated ECE and T are in the calibration table.",
			r.Name, settingTitle(r.Setting.Tau, r.Setting.KDWeight, r.Setting.Epochs), s.Cfg.Calibration.Bins,
			armShort(config.ArmCalibrated), a.CalMethod)}
	csvHead := []string{"setting", "tau", "kd_weight", "epochs", "size", "params"}
	for _, p := range []struct{ name, unit string }{{"teacher_acc", "frac"}, {"teacher_nll", "nats"}, {"teacher_ece", "frac"},
		{"teacher_ece_" + a.CalMethod, "frac"}, {"temperature", ""}} {
		csvHead = append(csvHead, aggHeader(p.name, p.unit)...)
	}
	arms := append([]string(nil), s.KDArms...)
	if s.Scratch {
		arms = append(arms, config.ArmScratch)
	}
	for _, arm := range arms {
		t.Header = append(t.Header, armShort(arm)+" acc (%)", armShort(arm)+" ECE (%)")
		csvHead = append(csvHead, aggHeader(arm+"_acc", "frac")...)
		csvHead = append(csvHead, aggHeader(arm+"_ece", "frac")...)
	}
	t.CSV = [][]string{csvHead}
	for _, row := range r.Rows {
		cells := map[string]ArmCell{}
		for k, v := range row.Arms {
			cells[k] = v
		}
		if s.Scratch {
			cells[config.ArmScratch] = r.Scratch
		}
		ns := []int{row.TeacherAcc.N, row.ECEAfter.N}
		disp := []string{row.Size, fmtParams(row.Params), "", pct(row.TeacherAcc, full), fmtAgg(row.TeacherNLL, 1, 3, full),
			pct(row.ECEBefore, full), pct(row.ECEAfter, full), fmtAgg(row.T, 1, 2, full)}
		rec := []string{r.Name, tauCell(r.Setting.Tau), fmtFloat(r.Setting.KDWeight), strconv.Itoa(r.Setting.Epochs), row.Size, strconv.Itoa(row.Params)}
		for _, g := range []stats.Agg{row.TeacherAcc, row.TeacherNLL, row.ECEBefore, row.ECEAfter, row.T} {
			rec = append(rec, aggCSV(g)...)
		}
		for _, arm := range arms {
			c := cells[arm]
			disp = append(disp, pct(c.Acc, full), pct(c.ECE, full))
			rec = append(rec, aggCSV(c.Acc)...)
			rec = append(rec, aggCSV(c.ECE)...)
			ns = append(ns, c.Acc.N)
		}
		disp[2] = nRange(ns)
		t.Rows = append(t.Rows, disp)
		t.CSV = append(t.CSV, rec)
		bl := table.Block{Rows: [][]string{texRow(row.Size, "Teacher", row.TeacherAcc, row.ECEBefore)}}
		for _, arm := range s.KDArms {
			bl.Rows = append(bl.Rows, texRow("", armShort(arm), row.Arms[arm].Acc, row.Arms[arm].ECE))
		}
		t.TeX.Blocks = append(t.TeX.Blocks, bl)
	}
	if s.Scratch {
		t.TeX.Blocks = append(t.TeX.Blocks, table.Block{Rule: true,
			Rows: [][]string{texRow(dash, armShort(config.ArmScratch), r.Scratch.Acc, r.Scratch.ECE)}})
	}
	return t
}

// texRow is a row of the LaTeX setting table: teacher, model, n, and
// accuracy and ECE in % (their seed count is the n column, not a cell note).
func texRow(teacher, model string, acc, ece stats.Agg) []string {
	return []string{teacher, model, strconv.Itoa(acc.N), pct(acc, acc.N), pct(ece, ece.N)}
}

func fmtFloat(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// tauCell renders a setting's τ for a CSV: empty for a loss without one.
func tauCell(tau float64) string {
	if tau == 0 {
		return ""
	}
	return fmtFloat(tau)
}

// nRange renders the seed counts of a row: "3", or "2–3" when they differ.
func nRange(ns []int) string {
	lo, hi := ns[0], ns[0]
	for _, n := range ns[1:] {
		lo, hi = min(lo, n), max(hi, n)
	}
	if lo == hi {
		return strconv.Itoa(lo)
	}
	return fmt.Sprintf("%d–%d", lo, hi)
}

// calibrationTable compares every calibration method per teacher size.
func (a *Analysis) calibrationTable() *table.Table {
	s := a.Study
	full := len(s.Seeds)
	t := &table.Table{Name: "calibration", Align: "l"}
	t.Caption = fmt.Sprintf("Teacher calibration on the test set, fitted on the validation split. Mean ± std over %d seeds; "+
		"ECE in %% (%d equal-width bins), NLL in nats; T is the fitted temperature.", full, s.Cfg.Calibration.Bins)
	t.Header = []string{"Teacher", "Params", "ECE uncalibrated (%)", "NLL uncalibrated (nats)"}
	head := []string{"size", "params"}
	head = append(head, aggHeader("ece_before", "frac")...)
	head = append(head, aggHeader("nll_before", "nats")...)
	for _, m := range s.Methods {
		t.Header = append(t.Header, "ECE "+m+" (%)", "NLL "+m+" (nats)")
		head = append(head, aggHeader("ece_"+m, "frac")...)
		head = append(head, aggHeader("nll_"+m, "nats")...)
	}
	hasTemp := slices.ContainsFunc(a.Calibration, func(r CalRow) bool { return r.TMethod != "" })
	t.TeX = &table.TeX{Align: "l", Header: []string{"Calibration", "ECE (%)", "NLL (nats)"},
		Caption: fmt.Sprintf("Teacher calibration on the test set, fitted on the validation split: mean ± std over %d seeds "+
			"((n=k): a row from k seeds only); raw: the teacher's own logits, uncalibrated; ECE in %% (%d equal-width bins), NLL in nats; "+
			"T is the fitted temperature.", full, s.Cfg.Calibration.Bins)}
	if hasTemp {
		t.Header = append(t.Header, "T")
		t.TeX.Header = append(t.TeX.Header, "T")
		head = append(head, aggHeader("temperature", "")...)
	}
	t.CSV = [][]string{head}
	for _, r := range a.Calibration {
		disp := []string{r.Size, fmtParams(r.Params), pct(r.ECEBefore, full), fmtAgg(r.NLLBefore, 1, 3, full)}
		rec := []string{r.Size, strconv.Itoa(r.Params)}
		rec = append(rec, aggCSV(r.ECEBefore)...)
		rec = append(rec, aggCSV(r.NLLBefore)...)
		for _, m := range s.Methods {
			disp = append(disp, pct(r.ECEAfter[m], full), fmtAgg(r.NLLAfter[m], 1, 3, full))
			rec = append(rec, aggCSV(r.ECEAfter[m])...)
			rec = append(rec, aggCSV(r.NLLAfter[m])...)
		}
		if hasTemp {
			disp = append(disp, fmtAgg(r.T, 1, 2, full))
			rec = append(rec, aggCSV(r.T)...)
		}
		t.Rows = append(t.Rows, disp)
		t.CSV = append(t.CSV, rec)
		t.TeX.Blocks = append(t.TeX.Blocks, a.calibrationBlock(r, hasTemp))
	}
	return t
}

// calibrationBlock is one teacher size of the LaTeX calibration table: a
// row of the raw (uncalibrated) logits, then one per method; a row from fewer seeds
// than the study's says (n=k) after its name.
func (a *Analysis) calibrationBlock(r CalRow, hasTemp bool) table.Block {
	full := len(a.Study.Seeds)
	bl := table.Block{Title: fmt.Sprintf("Teacher %s (%s parameters)", r.Size, fmtParams(r.Params))}
	row := func(name string, ece, nll stats.Agg, t string) {
		if ece.N < full {
			name += fmt.Sprintf(" (n=%d)", ece.N)
		}
		cells := []string{name, pct(ece, ece.N), fmtAgg(nll, 1, 3, nll.N)}
		if hasTemp {
			cells = append(cells, t)
		}
		bl.Rows = append(bl.Rows, cells)
	}
	row("raw", r.ECEBefore, r.NLLBefore, "")
	for _, m := range a.Study.Methods {
		t := ""
		if m == r.TMethod {
			t = fmtAgg(r.T, 1, 2, r.T.N)
		}
		row(m, r.ECEAfter[m], r.NLLAfter[m], t)
	}
	return bl
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// statsTable lists every test of the claim: one row per (setting, question, arm).
func (a *Analysis) statsTable() *table.Table {
	t := &table.Table{Name: "stats", Align: "lll"}
	t.Caption = fmt.Sprintf("Tests of the claim. ρ: Spearman correlation of per-size means over seeds; "+
		"Δ: mean paired difference in accuracy (percentage points). CI: %d%% percentile bootstrap over seeds (resampled jointly); "+
		"p: two-sided permutation test (sizes permuted for ρ, signs flipped per seed for Δ).", int(Level*100))
	t.Header = []string{"Setting", "Quantity", "Arm", "Estimate", "95% CI", "p", "n"}
	t.TeX = &table.TeX{Wide: true, Align: "ll", Header: t.Header[1:]}
	// unit: rho (a correlation or a difference of two) or frac (a difference
	// of accuracies as fractions; Markdown and LaTeX show percentage points).
	t.CSV = [][]string{{"setting", "quantity", "arm", "unit", "estimate", "ci_low", "ci_high", "p_value", "p_min", "n_units", "n_seeds", "resamples"}}
	// Each row goes into Markdown with its setting, and into the LaTeX block
	// of its setting without it.
	addRow := func(row []string) {
		t.Rows = append(t.Rows, row)
		bl := &t.TeX.Blocks[len(t.TeX.Blocks)-1]
		bl.Rows = append(bl.Rows, row[1:])
	}
	addCorr := func(setting, q, arm string, c *Corr) {
		if c == nil {
			return
		}
		addRow([]string{setting, q, arm, "ρ = " + minus(num(c.Rho, 2)), ci(c.CI, 1, 2), pval(c.P),
			fmt.Sprintf("%d × %d", c.N, c.Seeds)})
		t.CSV = append(t.CSV, []string{setting, q, arm, "rho", csvNum(float64(c.Rho)), csvNum(float64(c.CI[0])), csvNum(float64(c.CI[1])),
			csvNum(float64(c.P)), csvNum(float64(c.PMin)), strconv.Itoa(c.N), strconv.Itoa(c.Seeds), strconv.Itoa(c.Resamples)})
	}
	addDiff := func(setting, q, arm string, d *Diff, scale float64, unit string) {
		if d == nil {
			return
		}
		addRow([]string{setting, q, arm, "Δ = " + signed(float64(d.Mean)*scale, 2) + unit, ci(d.CI, scale, 2), pval(d.P),
			strconv.Itoa(d.N)})
		unitName := "frac"
		if unit == "" {
			unitName = "rho"
		}
		t.CSV = append(t.CSV, []string{setting, q, arm, unitName, csvNum(float64(d.Mean)), csvNum(float64(d.CI[0])), csvNum(float64(d.CI[1])),
			csvNum(float64(d.P)), csvNum(float64(d.PMin)), "", strconv.Itoa(d.N), strconv.Itoa(d.Resamples)})
	}
	for _, r := range a.Settings {
		t.TeX.Blocks = append(t.TeX.Blocks, table.Block{
			Title: "Setting " + r.Name + " (" + settingTitle(r.Setting.Tau, r.Setting.KDWeight, r.Setting.Epochs) + ")"})
		for _, arm := range a.Study.KDArms {
			addCorr(r.Name, "teacher params vs student acc", arm, r.SizeVsAcc[arm])
		}
		for _, arm := range a.Study.KDArms {
			addCorr(r.Name, "teacher ECE vs student acc", arm, r.ECEVsAcc[arm])
		}
		for _, arm := range a.Study.KDArms {
			addCorr(r.Name, "teacher acc vs student acc", arm, r.TeacherAccVsAc[arm])
		}
		addDiff(r.Name, "ρ(calibrated) − ρ(raw)", "both", r.RhoDiff, 1, "")
		addDiff(r.Name, "student acc, calibrated − raw", "mean over sizes", r.CalMinusRawAll, 100, " pp")
		for i := range r.CalMinusRaw {
			d := r.CalMinusRaw[i]
			addDiff(r.Name, "student acc, calibrated − raw", "teacher "+d.Label, &d, 100, " pp")
		}
		for _, arm := range a.Study.KDArms {
			addDiff(r.Name, "student acc, KD − scratch", arm, r.KDMinusScratch[arm], 100, " pp")
		}
	}
	if len(a.EffTemp) > 0 {
		t.TeX.Blocks = append(t.TeX.Blocks, table.Block{Title: "All KD settings"})
	}
	for _, k := range effTempKeys(a.EffTemp) {
		addCorr("all", "effective temperature vs student acc", k, a.EffTemp[k])
	}
	return t
}

// effTempKeys orders the effective-temperature correlations.
func effTempKeys(m map[string]*Corr) []string {
	var out []string
	for _, k := range []string{config.ArmRaw, config.ArmCalibrated, "pooled"} {
		if m[k] != nil {
			out = append(out, k)
		}
	}
	return out
}
