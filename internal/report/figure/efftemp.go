package figure

import (
	"image/color"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// EffectiveTemperatureData is accuracy against the effective KD temperature
// over (setting, teacher size) cells: one Cell per arm and size and setting,
// with the arms' labels and colours and the sizes' legend labels.
type EffectiveTemperatureData struct {
	Arms     []Series // Label and Style.Color of each arm; Points unused
	Sizes    []string // legend label of each teacher size
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

// EffectiveTemperature draws every cell as a marker with a y error bar on a
// log x axis: colour = arm, marker = teacher size, sizes dodged by ±1.5% per
// step along x so that cells with the same τ·T do not hide each other, over
// the baseline band. 6 × 4.2 inches.
func EffectiveTemperature(d EffectiveTemperatureData) (*Figure, error) {
	p := newPlot("Student accuracy vs effective KD temperature", "Effective temperature τ·T (log scale)", "Student test accuracy (%)")
	xlo, xhi, ylo, yhi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	type series struct {
		arm, size int
		pts       *Points
	}
	var all []series
	for a := range d.Arms {
		for u := range d.Sizes {
			pts := &Points{}
			for _, q := range d.Cells {
				if q.Arm == a && q.Size == u {
					shift := math.Pow(1.015, float64(u)-float64(len(d.Sizes)-1)/2)
					pts.Add(q.X*shift, q.Y, 0, q.YErr)
					xlo, xhi = math.Min(xlo, q.X), math.Max(xhi, q.X)
				}
			}
			if pts.Len() == 0 {
				continue
			}
			sort.Sort(byX{pts})
			l, h := pts.yRange()
			ylo, yhi = math.Min(ylo, l), math.Max(yhi, h)
			all = append(all, series{a, u, pts})
		}
	}
	var band []plot.Thumbnailer
	if d.Baseline != nil {
		var err error
		if band, err = addBand(p, d.Baseline, xlo/1.4, xhi*1.4); err != nil {
			return nil, err
		}
		ylo, yhi = math.Min(ylo, d.Baseline.Mean-d.Baseline.sd()), math.Max(yhi, d.Baseline.Mean+d.Baseline.sd())
	}
	for _, q := range all {
		st := Style{Color: d.Arms[q.arm].Style.Color, Glyph: sizeGlyphs[q.size%len(sizeGlyphs)]}
		if err := addSeries(p, q.pts, "", st, false, false); err != nil {
			return nil, err
		}
	}
	// Legend: colour = arm (a line swatch), marker = teacher size (in black).
	for _, arm := range d.Arms {
		l, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}})
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = arm.Style.Color, vg.Points(4)
		p.Legend.Add(arm.Label, l)
	}
	for u, size := range d.Sizes {
		sc, err := plotter.NewScatter(plotter.XYs{{X: 0, Y: 0}})
		if err != nil {
			return nil, err
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: color.Black, Radius: vg.Points(3.5), Shape: sizeGlyphs[u%len(sizeGlyphs)]}
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
	return &Figure{W: 6 * vg.Inch, H: 4.2 * vg.Inch, draw: single(p)}, nil
}

type byX struct{ *Points }

func (b byX) Len() int           { return len(b.XYs) }
func (b byX) Less(i, j int) bool { return b.XYs[i].X < b.XYs[j].X }
func (b byX) Swap(i, j int) {
	b.XYs[i], b.XYs[j] = b.XYs[j], b.XYs[i]
	b.XErrors[i], b.XErrors[j] = b.XErrors[j], b.XErrors[i]
	b.YErrors[i], b.YErrors[j] = b.YErrors[j], b.YErrors[i]
}
