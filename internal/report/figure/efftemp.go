package figure

import (
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// EffectiveTemperatureData is accuracy against the effective KD temperature
// over (setting, teacher size) cells: one Cell per arm and size and setting,
// with the arms' labels and styles and the sizes' legend labels (smallest
// teacher first).
type EffectiveTemperatureData struct {
	Arms     []Series // Label and Style of each arm; Points unused
	Sizes    []string // legend label of each teacher size, smallest first
	Cells    []Cell
	Baseline *Band
}

// Cell is one point of EffectiveTemperature: arm Arm and size Size (indices
// into the data's Arms and Sizes), at effective temperature X with accuracy
// Y ± YErr (in %).
type Cell struct {
	Arm, Size  int
	X, Y, YErr float64
}

// markerRadius is the marker radius of teacher size u of n: 2.5 pt for the
// smallest to 5 pt for the largest.
func markerRadius(u, n int) vg.Length {
	if n < 2 {
		return vg.Points(3.5)
	}
	return vg.Points(2.5 + 2.5*float64(u)/float64(n-1))
}

// EffectiveTemperature draws every cell at its true (τ·T, accuracy) on a
// log x axis, with a y error bar: colour and marker shape = arm (the arm's
// Style), marker size = teacher size (larger teacher, larger marker). Cells
// with the same τ·T stay at the same x: every error bar is drawn beneath
// every marker, and larger markers are drawn first, each on a white halo, so
// that coinciding points remain visible. The baseline band is drawn
// beneath. 6 × 4.2 inches.
func EffectiveTemperature(d EffectiveTemperatureData) (*Figure, error) {
	return newFigure(6*vg.Inch, 4.2*vg.Inch, func(h text.Handler) (*drawing, error) {
		p := newPlot(h, "Student accuracy vs effective KD temperature", "Effective temperature τ·T (log scale)", "Student test accuracy (%)")
		xlo, xhi, ylo, yhi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
		byCell := map[[2]int]*Points{}
		for _, q := range d.Cells {
			k := [2]int{q.Arm, q.Size}
			if byCell[k] == nil {
				byCell[k] = &Points{}
			}
			byCell[k].Add(q.X, q.Y, 0, q.YErr)
			xlo, xhi = math.Min(xlo, q.X), math.Max(xhi, q.X)
		}
		for _, pts := range byCell {
			l, h := pts.yRange()
			ylo, yhi = math.Min(ylo, l), math.Max(yhi, h)
		}
		var band []plot.Thumbnailer
		if d.Baseline != nil {
			var err error
			if band, err = addBand(p, d.Baseline, xlo/1.4, xhi*1.4); err != nil {
				return nil, err
			}
			ylo, yhi = math.Min(ylo, d.Baseline.Mean-d.Baseline.sd()), math.Max(yhi, d.Baseline.Mean+d.Baseline.sd())
		}
		for _, bars := range []bool{true, false} {
			for u := len(d.Sizes) - 1; u >= 0; u-- {
				for a, arm := range d.Arms {
					if pts := byCell[[2]int{a, u}]; pts != nil {
						if err := addMarkers(p, pts, arm.Style, markerRadius(u, len(d.Sizes)), bars); err != nil {
							return nil, err
						}
					}
				}
			}
		}
		// Legend: one entry per arm (its colour and marker), then one per
		// teacher size (a black ring of that size's radius).
		for _, arm := range d.Arms {
			sc, err := plotter.NewScatter(plotter.XYs{{X: 0, Y: 0}})
			if err != nil {
				return nil, err
			}
			sc.GlyphStyle = draw.GlyphStyle{Color: arm.Style.Color, Radius: vg.Points(3.5), Shape: arm.Style.Glyph}
			p.Legend.Add(arm.Label, sc)
		}
		for u, size := range d.Sizes {
			sc, err := plotter.NewScatter(plotter.XYs{{X: 0, Y: 0}})
			if err != nil {
				return nil, err
			}
			sc.GlyphStyle = draw.GlyphStyle{Color: color.Black, Radius: markerRadius(u, len(d.Sizes)), Shape: draw.RingGlyph{}}
			p.Legend.Add(size, sc)
		}
		if band != nil {
			p.Legend.Add(d.Baseline.Label, band...)
		}
		headroom(p, ylo, yhi, 0.11*float64(len(d.Arms)+len(d.Sizes)+1))
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = logTicks{format: plainLabel}
		p.X.Min, p.X.Max = xlo/1.4, xhi*1.4
		legendTopLeft(p)
		return single(p), nil
	})
}

// addMarkers draws the y error bars of pts (bars) or its markers of radius
// r on a white halo, in style st.
func addMarkers(p *plot.Plot, pts *Points, st Style, r vg.Length, bars bool) error {
	if bars {
		yb, err := plotter.NewYErrorBars(pts)
		if err != nil {
			return err
		}
		yb.Color, yb.Width, yb.CapWidth = st.Color, vg.Points(1), vg.Points(5)
		p.Add(yb)
		return nil
	}
	halo, err := plotter.NewScatter(pts.XYs)
	if err != nil {
		return err
	}
	halo.GlyphStyle = draw.GlyphStyle{Color: color.White, Radius: r + vg.Points(1), Shape: st.Glyph}
	sc, err := plotter.NewScatter(pts.XYs)
	if err != nil {
		return err
	}
	sc.GlyphStyle = draw.GlyphStyle{Color: st.Color, Radius: r, Shape: st.Glyph}
	p.Add(halo, sc)
	return nil
}
