package figure

import (
	"image/color"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Okabe–Ito colour-blind-safe palette (Okabe & Ito 2008).
var (
	Blue          = color.NRGBA{0x00, 0x72, 0xB2, 0xFF}
	Vermillion    = color.NRGBA{0xD5, 0x5E, 0x00, 0xFF}
	Grey          = color.NRGBA{0x66, 0x66, 0x66, 0xFF}
	BluishGreen   = color.NRGBA{0x00, 0x9E, 0x73, 0xFF}
	ReddishPurple = color.NRGBA{0xCC, 0x79, 0xA7, 0xFF}

	colBand   = color.NRGBA{0x99, 0x99, 0x99, 0x55} // translucent grey
	colBefore = Vermillion                          // uncalibrated
	colAfter  = BluishGreen                         // calibrated
	colGap    = ReddishPurple                       // calibration gap
)

// Style is how one series is drawn: its colour and marker.
type Style struct {
	Color color.Color
	Glyph draw.GlyphDrawer
}

// newPlot returns a plot with the report's style: 11 pt labels, 9.5 pt ticks,
// light grid lines, all text set by h.
func newPlot(h text.Handler, title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.TextHandler = h
	for _, sty := range []*text.Style{&p.Title.TextStyle, &p.X.Label.TextStyle, &p.Y.Label.TextStyle, &p.X.Tick.Label,
		&p.Y.Tick.Label, &p.Legend.TextStyle} {
		sty.Handler = h
	}
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

// unitTicks marks [0, 1] every 0.1, labelled every 0.2.
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

// headroom widens the y range so that a legend at the top does not cover data.
func headroom(p *plot.Plot, lo, hi, frac float64) {
	if hi <= lo {
		lo, hi = lo-0.5, hi+0.5
	}
	r := hi - lo
	p.Y.Min, p.Y.Max = lo-0.08*r, hi+frac*r
}

// legendTopLeft puts the legend inside the data area, top left.
func legendTopLeft(p *plot.Plot) {
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs = vg.Points(6)
}

// single draws one plot on the whole canvas, with the report's margins.
func single(p *plot.Plot) *drawing {
	return &drawing{plots: []*plot.Plot{p}, draw: func(c draw.Canvas) {
		p.Draw(draw.Crop(c, vg.Points(4), -vg.Points(10), vg.Points(2), -vg.Points(4)))
	}}
}
