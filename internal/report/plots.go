package report

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/metrics"
)

// DPI of the PNG figures: 200 gives print-quality raster images whose pixel
// size is the figure's size in inches × 200.
const DPI = 200

// Figure is one figure of the report: a name (file stem under figures/), a
// size, a caption for the README, and a function that draws it on a canvas.
type Figure struct {
	Name    string
	Caption string
	W, H    vg.Length
	Draw    func(c draw.Canvas)
}

// Okabe–Ito colour-blind-safe palette (Okabe & Ito 2008).
var (
	colRaw     = color.NRGBA{0x00, 0x72, 0xB2, 0xFF} // blue
	colCal     = color.NRGBA{0xD5, 0x5E, 0x00, 0xFF} // vermillion
	colScratch = color.NRGBA{0x66, 0x66, 0x66, 0xFF} // grey
	colBand    = color.NRGBA{0x99, 0x99, 0x99, 0x55} // translucent grey
	colBefore  = color.NRGBA{0xD5, 0x5E, 0x00, 0xFF} // vermillion: uncalibrated
	colAfter   = color.NRGBA{0x00, 0x9E, 0x73, 0xFF} // bluish green: calibrated
	colGap     = color.NRGBA{0xCC, 0x79, 0xA7, 0xFF} // reddish purple: calibration gap
)

func armColor(arm string) color.Color {
	switch arm {
	case config.ArmRaw:
		return colRaw
	case config.ArmCalibrated:
		return colCal
	}
	return colScratch
}

func armGlyph(arm string) draw.GlyphDrawer {
	if arm == config.ArmCalibrated {
		return draw.PyramidGlyph{}
	}
	return draw.CircleGlyph{}
}

// sizeGlyphs mark teacher sizes (filled shapes first).
var sizeGlyphs = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{}, draw.RingGlyph{},
	draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{}}

// newPlot returns a plot with the report's style: 11 pt labels, 9.5 pt ticks,
// light grid lines.
func newPlot(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(11)
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text, p.Y.Label.Text = xlabel, ylabel
	p.X.Tick.Marker, p.Y.Tick.Marker = linTicks{}, linTicks{}
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		ax.Label.TextStyle.Font.Size = vg.Points(11)
		ax.Tick.Label.Font.Size = vg.Points(9.5)
		ax.Label.Padding = vg.Points(3)
	}
	p.Legend.TextStyle.Font.Size = vg.Points(9.5)
	p.Legend.ThumbnailWidth = vg.Points(18)
	p.Legend.Padding = vg.Points(1)
	g := plotter.NewGrid()
	g.Vertical.Color = color.Gray{0xE4}
	g.Horizontal.Color = color.Gray{0xE4}
	g.Vertical.Width, g.Horizontal.Width = vg.Points(0.4), vg.Points(0.4)
	p.Add(g)
	return p
}

// logParams makes x a log axis of parameter counts with 10k/100k/1M labels,
// padded by a factor of 1.5 on both sides of [lo, hi].
func logParams(ax *plot.Axis, lo, hi float64) {
	ax.Scale = plot.LogScale{}
	ax.Tick.Marker = logTicks{format: countLabel}
	ax.Min, ax.Max = lo/1.5, hi*1.5
}

// logTicks marks a log axis: a tick at every m × 10^k (m = 1..9), labelled
// at m = 1 over ≥ 3 decades, at m ∈ {1, 2, 5} over 1–3 decades and at
// m ∈ {1, …, 6, 8} within one decade.
type logTicks struct{ format func(float64) string }

func (t logTicks) Ticks(lo, hi float64) []plot.Tick {
	if lo <= 0 || hi <= lo {
		return nil
	}
	decades := math.Log10(hi / lo)
	labelled := func(m int) bool {
		switch {
		case decades >= 3:
			return m == 1
		case decades >= 1:
			return m == 1 || m == 2 || m == 5
		}
		return m != 7 && m != 9
	}
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		base := math.Pow(10, e)
		for m := 1; m <= 9; m++ {
			v := base * float64(m)
			if v < lo || v > hi {
				continue
			}
			tk := plot.Tick{Value: v}
			if labelled(m) {
				tk.Label = t.format(v)
			}
			ticks = append(ticks, tk)
		}
	}
	return ticks
}

