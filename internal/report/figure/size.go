package figure

import (
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// TeacherCalibrationData is a model-size sweep of calibration: test ECE
// (in %) before and after calibration, and optionally the fitted
// temperature, each against the parameter count (mean ± std over seeds).
type TeacherCalibrationData struct {
	Before, After         *Points // ECE (%) against parameters
	BeforeLabel, AfterLab string
	Temperature           *Points // fitted T against parameters; empty = no second panel
	ParamLo, ParamHi      float64 // smallest and largest parameter count (the x range)
}

// TeacherCalibration draws ECE before (vermillion circles) and after (green
// squares) against parameters on a log axis and, when there are
// temperatures, a second panel with the fitted T and the line T = 1. Points
// sit at their true parameter count. 4.2 × 3.6 inches per panel.
func TeacherCalibration(d TeacherCalibrationData) (*Figure, error) {
	cols := 1
	if d.Temperature != nil && d.Temperature.Len() > 0 {
		cols = 2
	}
	return newFigure(vg.Length(cols)*4.2*vg.Inch, 3.6*vg.Inch, func(h text.Handler) (*drawing, error) {
		lo, hi := d.ParamLo, d.ParamHi
		p1 := newPlot(h, "Teacher ECE", "Teacher parameters (log scale)", "Test ECE (%)")
		before, after := d.Before, d.After
		if err := addSeries(p1, before, d.BeforeLabel, Style{colBefore, draw.CircleGlyph{}}, true, false); err != nil {
			return nil, err
		}
		if err := addSeries(p1, after, d.AfterLab, Style{colAfter, draw.BoxGlyph{}}, true, false); err != nil {
			return nil, err
		}
		ylo, yhi := before.yRange()
		alo, ahi := after.yRange()
		headroom(p1, math.Min(0, math.Min(ylo, alo)), math.Max(yhi, ahi), 0.3)
		p1.Y.Min = 0
		logParams(&p1.X, lo, hi)
		legendTopLeft(p1)
		row := []*plot.Plot{p1}
		if d.Temperature != nil && d.Temperature.Len() > 0 {
			p2 := newPlot(h, "Fitted temperature", "Teacher parameters (log scale)", "T")
			one, err := plotter.NewLine(plotter.XYs{{X: lo / 1.5, Y: 1}, {X: hi * 1.5, Y: 1}})
			if err != nil {
				return nil, err
			}
			one.Color, one.Dashes = color.Gray{0x60}, []vg.Length{vg.Points(4), vg.Points(3)}
			p2.Add(one)
			p2.Legend.Add("T = 1 (no change)", one)
			if err := addSeries(p2, d.Temperature, "fitted T", Style{colAfter, draw.BoxGlyph{}}, true, false); err != nil {
				return nil, err
			}
			tlo, thi := d.Temperature.yRange()
			headroom(p2, math.Min(tlo, 1), math.Max(thi, 1), 0.3)
			logParams(&p2.X, lo, hi)
			legendTopLeft(p2)
			row = append(row, p2)
		}
		tiles := draw.Tiles{Rows: 1, Cols: len(row), PadX: vg.Points(18), PadTop: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8), PadBottom: vg.Points(2)}
		return &drawing{plots: row, draw: func(c draw.Canvas) {
			for i, cv := range plot.Align([][]*plot.Plot{row}, tiles, c)[0] {
				row[i].Draw(cv)
			}
		}}, nil
	})
}

// StudentVsSizeData is one accuracy-against-model-size panel: a series per
// arm (accuracy in % against the teacher's parameter count) and an optional
// baseline band.
type StudentVsSizeData struct {
	Title            string
	Series           []Series
	Baseline         *Band
	ParamLo, ParamHi float64
}

// StudentVsSize draws each series as a line with markers and y error bars
// against parameters on a log axis, every point at its true parameter count
// (series are told apart by colour and marker), over the baseline band.
// 6 × 4.2 inches.
func StudentVsSize(d StudentVsSizeData) (*Figure, error) {
	return newFigure(6*vg.Inch, 4.2*vg.Inch, func(h text.Handler) (*drawing, error) {
		lo, hi := d.ParamLo, d.ParamHi
		p := newPlot(h, d.Title, "Teacher parameters (log scale)", "Student test accuracy (%)")
		ylo, yhi := math.Inf(1), math.Inf(-1)
		var band []plot.Thumbnailer
		if d.Baseline != nil {
			var err error
			if band, err = addBand(p, d.Baseline, lo/1.5, hi*1.5); err != nil {
				return nil, err
			}
			ylo, yhi = d.Baseline.Mean-d.Baseline.sd(), d.Baseline.Mean+d.Baseline.sd()
		}
		for _, s := range d.Series {
			pts := s.Points
			if err := addSeries(p, pts, s.Label, s.Style, true, false); err != nil {
				return nil, err
			}
			l, h := pts.yRange()
			ylo, yhi = math.Min(ylo, l), math.Max(yhi, h)
		}
		if band != nil {
			p.Legend.Add(d.Baseline.Label, band...)
		}
		headroom(p, ylo, yhi, 0.35)
		logParams(&p.X, lo, hi)
		legendTopLeft(p)
		return single(p), nil
	})
}

// StudentVsTeacherAccData is one accuracy-against-accuracy panel: a series
// per arm with x and y error bars, text labels at points, and an optional
// baseline band (all in %).
type StudentVsTeacherAccData struct {
	Title    string
	Series   []Series
	Labels   plotter.XYLabels
	Baseline *Band
}

// StudentVsTeacherAcc draws each series as markers with x and y error bars
// over the baseline band, and the labels (9 pt, below right of their point
// unless another corner overlaps less: placedLabels).
// 6 × 4.2 inches.
func StudentVsTeacherAcc(d StudentVsTeacherAccData) (*Figure, error) {
	return newFigure(6*vg.Inch, 4.2*vg.Inch, func(h text.Handler) (*drawing, error) {
		p := newPlot(h, d.Title, "Teacher test accuracy (%)", "Student test accuracy (%)")
		xlo, xhi, ylo, yhi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
		for _, s := range d.Series {
			l, h := s.Points.xRange()
			xlo, xhi = math.Min(xlo, l), math.Max(xhi, h)
			l, h = s.Points.yRange()
			ylo, yhi = math.Min(ylo, l), math.Max(yhi, h)
		}
		xr := math.Max(xhi-xlo, 0.5)
		x0, x1 := xlo-0.12*xr, xhi+0.18*xr
		var band []plot.Thumbnailer
		if d.Baseline != nil {
			var err error
			if band, err = addBand(p, d.Baseline, x0, x1); err != nil {
				return nil, err
			}
			ylo, yhi = math.Min(ylo, d.Baseline.Mean-d.Baseline.sd()), math.Max(yhi, d.Baseline.Mean+d.Baseline.sd())
		}
		for _, s := range d.Series {
			if err := addSeries(p, s.Points, s.Label, s.Style, false, true); err != nil {
				return nil, err
			}
		}
		if band != nil {
			p.Legend.Add(d.Baseline.Label, band...)
		}
		if len(d.Labels.XYs) > 0 {
			var obst []*Points
			for _, s := range d.Series {
				obst = append(obst, s.Points)
			}
			p.Add(&placedLabels{xys: d.Labels.XYs, labels: d.Labels.Labels, obstacles: obst,
				style: text.Style{Color: color.Gray{0x30}, Font: font.From(plot.DefaultFont, vg.Points(9)), Handler: h}})
		}
		headroom(p, ylo, yhi, 0.35)
		p.X.Min, p.X.Max = x0, x1
		legendTopLeft(p)
		return single(p), nil
	})
}
