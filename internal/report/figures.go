package report

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg/draw"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/metrics"
	"github.com/kdcal/kdcal/internal/report/figure"
	"github.com/kdcal/kdcal/internal/stats"
)

// Figure is one figure of the report: a name (file stem under figures/), a
// caption for the README, and the built figure.
type Figure struct {
	Name    string
	Caption string
	*figure.Figure
}

// armStyle is the colour and marker of a KD arm (or the scratch student).
func armStyle(arm string) figure.Style {
	switch arm {
	case config.ArmRaw:
		return figure.Style{Color: figure.Blue, Glyph: draw.CircleGlyph{}}
	case config.ArmCalibrated:
		return figure.Style{Color: figure.Vermillion, Glyph: draw.PyramidGlyph{}}
	}
	return figure.Style{Color: figure.Grey, Glyph: draw.CircleGlyph{}}
}

// scratchLegend is the legend text of the scratch band.
const scratchLegend = "scratch (no teacher), mean ± std"

// scratchBand is the scratch student's accuracy (in %) as a figure band, or
// nil when there is none.
func scratchBand(a stats.Agg) *figure.Band {
	if a.N == 0 {
		return nil
	}
	return &figure.Band{Label: scratchLegend, Mean: 100 * a.Mean, Std: 100 * a.Std}
}

// Figures lists the report's figures for the analysed study; figures without
// any data are left out (the README says which and why). An error means
// gonum/plot rejected some data.
func (a *Analysis) Figures() (figs []Figure, skipped []string, err error) {
	add := func(f *Figure, err error, why string) error {
		switch {
		case err != nil:
			return err
		case f != nil:
			figs = append(figs, *f)
		default:
			skipped = append(skipped, why)
		}
		return nil
	}
	for u, size := range a.Study.Sizes {
		f, err := a.reliabilityFigure(u, size)
		if err := add(f, err, "reliability diagram of teacher "+size+": no finished calibration step"); err != nil {
			return nil, nil, fmt.Errorf("figure reliability-%s: %w", size, err)
		}
	}
	f, err := a.teacherCalibrationFigure()
	if err := add(f, err, "teacher ECE and temperature vs size: no finished teacher and calibration steps"); err != nil {
		return nil, nil, fmt.Errorf("figure teacher-calibration: %w", err)
	}
	for _, r := range a.Settings {
		f, err := a.studentVsSizeFigure(r)
		if err := add(f, err, "student accuracy vs teacher size ("+r.Name+"): no finished students with finished teachers"); err != nil {
			return nil, nil, fmt.Errorf("figure student-vs-size-%s: %w", r.Name, err)
		}
		f, err = a.studentVsTeacherAccFigure(r)
		if err := add(f, err, "student vs teacher accuracy ("+r.Name+"): no finished students with finished teachers"); err != nil {
			return nil, nil, fmt.Errorf("figure student-vs-teacher-acc-%s: %w", r.Name, err)
		}
	}
	if len(a.Study.Settings) > 1 {
		f, err := a.effTempFigure()
		if err := add(f, err, "student accuracy vs effective temperature: no finished KD students"); err != nil {
			return nil, nil, fmt.Errorf("figure student-vs-effective-temperature: %w", err)
		}
	}
	return figs, skipped, nil
}

// pooledBins sums the reliability bins of several seeds: counts add, and
// accuracy and confidence are count-weighted means, i.e. the bins of all
// seeds' test predictions taken together.
func pooledBins(sets [][]metrics.Bin) []metrics.Bin {
	var out []metrics.Bin
	for _, bins := range sets {
		if out == nil {
			out = make([]metrics.Bin, len(bins))
			for i, b := range bins {
				out[i] = metrics.Bin{Lo: b.Lo, Hi: b.Hi}
			}
		}
		if len(bins) != len(out) {
			continue // a different binning: not poolable (calibration.bins changed between runs)
		}
		for i, b := range bins {
			o := &out[i]
			n := float64(o.Count + b.Count)
			if n > 0 {
				o.Accuracy = (o.Accuracy*float64(o.Count) + b.Accuracy*float64(b.Count)) / n
				o.Confidence = (o.Confidence*float64(o.Count) + b.Confidence*float64(b.Count)) / n
			}
			o.Count += b.Count
		}
	}
	return out
}

func binTotal(bins []metrics.Bin) int {
	var n int
	for _, b := range bins {
		n += b.Count
	}
	return n
}