// countLabel renders 20000 as "20k", 1e6 as "1M".
func countLabel(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 3, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'g', 3, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func plainLabel(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

// linTicks marks a linear axis with about six labelled ticks at steps of
// {1, 2, 2.5, 5} × 10^k, and unlabelled ticks halfway between them.
type linTicks struct{}

func (linTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) {
		return nil
	}
	raw := (hi - lo) / 6
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	prec := max(0, int(-math.Floor(math.Log10(step)+1e-9)))
	if math.Abs(step/math.Pow(10, math.Floor(math.Log10(step)))-2.5) < 1e-9 {
		prec++
	}
	var ticks []plot.Tick
	for k := math.Ceil(lo/step*2 - 1e-9); k/2*step <= hi+1e-9*step; k++ {
		v := k / 2 * step
		tk := plot.Tick{Value: v}
		if int(k)%2 == 0 {
			tk.Label = strconv.FormatFloat(v, 'f', prec, 64)
			if tk.Label == "-0" || strings.Trim(tk.Label, "-0.") == "" {
				tk.Label = strings.TrimPrefix(tk.Label, "-")
			}
		}
		ticks = append(ticks, tk)
	}
	return ticks
}

// headroom widens the y range so that a legend at the top does not cover data.
func headroom(p *plot.Plot, lo, hi, frac float64) {
	if hi <= lo {
		lo, hi = lo-0.5, hi+0.5
	}
	r := hi - lo
	p.Y.Min, p.Y.Max = lo-0.08*r, hi+frac*r
}

// errPoints holds points with symmetric x and y errors, for plotter's error bars.
type errPoints struct {
	plotter.XYs
	plotter.XErrors
	plotter.YErrors
}

func (e *errPoints) add(x, y, xerr, yerr float64) {
	if math.IsNaN(xerr) {
		xerr = 0
	}
	if math.IsNaN(yerr) {
		yerr = 0
	}
	e.XYs = append(e.XYs, plotter.XY{X: x, Y: y})
	e.XErrors = append(e.XErrors, struct{ Low, High float64 }{xerr, xerr})
	e.YErrors = append(e.YErrors, struct{ Low, High float64 }{yerr, yerr})
}

// yRange returns the range of y ± yerr.
func (e *errPoints) yRange() (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for i, p := range e.XYs {
		lo, hi = math.Min(lo, p.Y-e.YErrors[i].Low), math.Max(hi, p.Y+e.YErrors[i].High)
	}
	return lo, hi
}

// addSeries draws one series: a line through the means (when line), markers,
// and y (and x, when xerr) error bars; it registers a legend entry unless
// name is empty.
func addSeries(p *plot.Plot, pts *errPoints, name string, col color.Color, glyph draw.GlyphDrawer, line, xerr bool) error {
	if len(pts.XYs) == 0 {
		return nil
	}
	var thumbs []plot.Thumbnailer
	if line {
		l, err := plotter.NewLine(pts.XYs)
		if err != nil {
			return err
		}
		l.Color, l.Width = col, vg.Points(1.4)
		p.Add(l)
		thumbs = append(thumbs, l)
	}
	yb, err := plotter.NewYErrorBars(pts)
	if err != nil {
		return err
	}
	yb.Color, yb.Width, yb.CapWidth = col, vg.Points(1), vg.Points(5)
	p.Add(yb)
	if xerr {
		xb, err := plotter.NewXErrorBars(pts)
		if err != nil {
			return err
		}
		xb.Color, xb.Width, xb.CapWidth = col, vg.Points(1), vg.Points(5)
		p.Add(xb)
	}
	sc, err := plotter.NewScatter(pts.XYs)
	if err != nil {
		return err
	}
	sc.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(3.5), Shape: glyph}
	p.Add(sc)
	thumbs = append(thumbs, sc)
	if name != "" {
		p.Legend.Add(name, thumbs...)
	}
	return nil
}

