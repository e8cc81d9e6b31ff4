package figure

import (
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/kdcal/kdcal/internal/metrics"
)

// ReliabilityData is one model's reliability diagrams before and after
// calibration: equal-width confidence bins with accuracy, mean confidence
// and count per bin, and the ECE to print in each panel.
type ReliabilityData struct {
	BeforeTitle, AfterTitle string
	Before, After           []metrics.Bin
	BeforeECE, AfterECE     float64 // fractions; printed as %
}

// Reliability draws two reliability diagrams side by side, before
// (vermillion) and after (green) calibration: accuracy per confidence bin,
// the gap to the bin's mean confidence (Guo et al. 2017, Fig. 1) and the
// diagonal of perfect calibration; below each, the share of examples per
// bin. 7 × 5 inches.
func Reliability(d ReliabilityData) (*Figure, error) {
	return newFigure(7*vg.Inch, 5*vg.Inch, func(h text.Handler) (*drawing, error) {
		rb, err := reliabilityPlot(h, d.BeforeTitle, d.Before, d.BeforeECE, colBefore)
		if err != nil {
			return nil, err
		}
		ra, err := reliabilityPlot(h, d.AfterTitle, d.After, d.AfterECE, colAfter)
		if err != nil {
			return nil, err
		}
		top := math.Max(maxShare(d.Before), maxShare(d.After))
		hb, err := histogramPlot(h, d.Before, colBefore, top)
		if err != nil {
			return nil, err
		}
		ha, err := histogramPlot(h, d.After, colAfter, top)
		if err != nil {
			return nil, err
		}
		rel := [][]*plot.Plot{{rb, ra}}
		hist := [][]*plot.Plot{{hb, ha}}
		tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Points(14), PadTop: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
		return &drawing{plots: []*plot.Plot{rb, ra, hb, ha}, draw: func(c draw.Canvas) {
			top := draw.Crop(c, 0, 0, c.Size().Y*0.34, 0)
			bottom := draw.Crop(c, 0, 0, 0, -c.Size().Y*0.68)
			for i, cv := range plot.Align(rel, tiles, top)[0] {
				rel[0][i].Draw(cv)
			}
			for i, cv := range plot.Align(hist, tiles, bottom)[0] {
				hist[0][i].Draw(cv)
			}
		}}, nil
	})
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

func binTotal(bins []metrics.Bin) int {
	var n int
	for _, b := range bins {
		n += b.Count
	}
	return n
}

func reliabilityPlot(h text.Handler, title string, bins []metrics.Bin, ece float64, col color.NRGBA) (*plot.Plot, error) {
	p := newPlot(h, title, "", "Accuracy")
	p.Title.TextStyle.Font.Size = vg.Points(10.5)
	if rings := binBars(bins, func(b metrics.Bin) float64 { return b.Accuracy }); len(rings) > 0 {
		bars, err := plotter.NewPolygon(rings...)
		if err != nil {
			return nil, err
		}
		fill := col
		fill.A = 0xB0
		bars.Color, bars.LineStyle.Color, bars.LineStyle.Width = fill, color.Black, vg.Points(0.4)
		p.Add(bars)
		p.Legend.Add("accuracy per bin", bars)
	}
	if gaps := gapBars(bins); len(gaps) > 0 {
		g, err := plotter.NewPolygon(gaps...)
		if err != nil {
			return nil, err
		}
		fill := colGap
		fill.A = 0x60
		g.Color = fill
		g.LineStyle.Color, g.LineStyle.Width = colGap, vg.Points(0.5)
		p.Add(g)
		p.Legend.Add("gap to confidence", g)
	}
	diag, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}})
	if err != nil {
		return nil, err
	}
	diag.Color, diag.Width, diag.Dashes = color.Gray{0x40}, vg.Points(1), []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(diag)
	p.Legend.Add("perfect calibration", diag)
	lbl, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: 0.03, Y: 0.66}}, Labels: []string{fmt.Sprintf("ECE = %.2f%%", 100*ece)}})
	if err != nil {
		return nil, err
	}
	lbl.TextStyle[0].Font.Size = vg.Points(10.5)
	lbl.TextStyle[0].Handler = h
	p.Add(lbl)
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(4), -vg.Points(2)
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	p.X.Tick.Marker = plot.ConstantTicks(unitTicks())
	p.Y.Tick.Marker = plot.ConstantTicks(unitTicks())
	// The histogram below carries the x labels; transparent ones here keep
	// both panels' data areas the same width.
	p.X.Tick.Label.Color = color.Transparent
	return p, nil
}

// maxShare returns the largest share of examples in one bin.
func maxShare(bins []metrics.Bin) float64 {
	n := float64(binTotal(bins))
	top := 0.0
	for _, b := range bins {
		top = math.Max(top, float64(b.Count)/n)
	}
	return top
}

// histogramPlot draws the share of examples per bin on a y axis from 0 to
// top rounded up to a tenth (at most 1).
func histogramPlot(h text.Handler, bins []metrics.Bin, col color.NRGBA, top float64) (*plot.Plot, error) {
	p := newPlot(h, "", "Confidence (top-label probability)", "Share")
	n := float64(binTotal(bins))
	if rings := binBars(bins, func(b metrics.Bin) float64 { return float64(b.Count) / n }); len(rings) > 0 {
		bars, err := plotter.NewPolygon(rings...)
		if err != nil {
			return nil, err
		}
		fill := col
		fill.A = 0xB0
		bars.Color, bars.LineStyle.Color, bars.LineStyle.Width = fill, color.Black, vg.Points(0.4)
		p.Add(bars)
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
	return p, nil
}
