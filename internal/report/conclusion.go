package report

import (
	"fmt"
	"math"
	"strings"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/stats"
)

// Alpha is the significance level the conclusion uses for p-values.
const Alpha = 0.05

// Evidence grades what a statistic says about an effect.
type Evidence int

const (
	// Unavailable: the statistic could not be computed (too few units or seeds).
	Unavailable Evidence = iota
	// Inconclusive: the interval includes 0 (or, without an interval, p ≥ α).
	Inconclusive
	// Weak: the interval excludes 0 but the permutation test does not reject.
	Weak
	// Supported: the interval excludes 0 and p < α.
	Supported
)

func isNaN(x Num) bool { return math.IsNaN(float64(x)) }

// ciExcludesZero reports whether a known interval lies strictly on one side of 0.
func ciExcludesZero(c [2]Num) (known, excl bool) {
	if isNaN(c[0]) || isNaN(c[1]) {
		return false, false
	}
	return true, c[0] > 0 || c[1] < 0
}

// grade combines an interval and a p-value into an Evidence.
func grade(est Num, c [2]Num, p Num) Evidence {
	if isNaN(est) {
		return Unavailable
	}
	known, excl := ciExcludesZero(c)
	sig := !isNaN(p) && float64(p) < Alpha
	switch {
	case known && excl && (sig || isNaN(p)):
		return Supported
	case known && excl:
		return Weak
	case !known && sig:
		return Supported
	default:
		return Inconclusive
	}
}

// count renders "1 seed", "3 seeds"; units is the plural ("seeds", "sizes").
func count(n int, units string) string {
	if n == 1 {
		return "1 " + strings.TrimSuffix(units, "s")
	}
	return fmt.Sprintf("%d %s", n, units)
}

// ciShort says in a few words why a statistic over seeds (replicates)
// with data has no bootstrap interval, given report.bootstrap.
func ciShort(seeds, bootstrap int) string {
	switch {
	case bootstrap == 0:
		return "not computed (report.bootstrap = 0)"
	case seeds < 2:
		return "not estimable with n = " + count(seeds, "seeds")
	}
	return "not estimable (fewer than 2 seeds with data in every unit)"
}

// ciMissing says why a statistic has no bootstrap interval, as a clause:
// "its 95% interval is not estimable with n = 1 seed: …".
func ciMissing(seeds, bootstrap int) string {
	s := fmt.Sprintf("its %d%% interval is %s", int(Level*100), ciShort(seeds, bootstrap))
	switch {
	case bootstrap == 0:
		return s + ", which turns the bootstrap off"
	case seeds < 2:
		return s + ": the bootstrap resamples seeds, and a single seed has no seed-to-seed variation"
	}
	return s
}

// noRho says why ρ over n units is missing.
func noRho(c *Corr, units string) string {
	if c.N < stats.MinUnits {
		return fmt.Sprintf("ρ is not estimable with n = %s: a rank correlation needs at least %d (with 2, ρ is ±1 whatever the data)",
			count(c.N, units), stats.MinUnits)
	}
	return fmt.Sprintf("ρ is undefined over the %s: %s", count(c.N, units), strings.TrimPrefix(c.Note, "undefined: "))
}

// trend describes the sign of ρ in words.
func trend(rho float64) string {
	switch {
	case rho > 0:
		return "rises with"
	case rho < 0:
		return "falls with"
	}
	return "shows no monotone trend with"
}

// corrNumbers renders "ρ = 0.50, 95% CI [−0.50, 1.00], exact permutation p = 0.667; 3 sizes × 2 seeds".
func corrNumbers(c *Corr, units string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ρ = %s", minus(num(c.Rho, 2)))
	if !isNaN(c.CI[0]) {
		fmt.Fprintf(&b, ", %d%% CI %s", int(Level*100), ci(c.CI, 1, 2))
	}
	if !isNaN(c.P) {
		kind := "Monte Carlo permutation"
		if c.PExact {
			kind = "exact permutation"
		}
		fmt.Fprintf(&b, ", %s p = %s", kind, pval(c.P))
	}
	fmt.Fprintf(&b, "; %d %s × %s", c.N, units, count(c.Seeds, "seeds"))
	return b.String()
}