// addBand draws the scratch baseline mean ± std as a horizontal band over
// [x0, x1] with a dashed line at the mean, and returns its legend thumbnails
// (the caller adds the entry, so that the band can be drawn first but listed last).
func addBand(p *plot.Plot, a Agg, x0, x1, scale float64) []plot.Thumbnailer {
	if a.N == 0 {
		return nil
	}
	m := a.Mean * scale
	sd := 0.0
	if !math.IsNaN(a.Std) {
		sd = a.Std * scale
	}
	poly, err := plotter.NewPolygon(plotter.XYs{{X: x0, Y: m - sd}, {X: x1, Y: m - sd}, {X: x1, Y: m + sd}, {X: x0, Y: m + sd}})
	if err != nil {
		return nil
	}
	poly.Color, poly.LineStyle.Width = colBand, 0
	l, err := plotter.NewLine(plotter.XYs{{X: x0, Y: m}, {X: x1, Y: m}})
	if err != nil {
		return nil
	}
	l.Color, l.Width, l.Dashes = colScratch, vg.Points(1.2), []vg.Length{vg.Points(5), vg.Points(3)}
	p.Add(poly, l)
	return []plot.Thumbnailer{poly, l}
}

// scratchLegend is the legend text of the scratch band.
const scratchLegend = "scratch (no teacher), mean ± std"

// Figures lists the report's figures for the analysed study; figures without
// any data are left out (the README says so).
func (a *Analysis) Figures() (figs []Figure, skipped []string) {
	add := func(f *Figure, why string) {
		if f != nil {
			figs = append(figs, *f)
		} else {
			skipped = append(skipped, why)
		}
	}
	for u, size := range a.Study.Sizes {
		add(a.reliabilityFigure(u, size), "reliability diagram of teacher "+size+": no finished calibration step")
	}
	add(a.teacherCalibrationFigure(), "teacher ECE and temperature vs size: no finished teacher and calibration steps")
	for _, r := range a.Settings {
		add(a.studentVsSizeFigure(r), "student accuracy vs teacher size ("+r.Name+"): no finished students with finished teachers")
		add(a.studentVsTeacherAccFigure(r), "student vs teacher accuracy ("+r.Name+"): no finished students with finished teachers")
	}
	if len(a.Study.Settings) > 1 {
		add(a.effTempFigure(), "student accuracy vs effective temperature: no finished KD students")
	}
	return figs, skipped
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

// reliabilityFigure draws, for one teacher size, the reliability diagram
// (accuracy per confidence bin, the diagonal of perfect calibration) before
// and after the KD calibrator, each above its confidence histogram (share of
// test examples per bin), pooled over seeds.
func (a *Analysis) reliabilityFigure(u int, size string) *Figure {
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
		return nil
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
	return &Figure{
		Name: "reliability-" + size,
		Caption: fmt.Sprintf("Reliability diagrams of teacher %s (%s parameters) on the test set, before and after %s "+
			"calibration (%s, %d equal-width bins). Bars: accuracy per confidence bin; dashed: perfect calibration; "+
			"below: share of test examples per bin.", size, fmtParams(s.Params(size)), a.CalMethod, seedNote, len(pb)),
		W: 7 * vg.Inch, H: 5 * vg.Inch,
		Draw: func(c draw.Canvas) {
			top := draw.Crop(c, 0, 0, c.Size().Y*0.34, 0)
			bottom := draw.Crop(c, 0, 0, 0, -c.Size().Y*0.68)
			title := fmt.Sprintf("Teacher %s (%s params): uncalibrated", size, fmtParams(s.Params(size)))
			rel := [][]*plot.Plot{{reliabilityPlot(title, pb, colBefore), reliabilityPlot(afterTitle, pa, colAfter)}}
			hist := [][]*plot.Plot{{histogramPlot(pb, colBefore), histogramPlot(pa, colAfter)}}
			tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Points(14), PadTop: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
			for i, cv := range plot.Align(rel, tiles, top)[0] {
				rel[0][i].Draw(cv)
			}
			for i, cv := range plot.Align(hist, tiles, bottom)[0] {
				hist[0][i].Draw(cv)
			}
		},
	}
}

// binBars returns one rectangle ring per non-empty bin: [lo, hi] × [0, height(bin)].
func binBars(bins []metrics.Bin, height func(metrics.Bin) float64) []plotter.XYer {
	var rings []plotter.XYer
	for _, b := range bins {
		if b.Count == 0 {
			continue
		}
		h := height(b)
		rings = append(rings, plotter.XYs{{X: b.Lo, Y: 0}, {X: b.Hi, Y: 0}, {X: b.Hi, Y: h}, {X: b.Lo, Y: h}})
	}
	return rings
}

func reliabilityPlot(title string, bins []metrics.Bin, col color.NRGBA) *plot.Plot {
	p := newPlot(title, "", "Accuracy")
	p.Title.TextStyle.Font.Size = vg.Points(10.5)
	if rings := binBars(bins, func(b metrics.Bin) float64 { return b.Accuracy }); len(rings) > 0 {
		bars, err := plotter.NewPolygon(rings...)
		if err == nil {
			fill := col
			fill.A = 0xB0
			bars.Color, bars.LineStyle.Color, bars.LineStyle.Width = fill, color.Black, vg.Points(0.4)
			p.Add(bars)
			p.Legend.Add("accuracy per bin", bars)
		}
	}
	if gaps := gapBars(bins); len(gaps) > 0 {
		g, err := plotter.NewPolygon(gaps...)
		if err == nil {
			fill := colGap
			fill.A = 0x60
			g.Color = fill
			g.LineStyle.Color, g.LineStyle.Width = colGap, vg.Points(0.5)
			p.Add(g)
			p.Legend.Add("gap to confidence", g)
		}
	}
	diag, _ := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}})
	diag.Color, diag.Width, diag.Dashes = color.Gray{0x40}, vg.Points(1), []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(diag)
	p.Legend.Add("perfect calibration", diag)
	ece := metrics.ECEFromBins(bins, binTotal(bins))
	lbl, _ := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: 0.03, Y: 0.66}}, Labels: []string{fmt.Sprintf("ECE = %.2f%%", 100*ece)}})
	lbl.TextStyle[0].Font.Size = vg.Points(10.5)
	p.Add(lbl)
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(4), -vg.Points(2)
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	p.X.Tick.Marker = plot.ConstantTicks(unitTicks())
	p.Y.Tick.Marker = plot.ConstantTicks(unitTicks())
	// The histogram below carries the x labels; transparent ones here keep
	// both panels' data areas the same width.
	p.X.Tick.Label.Color = color.Transparent
	return p
}

