package figure

import (
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Points holds points with symmetric x and y errors; it is a plotter.XYer,
// plotter.XErrorer and plotter.YErrorer.
type Points struct {
	plotter.XYs
	plotter.XErrors
	plotter.YErrors
}

// Add appends the point (x, y) with errors ±xerr and ±yerr; a NaN error
// (e.g. the standard deviation of one value) is drawn as none.
func (e *Points) Add(x, y, xerr, yerr float64) {
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

// Len returns the number of points.
func (e *Points) Len() int { return len(e.XYs) }

// yRange returns the range of y ± yerr (+Inf, −Inf when empty).
func (e *Points) yRange() (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for i, p := range e.XYs {
		lo, hi = math.Min(lo, p.Y-e.YErrors[i].Low), math.Max(hi, p.Y+e.YErrors[i].High)
	}
	return lo, hi
}

// xRange returns the range of x ± xerr (+Inf, −Inf when empty).
func (e *Points) xRange() (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for i, p := range e.XYs {
		lo, hi = math.Min(lo, p.X-e.XErrors[i].Low), math.Max(hi, p.X+e.XErrors[i].High)
	}
	return lo, hi
}

// Series is one labelled set of points drawn in one style.
type Series struct {
	Label  string
	Style  Style
	Points *Points
}

// Band is a baseline drawn as a horizontal band Mean ± Std with a dashed
// line at Mean; a NaN Std draws the line alone.
type Band struct {
	Label     string
	Mean, Std float64
}

func (b *Band) sd() float64 {
	if math.IsNaN(b.Std) {
		return 0
	}
	return b.Std
}

// addSeries draws one series: a line through the means (when line), markers,
// and y (and x, when xerr) error bars; it registers a legend entry unless
// name is empty.
func addSeries(p *plot.Plot, pts *Points, name string, st Style, line, xerr bool) error {
	if len(pts.XYs) == 0 {
		return nil
	}
	var thumbs []plot.Thumbnailer
	if line {
		l, err := plotter.NewLine(pts.XYs)
		if err != nil {
			return err
		}
		l.Color, l.Width = st.Color, vg.Points(1.4)
		p.Add(l)
		thumbs = append(thumbs, l)
	}
	yb, err := plotter.NewYErrorBars(pts)
	if err != nil {
		return err
	}
	yb.Color, yb.Width, yb.CapWidth = st.Color, vg.Points(1), vg.Points(5)
	p.Add(yb)
	if xerr {
		xb, err := plotter.NewXErrorBars(pts)
		if err != nil {
			return err
		}
		xb.Color, xb.Width, xb.CapWidth = st.Color, vg.Points(1), vg.Points(5)
		p.Add(xb)
	}
	sc, err := plotter.NewScatter(pts.XYs)
	if err != nil {
		return err
	}
	sc.GlyphStyle = draw.GlyphStyle{Color: st.Color, Radius: vg.Points(3.5), Shape: st.Glyph}
	p.Add(sc)
	thumbs = append(thumbs, sc)
	if name != "" {
		p.Legend.Add(name, thumbs...)
	}
	return nil
}

// addBand draws b as a horizontal band over [x0, x1] with a dashed line at
// the mean, and returns its legend thumbnails (the caller adds the entry, so
// that the band can be drawn first but listed last).
func addBand(p *plot.Plot, b *Band, x0, x1 float64) ([]plot.Thumbnailer, error) {
	m, sd := b.Mean, b.sd()
	poly, err := plotter.NewPolygon(plotter.XYs{{X: x0, Y: m - sd}, {X: x1, Y: m - sd}, {X: x1, Y: m + sd}, {X: x0, Y: m + sd}})
	if err != nil {
		return nil, err
	}
	poly.Color, poly.LineStyle.Width = colBand, 0
	l, err := plotter.NewLine(plotter.XYs{{X: x0, Y: m}, {X: x1, Y: m}})
	if err != nil {
		return nil, err
	}
	l.Color, l.Width, l.Dashes = Grey, vg.Points(1.2), []vg.Length{vg.Points(5), vg.Points(3)}
	p.Add(poly, l)
	return []plot.Thumbnailer{poly, l}, nil
}