// reliabilityFigure: for one teacher size, the reliability diagram before
// and after the KD calibrator, each above its confidence histogram, pooled
// over seeds; nil without a finished calibration step.
func (a *Analysis) reliabilityFigure(u int, size string) (*Figure, error) {
	s := a.Study
	var before, after [][]metrics.Bin
	var seeds int
	for _, seed := range s.Seeds {
		if c := s.Calibration(a.CalMethod, size, seed); c != nil && len(c.Test.ReliabilityBefore) > 0 {
			before, after = append(before, c.Test.ReliabilityBefore), append(after, c.Test.ReliabilityAfter)
			seeds++
		}
	}
	if seeds == 0 {
		return nil, nil
	}
	pb, pa := pooledBins(before), pooledBins(after)
	t := a.temp.Agg(u)
	afterTitle := "After " + a.CalMethod
	if t.N > 0 {
		afterTitle += fmt.Sprintf(" (T = %.2f)", t.Mean)
	}
	seedNote := fmt.Sprintf("%d seeds pooled", seeds)
	if seeds == 1 {
		seedNote = "1 seed"
	}
	f, err := figure.Reliability(figure.ReliabilityData{
		BeforeTitle: fmt.Sprintf("Teacher %s (%s params): uncalibrated", size, fmtParams(s.Params(size))),
		AfterTitle:  afterTitle,
		Before:      pb, After: pa,
		BeforeECE: metrics.ECEFromBins(pb, binTotal(pb)), AfterECE: metrics.ECEFromBins(pa, binTotal(pa)),
	})
	if err != nil {
		return nil, err
	}
	return &Figure{
		Name: "reliability-" + size,
		Caption: fmt.Sprintf("Reliability diagrams of teacher %s (%s parameters) on the test set, before and after %s "+
			"calibration (%s, %d equal-width bins). Bars: accuracy per confidence bin; dashed: perfect calibration; "+
			"below: share of test examples per bin.", size, fmtParams(s.Params(size)), a.CalMethod, seedNote, len(pb)),
		Figure: f,
	}, nil
}

// sizePoints returns, for a per-size quantity, the (params, mean ± std)
// points of the sizes that have both, the mean and std multiplied by scale.
func (a *Analysis) sizePoints(g Grid, scale float64) *figure.Points {
	pts := &figure.Points{}
	for u, size := range a.Study.Sizes {
		p := float64(a.Study.Params(size))
		ag := g.Agg(u)
		if p <= 0 || ag.N == 0 {
			continue
		}
		pts.Add(p, ag.Mean*scale, 0, ag.Std*scale)
	}
	return pts
}

// paramRange returns the smallest and largest known parameter count.
func (a *Analysis) paramRange() (lo, hi float64, ok bool) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, size := range a.Study.Sizes {
		if p := float64(a.Study.Params(size)); p > 0 {
			lo, hi = math.Min(lo, p), math.Max(hi, p)
		}
	}
	return lo, hi, lo <= hi
}

// teacherCalibrationFigure: teacher ECE before/after and the fitted T against
// teacher parameters, mean ± std over seeds; nil without data.
func (a *Analysis) teacherCalibrationFigure() (*Figure, error) {
	lo, hi, ok := a.paramRange()
	if !ok {
		return nil, nil
	}
	d := figure.TeacherCalibrationData{
		Before: a.sizePoints(a.eceBefore, 100), After: a.sizePoints(a.eceAfter, 100), Temperature: a.sizePoints(a.temp, 1),
		BeforeLabel: "uncalibrated", AfterLab: "after " + a.CalMethod, ParamLo: lo, ParamHi: hi,
	}
	if d.Before.Len()+d.After.Len() == 0 {
		return nil, nil
	}
	f, err := figure.TeacherCalibration(d)
	if err != nil {
		return nil, err
	}
	hasT := d.Temperature.Len() > 0
	return &Figure{
		Name: "teacher-calibration",
		Caption: fmt.Sprintf("Teacher calibration against size: test ECE before and after %s calibration%s, mean ± std over seeds.",
			a.CalMethod, map[bool]string{true: ", and the fitted temperature T (T > 1: the teacher was over-confident)", false: ""}[hasT]),
		Figure: f,
	}, nil
}

// studentVsSizeFigure: student test accuracy against teacher parameters per
// KD arm (mean ± std over seeds, at the true parameter count), with the
// scratch student as a band; nil without data.
func (a *Analysis) studentVsSizeFigure(r *SettingResult) (*Figure, error) {
	lo, hi, ok := a.paramRange()
	if !ok {
		return nil, nil
	}
	title := figureSettingTitle(r)
	d := figure.StudentVsSizeData{Title: "Student accuracy vs teacher size (" + title + ")", ParamLo: lo, ParamHi: hi}
	n := 0
	for _, arm := range a.Study.KDArms {
		pts := a.sizePoints(r.acc[arm], 100)
		d.Series = append(d.Series, figure.Series{Label: armTitle(arm, a.CalMethod), Style: armStyle(arm), Points: pts})
		n += pts.Len()
	}
	if n == 0 {
		return nil, nil
	}
	if a.Study.Scratch {
		d.Baseline = scratchBand(r.Scratch.Acc)
	}
	f, err := figure.StudentVsSize(d)
	if err != nil {
		return nil, err
	}
	return &Figure{
		Name: "student-vs-size-" + r.Name,
		Caption: fmt.Sprintf("Student test accuracy against teacher size (%s), mean ± std over seeds; "+
			"grey band: scratch student (no teacher) mean ± std.", title),
		Figure: f,
	}, nil
}