// designLimit says when the permutation test cannot reach α at all.
func designLimit(c *Corr, units string) string {
	if isNaN(c.PMin) || float64(c.PMin) < Alpha {
		return ""
	}
	return fmt.Sprintf(" With %d %s the smallest attainable permutation p is %s, so this design cannot reach p < %.2f whatever the data; add %s to test the claim.",
		c.N, units, pval(c.PMin), Alpha, units)
}

// corrSentence states one correlation and what it supports; bootstrap is
// report.bootstrap (to say why an interval is missing).
func corrSentence(subject, xname string, c *Corr, units, effect string, bootstrap int) (string, Evidence) {
	if c == nil {
		return "", Unavailable
	}
	if isNaN(c.Rho) {
		return fmt.Sprintf("%s: %s.", subject, noRho(c, units)), Unavailable
	}
	ev := grade(c.Rho, c.CI, c.P)
	s := fmt.Sprintf("%s: student accuracy %s %s (%s).", subject, trend(float64(c.Rho)), xname, corrNumbers(c, units))
	dir := "positive"
	if c.Rho < 0 {
		dir = "negative"
	}
	if known, _ := ciExcludesZero(c.CI); !known {
		s += " " + upper(ciMissing(c.Seeds, bootstrap)) + "."
		switch {
		case isNaN(c.P):
			s += " There is no permutation test either (report.permutations = 0): the claim cannot be judged."
		case ev == Supported:
			s += fmt.Sprintf(" The permutation test rejects “no association” (p = %s < %.2f): on that test alone, the data support a %s %s.",
				pval(c.P), Alpha, dir, effect)
		case float64(c.PMin) >= Alpha:
			s += fmt.Sprintf(" Nor can the permutation test reach p < %.2f in this design: the claim cannot be judged.", Alpha)
		default:
			s += fmt.Sprintf(" The permutation test does not reject “no association” (p = %s): inconclusive — the data do not support a %s at this scale.",
				pval(c.P), effect)
		}
		return s + designLimit(c, units), ev
	}
	switch ev {
	case Supported:
		s += fmt.Sprintf(" The interval excludes 0 and p < %.2f: the data support a %s %s.", Alpha, dir, effect)
	case Weak:
		s += fmt.Sprintf(" The bootstrap interval excludes 0, but the permutation test does not reject “no association” (p = %s): a consistent trend across seeds, not evidence of a %s.",
			pval(c.P), effect)
	case Inconclusive:
		s += fmt.Sprintf(" The interval includes 0: inconclusive — the data do not support a %s at this scale.", effect)
	}
	return s + designLimit(c, units), ev
}

// diffSentence states a mean paired accuracy difference; bootstrap is
// report.bootstrap (to say why an interval is missing).
func diffSentence(lead string, d *Diff, effect string, bootstrap int) (string, Evidence) {
	if d == nil || isNaN(d.Mean) {
		return "", Unavailable
	}
	ev := grade(d.Mean, d.CI, d.P)
	if known, _ := ciExcludesZero(d.CI); !known {
		return diffWithoutCI(lead, d, effect, bootstrap, ev), ev
	}
	s := fmt.Sprintf("%s %s pp on average over teacher sizes (%d%% CI %s pp", lead, signed(100*float64(d.Mean), 2), int(Level*100), ci(d.CI, 100, 2))
	if !isNaN(d.P) {
		s += ", paired sign-flip p = " + pval(d.P)
	}
	s += fmt.Sprintf("; %s).", count(d.N, "seeds"))
	switch ev {
	case Supported:
		s += " The interval excludes 0 and p < 0.05: " + effect + "."
	case Weak:
		s += fmt.Sprintf(" The interval excludes 0 but the sign-flip test does not reject (p = %s): suggestive only.", pval(d.P))
	case Inconclusive:
		s += " The interval includes 0: no measurable difference."
	}
	if !isNaN(d.PMin) && float64(d.PMin) >= Alpha {
		s += fmt.Sprintf(" (With %s the smallest attainable sign-flip p is %s.)", count(d.N, "seeds"), pval(d.PMin))
	}
	return s, ev
}

