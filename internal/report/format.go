package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/stats"
)

// dash stands for a value that cannot be computed (no finished step).
const dash = "—"

// fmtAgg renders mean ± std with prec decimals after multiplying by scale
// (100 for percent). A single seed shows the mean alone; when fewer than
// full seeds contributed, "(n=k)" follows. No seed at all gives dash.
func fmtAgg(a stats.Agg, scale float64, prec, full int) string {
	if a.N == 0 {
		return dash
	}
	s := strconv.FormatFloat(a.Mean*scale, 'f', prec, 64)
	if a.N > 1 && !math.IsNaN(a.Std) {
		s += " ± " + strconv.FormatFloat(a.Std*scale, 'f', prec, 64)
	}
	if a.N < full {
		s += fmt.Sprintf(" (n=%d)", a.N)
	}
	return s
}

// pct renders a fraction as percent mean ± std (2 decimals).
func pct(a stats.Agg, full int) string { return fmtAgg(a, 100, 2, full) }

// fmtParams renders a parameter count with 3 significant digits: 25.5k, 1.86M.
func fmtParams(n int) string {
	switch {
	case n <= 0:
		return dash
	case n < 1000:
		return strconv.Itoa(n)
	case n < 1_000_000:
		return sig3(float64(n)/1e3) + "k"
	default:
		return sig3(float64(n)/1e6) + "M"
	}
}

func sig3(x float64) string {
	switch {
	case x >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case x >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	default:
		return strconv.FormatFloat(x, 'f', 2, 64)
	}
}

// num renders x with prec decimals, or dash for NaN.
func num(x Num, prec int) string {
	f := float64(x)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dash
	}
	if f == 0 {
		f = 0 // no "-0.00"
	}
	s := strconv.FormatFloat(f, 'f', prec, 64)
	if strings.Trim(s, "-0.") == "" {
		s = strings.TrimPrefix(s, "-")
	}
	return s
}

// signed renders x with an explicit sign (+0.12, −0.30), or dash.
func signed(x float64, prec int) string {
	if math.IsNaN(x) {
		return dash
	}
	s := num(Num(x), prec)
	if strings.HasPrefix(s, "-") {
		return "−" + s[1:]
	}
	return "+" + s
}

// ci renders a [lo, hi] interval scaled, or dash.
func ci(c [2]Num, scale float64, prec int) string {
	if math.IsNaN(float64(c[0])) || math.IsNaN(float64(c[1])) {
		return dash
	}
	return "[" + minus(num(c[0]*Num(scale), prec)) + ", " + minus(num(c[1]*Num(scale), prec)) + "]"
}

// minus replaces an ASCII hyphen sign by the typographic minus.
func minus(s string) string {
	if strings.HasPrefix(s, "-") {
		return "−" + s[1:]
	}
	return s
}

// pval renders a p-value: 3 significant decimals, "< 0.001" below.
func pval(p Num) string {
	f := float64(p)
	if math.IsNaN(f) {
		return dash
	}
	if f < 0.001 {
		return "< 0.001"
	}
	return strconv.FormatFloat(f, 'f', 3, 64)
}

// csvNum renders x with 6 significant digits for CSV, empty for NaN.
func csvNum(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return ""
	}
	return strconv.FormatFloat(x, 'g', 6, 64)
}

// armTitle names an arm for tables and legends.
func armTitle(arm, method string) string {
	switch arm {
	case config.ArmRaw:
		return "Raw KD"
	case config.ArmCalibrated:
		return "Calibrated KD (" + method + ")"
	case config.ArmScratch:
		return "Scratch"
	}
	return arm
}

// armShort is armTitle for narrow table headers.
func armShort(arm string) string {
	switch arm {
	case config.ArmRaw:
		return "Raw-KD"
	case config.ArmCalibrated:
		return "Cal-KD"
	case config.ArmScratch:
		return "Scratch"
	}
	return arm
}

// settingTitle describes a KD setting in words.
func settingTitle(tau, kdw float64, epochs int) string {
	t := fmt.Sprintf("kd_weight = %s, %d student epochs", strconv.FormatFloat(kdw, 'g', -1, 64), epochs)
	if tau == 0 { // a loss without a temperature
		return t
	}
	return "τ = " + strconv.FormatFloat(tau, 'g', -1, 64) + ", " + t
}