// studentVsTeacherAccFigure: student test accuracy against teacher test
// accuracy per KD arm, one point per size (mean ± std over seeds on both
// axes, labelled with the size), with the scratch band; nil without data.
func (a *Analysis) studentVsTeacherAccFigure(r *SettingResult) (*Figure, error) {
	title := figureSettingTitle(r)
	d := figure.StudentVsTeacherAccData{Title: "Student vs teacher accuracy (" + title + ")"}
	n := 0
	for i, arm := range a.Study.KDArms {
		pts := &figure.Points{}
		for u, size := range a.Study.Sizes {
			ta, sa := a.teacherAcc.Agg(u), r.acc[arm].Agg(u)
			if ta.N == 0 || sa.N == 0 {
				continue
			}
			pts.Add(100*ta.Mean, 100*sa.Mean, 100*ta.Std, 100*sa.Std)
			if i == 0 {
				d.Labels.XYs = append(d.Labels.XYs, plotter.XY{X: 100 * ta.Mean, Y: 100 * sa.Mean})
				d.Labels.Labels = append(d.Labels.Labels, "  "+size)
			}
			n++
		}
		d.Series = append(d.Series, figure.Series{Label: armTitle(arm, a.CalMethod), Style: armStyle(arm), Points: pts})
	}
	if n == 0 {
		return nil, nil
	}
	if a.Study.Scratch {
		d.Baseline = scratchBand(r.Scratch.Acc)
	}
	f, err := figure.StudentVsTeacherAcc(d)
	if err != nil {
		return nil, err
	}
	return &Figure{
		Name: "student-vs-teacher-acc-" + r.Name,
		Caption: fmt.Sprintf("Student against teacher test accuracy (%s), one point per teacher size, mean ± std over seeds on both axes; "+
			"grey band: scratch student.", title),
		Figure: f,
	}, nil
}

// effTempFigure: student test accuracy against the effective KD temperature
// τ·T over every (setting, size) cell; nil without KD students.
func (a *Analysis) effTempFigure() (*Figure, error) {
	s := a.Study
	var d figure.EffectiveTemperatureData
	for i, arm := range s.KDArms {
		d.Arms = append(d.Arms, figure.Series{Label: armTitle(arm, a.CalMethod), Style: armStyle(arm)})
		for _, set := range s.Settings {
			for u, size := range s.Sizes {
				xs, ys := make([]float64, len(s.Seeds)), make([]float64, len(s.Seeds))
				for j, seed := range s.Seeds {
					xs[j], ys[j] = math.NaN(), math.NaN()
					if st := s.Student(set.Name(), arm, size, seed); st != nil {
						xs[j] = effectiveTemp(st.EffectiveTemperature, st.Tau, st.CalibrationTemperature, set.Tau)
						ys[j] = st.Test.Accuracy
					}
				}
				if x, y := stats.Aggregate(xs), stats.Aggregate(ys); x.N > 0 && x.Mean > 0 {
					d.Cells = append(d.Cells, figure.Cell{Arm: i, Size: u, X: x.Mean, Y: 100 * y.Mean, YErr: 100 * y.Std})
				}
			}
		}
	}
	if len(d.Cells) == 0 {
		return nil, nil
	}
	for _, size := range s.Sizes {
		d.Sizes = append(d.Sizes, fmt.Sprintf("teacher %s (%s)", size, fmtParams(s.Params(size))))
	}
	if s.Scratch {
		var sc []float64
		for _, e := range uniqueEpochs(s) {
			acc, _ := a.scratchRow(e)
			sc = append(sc, acc...)
		}
		d.Baseline = scratchBand(stats.Aggregate(sc))
	}
	f, err := figure.EffectiveTemperature(d)
	if err != nil {
		return nil, err
	}
	return &Figure{
		Name: "student-vs-effective-temperature",
		Caption: "Student test accuracy against the effective KD temperature τ·T (T = 1 for raw KD, the fitted T for calibrated KD), " +
			"one point per (KD setting, teacher size) at its true τ·T, mean ± std over seeds, all KD settings together; " +
			"colour and marker shape: arm; marker size: teacher size (larger teacher, larger marker).",
		Figure: f,
	}, nil
}

func uniqueEpochs(s *Study) []int {
	seen := map[int]bool{}
	var out []int
	for _, set := range s.Settings {
		if !seen[set.Epochs] {
			seen[set.Epochs] = true
			out = append(out, set.Epochs)
		}
	}
	return out
}

// writeFigure renders f into dir/<name>.<format> for every format.
func writeFigure(dir string, f Figure, formats []string) error {
	for _, format := range formats {
		path := filepath.Join(dir, f.Name+"."+format)
		out, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := f.Render(out, format); err != nil {
			out.Close()
			return fmt.Errorf("render %s: %w", path, err)
		}
		if err := out.Close(); err != nil {
			return err
		}
	}
	return nil
}

// figureSettingTitle describes a setting in a figure's title: its words
// (settingTitle), led by the loss when the grid has several, so that the
// figures of kd and dkd at the same τ can be told apart.
func figureSettingTitle(r *SettingResult) string {
	t := settingTitle(r.Setting.Tau, r.Setting.KDWeight, r.Setting.Epochs)
	if r.Setting.Tagged {
		t = r.Setting.Loss + ", " + t
	}
	return t
}