// diffWithoutCI states a paired difference that has no interval: why, and
// what the sign-flip test (if any) can say without one. It never calls the
// difference measurable or absent on the strength of an interval it lacks.
func diffWithoutCI(lead string, d *Diff, effect string, bootstrap int, ev Evidence) string {
	s := fmt.Sprintf("%s %s pp on average over teacher sizes (%s); %s.", lead, signed(100*float64(d.Mean), 2),
		count(d.N, "seeds"), ciMissing(d.N, bootstrap))
	switch {
	case isNaN(d.P):
		s += " There is no sign-flip test either (report.permutations = 0): whether the difference is real cannot be judged."
	case ev == Supported:
		s += fmt.Sprintf(" The paired sign-flip test rejects a zero difference (p = %s): on that test alone, %s.", pval(d.P), effect)
	case float64(d.PMin) >= Alpha:
		s += fmt.Sprintf(" The paired sign-flip test cannot reach p < %.2f with %s either (smallest attainable p = %s): whether the difference is real cannot be judged; add seeds.",
			Alpha, count(d.N, "seeds"), pval(d.PMin))
	default:
		s += fmt.Sprintf(" The paired sign-flip test does not reject a zero difference (p = %s): inconclusive.", pval(d.P))
	}
	return s
}

// upper capitalises the first letter of s.
func upper(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// SettingConclusion is the generated text about one KD setting and the
// evidence grade of its main claims.
type SettingConclusion struct {
	Name      string
	Lines     []string            // Markdown sentences, in order
	SizeClaim map[string]Evidence // arm → grade of "student accuracy depends on teacher size"
	SizeSign  map[string]float64  // arm → ρ
	RhoDiff   Evidence            // does calibration change the size trend?
	RhoDiffCI bool                // Δρ has an interval
	RhoDiffNo string              // why Δρ, or its interval, is missing
	CalEffect Evidence            // does calibration change student accuracy?
	CalDiff   *Diff               // calibrated − raw accuracy, mean over sizes
	CalNoCI   string              // why CalDiff has no interval ("" when it has one)
}

// conclude generates the conclusion of one setting from its numbers.
func (a *Analysis) conclude(r *SettingResult) SettingConclusion {
	sc := SettingConclusion{Name: r.Name, SizeClaim: map[string]Evidence{}, SizeSign: map[string]float64{}}
	boot := a.Study.Cfg.Report.Bootstrap
	add := func(s string) {
		if s != "" {
			sc.Lines = append(sc.Lines, s)
		}
	}
	for _, arm := range a.Study.KDArms {
		s, ev := corrSentence("**"+armTitle(arm, a.CalMethod)+"**", "teacher size (parameters)", r.SizeVsAcc[arm], "sizes", "size effect", boot)
		add(s)
		sc.SizeClaim[arm] = ev
		sc.SizeSign[arm] = float64(r.SizeVsAcc[arm].Rho)
	}
	add(a.rhoDiffSentence(r, &sc))
	s, ev := diffSentence("Calibrating the teacher changes student accuracy by", r.CalMinusRawAll,
		map[bool]string{true: "calibrated-KD students are more accurate", false: "calibrated-KD students are less accurate"}[r.CalMinusRawAll != nil && r.CalMinusRawAll.Mean > 0], boot)
	add(s)
	sc.CalEffect, sc.CalDiff = ev, r.CalMinusRawAll
	if d := r.CalMinusRawAll; d != nil && !isNaN(d.Mean) {
		if known, _ := ciExcludesZero(d.CI); !known {
			sc.CalNoCI = "its interval is " + ciShort(d.N, boot)
		}
	}
	for _, arm := range a.Study.KDArms {
		d := r.KDMinusScratch[arm]
		s, _ := diffSentence(armTitle(arm, a.CalMethod)+" students differ from the scratch student by", d,
			map[bool]string{true: "distillation helps", false: "distillation hurts"}[d != nil && d.Mean > 0], boot)
		add(s)
	}
	var ece []string
	for _, arm := range a.Study.KDArms {
		c := r.ECEVsAcc[arm]
		if c == nil || isNaN(c.Rho) {
			continue
		}
		interval := "CI " + ci(c.CI, 1, 2)
		if known, _ := ciExcludesZero(c.CI); !known {
			interval = "CI " + ciShort(c.Seeds, boot)
		}
		ece = append(ece, fmt.Sprintf("%s ρ = %s (%s, p = %s)", armShort(arm), minus(num(c.Rho, 2)), interval, pval(c.P)))
	}
	if len(ece) > 0 {
		add("Student accuracy against the ECE of the teacher it distils from (raw logits for raw KD, calibrated for calibrated KD): " +
			strings.Join(ece, "; ") + ".")
	}
	return sc
}

// rhoDiffSentence states Δρ = ρ(calibrated) − ρ(raw), or why it, or its
// interval, is missing, and records its grade in sc; "" without both arms.
func (a *Analysis) rhoDiffSentence(r *SettingResult, sc *SettingConclusion) string {
	d := r.RhoDiff
	if d == nil {
		return ""
	}
	boot := a.Study.Cfg.Report.Bootstrap
	if isNaN(d.Mean) {
		n := math.MaxInt
		for _, arm := range []string{config.ArmRaw, config.ArmCalibrated} {
			if c := r.SizeVsAcc[arm]; c != nil {
				n = min(n, c.N)
			}
		}
		sc.RhoDiffNo = "Δρ is undefined (ρ is undefined in one arm)"
		if n < stats.MinUnits {
			sc.RhoDiffNo = fmt.Sprintf("Δρ is not estimable with n = %s (ρ needs at least %d)", count(n, "sizes"), stats.MinUnits)
		}
		return "Whether calibration changes the size trend: " + sc.RhoDiffNo + "."
	}
	ev := grade(d.Mean, d.CI, Num(math.NaN()))
	sc.RhoDiff = ev
	s := fmt.Sprintf("Calibration changes the size trend by Δρ = ρ(calibrated) − ρ(raw) = %s", signed(float64(d.Mean), 2))
	if known, _ := ciExcludesZero(d.CI); !known {
		sc.RhoDiffNo = "the Δρ interval is " + ciShort(d.N, boot)
		return s + "; " + ciMissing(d.N, boot) + ". Δρ has no permutation test, so whether the change is real cannot be judged."
	}
	sc.RhoDiffCI = true
	s += fmt.Sprintf(" (%d%% CI %s).", int(Level*100), ci(d.CI, 1, 2))
	if ev == Supported {
		return s + " The interval excludes 0: calibrating the teacher changes how student accuracy depends on teacher size."
	}
	return s + " The interval includes 0: no measurable change of the size trend."
}

// Conclusion is the generated answer to the study's question.
type Conclusion struct {
	Headline string              // 1–3 sentences answering the question
	Settings []SettingConclusion // per KD setting
	EffTemp  []string            // sentences about the effective temperature (sweeps)
	Caveats  []string
}

// Conclude generates the study's conclusion from its statistics: which arm
// correlates how, with what interval, and whether the data support the claim.
func (a *Analysis) Conclude() Conclusion {
	var c Conclusion
	for _, r := range a.Settings {
		c.Settings = append(c.Settings, a.conclude(r))
	}
	c.Headline = a.headline(c.Settings)
	for _, k := range effTempKeys(a.EffTemp) {
		subject := "**Effective temperature, " + map[string]string{"pooled": "both KD arms pooled", config.ArmRaw: "raw KD", config.ArmCalibrated: "calibrated KD"}[k] + "**"
		s, _ := corrSentence(subject, "the effective KD temperature τ·T", a.EffTemp[k], "cells", "temperature effect", a.Study.Cfg.Report.Bootstrap)
		if s != "" {
			c.EffTemp = append(c.EffTemp, s)
		}
	}
	if len(a.Settings) > 1 {
		c.Caveats = append(c.Caveats, fmt.Sprintf("%d KD settings are tested separately; the p-values are not corrected for multiple comparisons.", len(a.Settings)))
	}
	if k := len(a.Study.Sizes); k < stats.MinUnits {
		c.Caveats = append(c.Caveats, fmt.Sprintf("With %s no correlation with teacher size is estimable (ρ needs at least %d); only the paired differences are; add sizes.",
			count(k, "teacher sizes"), stats.MinUnits))
	}
	switch k := len(a.Study.Seeds); {
	case k == 1:
		c.Caveats = append(c.Caveats, "With 1 seed there is no seed-to-seed variation to resample: no interval is given and every claim rests on the permutation test alone; add seeds.")
	case k < 5:
		c.Caveats = append(c.Caveats, fmt.Sprintf("With %d seeds the bootstrap has few distinct resamples, so the intervals are coarse and tend to be too narrow; treat them as rough.", k))
	}
	if n := len(a.Study.Unused()); n > 0 {
		c.Caveats = append(c.Caveats, fmt.Sprintf("%d of %d expected steps are missing or excluded (listed above); the statistics use the finished ones only.", n, len(a.Study.Steps)))
	}
	return c
}

// headline answers the two questions over all settings.
func (a *Analysis) headline(scs []SettingConclusion) string {
	if len(scs) == 0 || len(a.Study.KDArms) == 0 {
		return "No KD arm is configured, so the question cannot be answered."
	}
	var parts []string
	for _, arm := range a.Study.KDArms {
		var sup, neg, weak, avail int
		for _, sc := range scs {
			switch sc.SizeClaim[arm] {
			case Supported:
				if sc.SizeSign[arm] > 0 {
					sup++
				} else {
					neg++
				}
			case Weak:
				weak++
			}
			if sc.SizeClaim[arm] != Unavailable {
				avail++
			}
		}
		parts = append(parts, armVerdict(armTitle(arm, a.CalMethod), len(scs), avail, sup, neg, weak, len(a.Study.Sizes)))
	}
	q1 := "Does a bigger teacher make a better student? " + strings.Join(parts, " ")
	if len(a.Study.KDArms) < 2 {
		return q1
	}
	return q1 + " Does calibrating the teacher change the answer? " + calVerdict(scs)
}

// calVerdict answers "does calibrating the teacher change the answer?" from
// Δρ (the size trend) and the calibrated − raw accuracy difference, saying
// where either has no interval and why.
func calVerdict(scs []SettingConclusion) string {
	n := len(scs)
	var changed, unchanged int
	var missing []string // per setting without a Δρ interval: why
	grades := map[Evidence]int{}
	var noCI []string // per setting whose accuracy difference has no interval: why
	for _, sc := range scs {
		switch {
		case !sc.RhoDiffCI:
			missing = append(missing, sc.RhoDiffNo)
		case sc.RhoDiff == Supported:
			changed++
		default:
			unchanged++
		}
		if sc.CalNoCI != "" && sc.CalEffect != Supported {
			noCI = append(noCI, sc.CalNoCI)
			continue
		}
		grades[sc.CalEffect]++
	}
	if len(missing) == n && grades[Unavailable] == n {
		return "Cannot be judged yet: too few finished students in both arms."
	}
	var out string
	switch {
	case changed > 0:
		out = fmt.Sprintf("It changes the size trend (the Δρ interval excludes 0) in %d of %d settings.", changed, n)
	case unchanged == n:
		out = "It does not measurably change the size trend (the Δρ interval includes 0" + of(n) + ")."
	case unchanged > 0:
		out = fmt.Sprintf("It does not measurably change the size trend where Δρ has an interval (it includes 0 in %d of %d settings).", unchanged, n)
	default:
		return "Whether it changes the size trend cannot be judged: " + reasons(missing, n) + "." + calEffectVerdict(scs, grades, noCI)
	}
	if len(missing) > 0 {
		out += " " + upper(reasons(missing, n)) + "."
	}
	return out + calEffectVerdict(scs, grades, noCI)
}

// reasons joins the distinct reasons of k of n settings: "Δρ is not
// estimable with n = 2 sizes (…)", with " in k of n settings" when k < n.
func reasons(why []string, n int) string {
	var uniq []string
	for _, w := range why {
		if !contains(uniq, w) {
			uniq = append(uniq, w)
		}
	}
	s := strings.Join(uniq, "; ")
	if len(why) < n {
		s += fmt.Sprintf(" in %d of %d settings", len(why), n)
	}
	return s
}

// calEffectVerdict is the calibrated − raw accuracy part of calVerdict.
func calEffectVerdict(scs []SettingConclusion, grades map[Evidence]int, noCI []string) string {
	if len(scs) == 1 {
		d := scs[0].CalDiff
		if d == nil || isNaN(d.Mean) {
			return ""
		}
		more := "more"
		if d.Mean < 0 {
			more = "less"
		}
		pp := signed(100*float64(d.Mean), 2) + " pp"
		switch {
		case scs[0].CalEffect == Supported:
			return fmt.Sprintf(" Calibrated-KD students are %s accurate than raw-KD students (%s, supported).", more, pp)
		case len(noCI) > 0:
			return fmt.Sprintf(" Whether student accuracy differs between the arms (%s) cannot be judged: %s.", pp, noCI[0])
		case scs[0].CalEffect == Weak:
			return fmt.Sprintf(" Calibrated-KD students are %s accurate than raw-KD students (%s; the %d%% interval excludes 0), but the sign-flip test cannot confirm it (p = %s).",
				more, pp, int(Level*100), pval(d.P))
		}
		return fmt.Sprintf(" Student accuracy does not measurably differ between the arms (%s, interval includes 0).", pp)
	}
	var parts []string
	for _, g := range []struct {
		ev   Evidence
		what string
	}{{Supported, "supported"}, {Weak, "a consistent difference without statistical support"},
		{Inconclusive, "inconclusive"}, {Unavailable, "not computable"}} {
		if k := grades[g.ev]; k > 0 {
			parts = append(parts, fmt.Sprintf("%s in %d", g.what, k))
		}
	}
	why := ""
	if len(noCI) > 0 {
		parts = append(parts, fmt.Sprintf("cannot be judged in %d", len(noCI)))
		why = " (" + reasons(noCI, len(noCI)) + ")"
	}
	return fmt.Sprintf(" Student accuracy, calibrated − raw: %s of %d settings%s.", strings.Join(parts, "; "), len(scs), why)
}

func of(n int) string {
	if n == 1 {
		return ""
	}
	return fmt.Sprintf(" in all %d settings", n)
}

// armVerdict summarises one arm's size claim over n settings: avail
// computable, sup supported positive, neg supported negative, weak trends,
// of a study with the given number of teacher sizes.
func armVerdict(arm string, n, avail, sup, neg, weak, sizes int) string {
	if avail == 0 && sizes < stats.MinUnits {
		return fmt.Sprintf("%s: cannot be judged — ρ is not estimable with n = %s (a rank correlation needs at least %d); add sizes.",
			arm, count(sizes, "sizes"), stats.MinUnits)
	}
	if avail == 0 {
		return arm + ": cannot be judged yet (too few finished students)."
	}
	if n == 1 {
		switch {
		case sup == 1:
			return arm + ": yes — student accuracy rises with teacher size, and the data support it."
		case neg == 1:
			return arm + ": no — student accuracy falls with teacher size, and the data support it."
		case weak == 1:
			return arm + ": not shown — a trend consistent across seeds, but without statistical support."
		}
		return arm + ": not shown — the evidence is inconclusive."
	}
	var parts []string
	if sup > 0 {
		parts = append(parts, fmt.Sprintf("supported (accuracy rises with size) in %d", sup))
	}
	if neg > 0 {
		parts = append(parts, fmt.Sprintf("reversed (accuracy falls with size, supported) in %d", neg))
	}
	if weak > 0 {
		parts = append(parts, fmt.Sprintf("a trend consistent across seeds but without statistical support in %d", weak))
	}
	if k := avail - sup - neg - weak; k > 0 {
		parts = append(parts, fmt.Sprintf("inconclusive in %d", k))
	}
	if k := n - avail; k > 0 {
		parts = append(parts, fmt.Sprintf("not computable in %d", k))
	}
	lead := "not shown — "
	if sup > 0 || neg > 0 {
		lead = ""
	}
	return fmt.Sprintf("%s: %s%s of %d settings.", arm, lead, strings.Join(parts, "; "), n)
}