// gapBars are the rectangles between each bin's accuracy and its mean
// confidence (Guo et al. 2017, Fig. 1 "gap").
func gapBars(bins []metrics.Bin) []plotter.XYer {
	var rings []plotter.XYer
	for _, b := range bins {
		if b.Count == 0 || b.Confidence == b.Accuracy {
			continue
		}
		rings = append(rings, plotter.XYs{{X: b.Lo, Y: b.Accuracy}, {X: b.Hi, Y: b.Accuracy}, {X: b.Hi, Y: b.Confidence}, {X: b.Lo, Y: b.Confidence}})
	}
	return rings
}

func unitTicks() []plot.Tick {
	var t []plot.Tick
	for i := 0; i <= 10; i++ {
		v := float64(i) / 10
		tk := plot.Tick{Value: v}
		if i%2 == 0 {
			tk.Label = strconv.FormatFloat(v, 'f', 1, 64)
		}
		t = append(t, tk)
	}
	return t
}

func histogramPlot(bins []metrics.Bin, col color.NRGBA) *plot.Plot {
	p := newPlot("", "Confidence (top-label probability)", "Share")
	n := float64(binTotal(bins))
	top := 0.0
	if rings := binBars(bins, func(b metrics.Bin) float64 { return float64(b.Count) / n }); len(rings) > 0 {
		bars, err := plotter.NewPolygon(rings...)
		if err == nil {
			fill := col
			fill.A = 0xB0
			bars.Color, bars.LineStyle.Color, bars.LineStyle.Width = fill, color.Black, vg.Points(0.4)
			p.Add(bars)
		}
	}
	for _, b := range bins {
		top = math.Max(top, float64(b.Count)/n)
	}
	p.X.Min, p.X.Max, p.Y.Min = 0, 1, 0
	p.Y.Max = math.Min(1, math.Ceil(top*10+0.5)/10)
	p.X.Tick.Marker = plot.ConstantTicks(unitTicks())
	var yt []plot.Tick
	step := 0.2
	if p.Y.Max <= 0.5 {
		step = 0.1
	}
	for v := 0.0; v <= p.Y.Max+1e-9; v += step {
		yt = append(yt, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', 1, 64)})
	}
	p.Y.Tick.Marker = plot.ConstantTicks(yt)
	return p
}

// sizePoints returns, for a per-size quantity, the (params, mean ± std)
// points of the sizes that have both; dodge multiplies x (log-axis offset).
func (a *Analysis) sizePoints(g Grid, scale, dodge float64) *errPoints {
	pts := &errPoints{}
	for u, size := range a.Study.Sizes {
		p := float64(a.Study.Params(size))
		ag := g.Agg(u)
		if p <= 0 || ag.N == 0 {
			continue
		}
		pts.add(p*dodge, ag.Mean*scale, 0, ag.Std*scale)
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
// teacher parameters (log axis), mean ± std over seeds.
func (a *Analysis) teacherCalibrationFigure() *Figure {
	lo, hi, ok := a.paramRange()
	if !ok {
		return nil
	}
	before := a.sizePoints(a.eceBefore, 100, 1/1.04)
	after := a.sizePoints(a.eceAfter, 100, 1.04)
	temp := a.sizePoints(a.temp, 1, 1)
	if len(before.XYs)+len(after.XYs) == 0 {
		return nil
	}
	hasT := len(temp.XYs) > 0
	cols := 1
	if hasT {
		cols = 2
	}
	return &Figure{
		Name: "teacher-calibration",
		Caption: fmt.Sprintf("Teacher calibration against size: test ECE before and after %s calibration%s, mean ± std over seeds.",
			a.CalMethod, map[bool]string{true: ", and the fitted temperature T (T > 1: the teacher was over-confident)", false: ""}[hasT]),
		W: vg.Length(cols) * 4.2 * vg.Inch, H: 3.6 * vg.Inch,
		Draw: func(c draw.Canvas) {
			p1 := newPlot("Teacher ECE", "Teacher parameters (log scale)", "Test ECE (%)")
			_ = addSeries(p1, before, "uncalibrated", colBefore, draw.CircleGlyph{}, true, false)
			_ = addSeries(p1, after, "after "+a.CalMethod, colAfter, draw.BoxGlyph{}, true, false)
			ylo, yhi := before.yRange()
			alo, ahi := after.yRange()
			headroom(p1, math.Min(0, math.Min(ylo, alo)), math.Max(yhi, ahi), 0.3)
			p1.Y.Min = 0
			logParams(&p1.X, lo, hi)
			p1.Legend.Top, p1.Legend.Left = true, true
			p1.Legend.XOffs = vg.Points(6)
			row := []*plot.Plot{p1}
			if hasT {
				p2 := newPlot("Fitted temperature", "Teacher parameters (log scale)", "T")
				one, _ := plotter.NewLine(plotter.XYs{{X: lo / 1.5, Y: 1}, {X: hi * 1.5, Y: 1}})
				one.Color, one.Dashes = color.Gray{0x60}, []vg.Length{vg.Points(4), vg.Points(3)}
				p2.Add(one)
				p2.Legend.Add("T = 1 (no change)", one)
				_ = addSeries(p2, temp, "fitted T", colAfter, draw.BoxGlyph{}, true, false)
				tlo, thi := temp.yRange()
				headroom(p2, math.Min(tlo, 1), math.Max(thi, 1), 0.3)
				logParams(&p2.X, lo, hi)
				p2.Legend.Top, p2.Legend.Left = true, true
				p2.Legend.XOffs = vg.Points(6)
				row = append(row, p2)
			}
			tiles := draw.Tiles{Rows: 1, Cols: len(row), PadX: vg.Points(18), PadTop: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8), PadBottom: vg.Points(2)}
			for i, cv := range plot.Align([][]*plot.Plot{row}, tiles, c)[0] {
				row[i].Draw(cv)
			}
		},
	}
}

// studentVsSizeFigure: student test accuracy against teacher parameters per
// KD arm (mean ± std over seeds, arms dodged slightly along x), with the
// scratch student as a band (mean ± std).
func (a *Analysis) studentVsSizeFigure(r *SettingResult) *Figure {
	lo, hi, ok := a.paramRange()
	if !ok {
		return nil
	}
	series := map[string]*errPoints{}
	n := 0
	for i, arm := range a.Study.KDArms {
		dodge := math.Pow(1.04, float64(2*i-len(a.Study.KDArms)+1))
		series[arm] = a.sizePoints(r.acc[arm], 100, dodge)
		n += len(series[arm].XYs)
	}
	if n == 0 {
		return nil
	}
	return &Figure{
		Name: "student-vs-size-" + r.Name,
		Caption: fmt.Sprintf("Student test accuracy against teacher size (%s), mean ± std over seeds; "+
			"grey band: scratch student (no teacher) mean ± std.", settingTitle(r.Setting.Tau, r.Setting.KDWeight, r.Setting.Epochs)),
		W: 6 * vg.Inch, H: 4.2 * vg.Inch,
		Draw: func(c draw.Canvas) {
			p := newPlot("Student accuracy vs teacher size ("+settingTitle(r.Setting.Tau, r.Setting.KDWeight, r.Setting.Epochs)+")",
				"Teacher parameters (log scale)", "Student test accuracy (%)")
			ylo, yhi := math.Inf(1), math.Inf(-1)
			var band []plot.Thumbnailer
			if a.Study.Scratch && r.Scratch.Acc.N > 0 {
				band = addBand(p, r.Scratch.Acc, lo/1.5, hi*1.5, 100)
				sd := zeroNaN(r.Scratch.Acc.Std)
				ylo, yhi = 100*(r.Scratch.Acc.Mean-sd), 100*(r.Scratch.Acc.Mean+sd)
			}
			for _, arm := range a.Study.KDArms {
				pts := series[arm]
				_ = addSeries(p, pts, armTitle(arm, a.CalMethod), armColor(arm), armGlyph(arm), true, false)
				l, h := pts.yRange()
				ylo, yhi = math.Min(ylo, l), math.Max(yhi, h)
			}
			if band != nil {
				p.Legend.Add(scratchLegend, band...)
			}
			headroom(p, ylo, yhi, 0.35)
			logParams(&p.X, lo, hi)
			p.Legend.Top, p.Legend.Left = true, true
			p.Legend.XOffs = vg.Points(6)
			p.Draw(draw.Crop(c, vg.Points(4), -vg.Points(10), vg.Points(2), -vg.Points(4)))
		},
	}
}

func zeroNaN(x float64) float64 {
	if math.IsNaN(x) {
		return 0
	}
	return x
}

// studentVsTeacherAccFigure: student test accuracy against teacher test
// accuracy per KD arm, one point per size (mean ± std over seeds on both
// axes, labelled with the size), with the scratch band.
func (a *Analysis) studentVsTeacherAccFigure(r *SettingResult) *Figure {
	type pt struct {
		size string
		x, y Agg
	}
	byArm := map[string][]pt{}
	n := 0
	for _, arm := range a.Study.KDArms {
		for u, size := range a.Study.Sizes {
			ta, sa := a.teacherAcc.Agg(u), r.acc[arm].Agg(u)
			if ta.N > 0 && sa.N > 0 {
				byArm[arm] = append(byArm[arm], pt{size, ta, sa})
				n++
			}
		}
	}
	if n == 0 {
		return nil
	}
	return &Figure{
		Name: "student-vs-teacher-acc-" + r.Name,
		Caption: fmt.Sprintf("Student against teacher test accuracy (%s), one point per teacher size, mean ± std over seeds on both axes; "+
			"grey band: scratch student.", settingTitle(r.Setting.Tau, r.Setting.KDWeight, r.Setting.Epochs)),
		W: 6 * vg.Inch, H: 4.2 * vg.Inch,
		Draw: func(c draw.Canvas) {
			p := newPlot("Student vs teacher accuracy ("+settingTitle(r.Setting.Tau, r.Setting.KDWeight, r.Setting.Epochs)+")",
				"Teacher test accuracy (%)", "Student test accuracy (%)")
			xlo, xhi, ylo, yhi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
			var labels plotter.XYLabels
			series := map[string]*errPoints{}
			for _, arm := range a.Study.KDArms {
				pts := &errPoints{}
				for _, q := range byArm[arm] {
					pts.add(100*q.x.Mean, 100*q.y.Mean, 100*zeroNaN(q.x.Std), 100*zeroNaN(q.y.Std))
					xlo, xhi = math.Min(xlo, 100*(q.x.Mean-zeroNaN(q.x.Std))), math.Max(xhi, 100*(q.x.Mean+zeroNaN(q.x.Std)))
					if arm == a.Study.KDArms[0] {
						labels.XYs = append(labels.XYs, plotter.XY{X: 100 * q.x.Mean, Y: 100 * q.y.Mean})
						labels.Labels = append(labels.Labels, "  "+q.size)
					}
				}
				l, h := pts.yRange()
				ylo, yhi = math.Min(ylo, l), math.Max(yhi, h)
				series[arm] = pts
			}
			xr := math.Max(xhi-xlo, 0.5)
			x0, x1 := xlo-0.12*xr, xhi+0.18*xr
			var band []plot.Thumbnailer
			if a.Study.Scratch && r.Scratch.Acc.N > 0 {
				band = addBand(p, r.Scratch.Acc, x0, x1, 100)
				sd := zeroNaN(r.Scratch.Acc.Std)
				ylo, yhi = math.Min(ylo, 100*(r.Scratch.Acc.Mean-sd)), math.Max(yhi, 100*(r.Scratch.Acc.Mean+sd))
			}
			for _, arm := range a.Study.KDArms {
				_ = addSeries(p, series[arm], armTitle(arm, a.CalMethod), armColor(arm), armGlyph(arm), false, true)
			}
			if band != nil {
				p.Legend.Add(scratchLegend, band...)
			}
			if len(labels.XYs) > 0 {
				if lbl, err := plotter.NewLabels(labels); err == nil {
					for i := range lbl.TextStyle {
						lbl.TextStyle[i].Font.Size = vg.Points(9)
						lbl.TextStyle[i].Color = color.Gray{0x30}
						lbl.TextStyle[i].YAlign = draw.YTop
					}
					p.Add(lbl)
				}
			}
			headroom(p, ylo, yhi, 0.35)
			p.X.Min, p.X.Max = x0, x1
			p.Legend.Top, p.Legend.Left = true, true
			p.Legend.XOffs = vg.Points(6)
			p.Draw(draw.Crop(c, vg.Points(4), -vg.Points(10), vg.Points(2), -vg.Points(4)))
		},
	}
}

// effTempFigure: student test accuracy against the effective KD temperature
// τ·T over every (setting, size) cell; colour = arm, marker = teacher size.
func (a *Analysis) effTempFigure() *Figure {
	s := a.Study
	type cell struct {
		arm  string
		size int
		x, y Agg
	}
	var cells []cell
	for _, arm := range s.KDArms {
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
				if x, y := aggregate(xs), aggregate(ys); x.N > 0 && x.Mean > 0 {
					cells = append(cells, cell{arm, u, x, y})
				}
			}
		}
	}
	if len(cells) == 0 {
		return nil
	}
	return &Figure{
		Name: "student-vs-effective-temperature",
		Caption: "Student test accuracy against the effective KD temperature τ·T (T = 1 for raw KD, the fitted T for calibrated KD), " +
			"one point per (KD setting, teacher size), mean ± std over seeds, all KD settings together; colour: arm, marker: teacher size " +
			"(sizes dodged by ±1.5% along x).",
		W: 6 * vg.Inch, H: 4.2 * vg.Inch,
		Draw: func(c draw.Canvas) {
			p := newPlot("Student accuracy vs effective KD temperature", "Effective temperature τ·T (log scale)", "Student test accuracy (%)")
			xlo, xhi, ylo, yhi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
			type series struct {
				name string
				arm  string
				u    int
				pts  *errPoints
			}
			var all []series
			for _, arm := range s.KDArms {
				for u := range s.Sizes {
					pts := &errPoints{}
					for _, q := range cells {
						if q.arm == arm && q.size == u {
							// Sizes are dodged by ±1.5% per step along the log x axis so
							// that cells with the same τ·T do not hide each other.
							dodge := math.Pow(1.015, float64(u)-float64(len(s.Sizes)-1)/2)
							pts.add(q.x.Mean*dodge, 100*q.y.Mean, 0, 100*zeroNaN(q.y.Std))
							xlo, xhi = math.Min(xlo, q.x.Mean), math.Max(xhi, q.x.Mean)
						}
					}
					if len(pts.XYs) == 0 {
						continue
					}
					sort.Sort(byX{pts})
					l, h := pts.yRange()
					ylo, yhi = math.Min(ylo, l), math.Max(yhi, h)
					all = append(all, series{armShort(arm) + ", teacher " + s.Sizes[u], arm, u, pts})
				}
			}
			var band []plot.Thumbnailer
			if s.Scratch {
				var sc []float64
				for _, e := range uniqueEpochs(s) {
					acc, _ := a.scratchRow(e)
					sc = append(sc, acc...)
				}
				if ag := aggregate(sc); ag.N > 0 {
					band = addBand(p, ag, xlo/1.4, xhi*1.4, 100)
					ylo, yhi = math.Min(ylo, 100*(ag.Mean-zeroNaN(ag.Std))), math.Max(yhi, 100*(ag.Mean+zeroNaN(ag.Std)))
				}
			}
			for _, q := range all {
				_ = addSeries(p, q.pts, "", armColor(q.arm), sizeGlyphs[q.u%len(sizeGlyphs)], false, false)
			}
			// Legend: colour = arm (a line swatch), marker = teacher size (in black).
			for _, arm := range s.KDArms {
				l, _ := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}})
				l.Color, l.Width = armColor(arm), vg.Points(4)
				p.Legend.Add(armTitle(arm, a.CalMethod), l)
			}
			for u, size := range s.Sizes {
				sc, _ := plotter.NewScatter(plotter.XYs{{X: 0, Y: 0}})
				sc.GlyphStyle = draw.GlyphStyle{Color: color.Black, Radius: vg.Points(3.5), Shape: sizeGlyphs[u%len(sizeGlyphs)]}
				p.Legend.Add(fmt.Sprintf("teacher %s (%s)", size, fmtParams(s.Params(size))), sc)
			}
			if band != nil {
				p.Legend.Add(scratchLegend, band...)
			}
			headroom(p, ylo, yhi, 0.11*float64(len(s.KDArms)+len(s.Sizes)+1))
			p.X.Scale = plot.LogScale{}
			p.X.Tick.Marker = logTicks{format: plainLabel}
			p.X.Min, p.X.Max = xlo/1.4, xhi*1.4
			p.Legend.Top, p.Legend.Left = true, true
			p.Legend.XOffs = vg.Points(6)
			p.Draw(draw.Crop(c, vg.Points(4), -vg.Points(10), vg.Points(2), -vg.Points(4)))
		},
	}
}

