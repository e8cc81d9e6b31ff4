// Package figure draws the report's figures with gonum/plot from plain data
// (points with error bars, reliability bins, bands), in the report's style,
// and renders them as PNG or SVG. Each builder (Reliability,
// TeacherCalibration, StudentVsSize, StudentVsTeacherAcc,
// EffectiveTemperature) takes the numbers to draw and the labels, builds its
// plots and returns an error when gonum/plot rejects the data; it knows
// nothing about studies, steps or arms, which the report maps to labels and
// Styles.
package figure

import (
	"fmt"
	"image/color"
	"io"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// DPI of the PNG figures: 200 gives print-quality raster images whose pixel
// size is the figure's size in inches × 200.
const DPI = 200

// Formats are the file formats Render writes.
var Formats = []string{"png", "svg"}

// Figure is a built figure: its size and how to draw it on a canvas of that
// size. The builders return one.
type Figure struct {
	W, H vg.Length
	draw func(c draw.Canvas)
}

// Render draws f in format (one of Formats) to w; PNGs have DPI dots per
// inch. It returns an error for an unknown format or a failed write.
func (f *Figure) Render(w io.Writer, format string) error {
	var cw io.WriterTo
	paint := func(c vg.CanvasSizer) {
		dc := draw.New(c)
		dc.SetColor(color.White) // opaque background, also in SVG (dark-mode viewers)
		dc.Fill(dc.Rectangle.Path())
		f.draw(dc)
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
		return fmt.Errorf("unknown figure format %q (known: %v)", format, Formats)
	}
	_, err := cw.WriteTo(w)
	return err
}

// PixelSize returns the PNG size of f in pixels.
func (f *Figure) PixelSize() (w, h int) {
	return int(f.W/vg.Inch*DPI + 0.5), int(f.H/vg.Inch*DPI + 0.5)
}