type byX struct{ *errPoints }

func (b byX) Len() int           { return len(b.XYs) }
func (b byX) Less(i, j int) bool { return b.XYs[i].X < b.XYs[j].X }
func (b byX) Swap(i, j int) {
	b.XYs[i], b.XYs[j] = b.XYs[j], b.XYs[i]
	b.XErrors[i], b.XErrors[j] = b.XErrors[j], b.XErrors[i]
	b.YErrors[i], b.YErrors[j] = b.YErrors[j], b.YErrors[i]
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

// Render draws f in format ("png" or "svg") to w. PNGs are DPI dots per inch.
func (f Figure) Render(w io.Writer, format string) error {
	var cw io.WriterTo
	paint := func(c vg.CanvasSizer) {
		dc := draw.New(c)
		dc.SetColor(color.White) // opaque background, also in SVG (dark-mode viewers)
		dc.Fill(dc.Rectangle.Path())
		f.Draw(dc)
	}
	switch format {
	case "png":
		ic := vgimg.NewWith(vgimg.UseWH(f.W, f.H), vgimg.UseDPI(DPI))
		paint(ic)
		cw = vgimg.PngCanvas{Canvas: ic}
	case "svg":
		sc := vgsvg.NewWith(vgsvg.UseWH(f.W, f.H), vgsvg.EmbedFonts(false))
		paint(sc)
		cw = sc
	default:
		panic("report: unknown figure format " + format)
	}
	_, err := cw.WriteTo(w)
	return err
}

// PixelSize returns the PNG size of f in pixels.
func (f Figure) PixelSize() (w, h int) {
	return int(f.W/vg.Inch*DPI + 0.5), int(f.H/vg.Inch*DPI + 0.5)
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
