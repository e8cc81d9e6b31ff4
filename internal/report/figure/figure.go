// Package figure draws the report's figures with gonum/plot from plain data
// (points with error bars, reliability bins, bands), in the report's style,
// and renders them as PNG (with its DPI recorded), SVG or PDF. Each builder (Reliability,
// TeacherCalibration, StudentVsSize, StudentVsTeacherAcc,
// EffectiveTemperature) takes the numbers to draw and the labels, builds its
// plots and returns an error when gonum/plot rejects the data; it knows
// nothing about studies, steps or arms, which the report maps to labels and
// Styles.
package figure

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"time"

	"codeberg.org/go-pdf/fpdf"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgpdf"
	"gonum.org/v1/plot/vg/vgsvg"
)

// DPI of the PNG figures: 200 gives print-quality raster images whose pixel
// size is the figure's size in inches × 200.
const DPI = 200

// Formats are the file formats Render writes.
var Formats = []string{"png", "svg", "pdf"}

// PDFDate is the creation and modification date written into every PDF, so
// that a report regenerated from the same store is byte-identical (fpdf
// otherwise writes the current time). Fonts are embedded, and fpdf's catalog
// is sorted so that the font objects come in a fixed order.
var PDFDate = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func init() {
	fpdf.SetDefaultCreationDate(PDFDate)
	fpdf.SetDefaultModificationDate(PDFDate)
	fpdf.SetDefaultCatalogSort(true)
}

// Figure is a built figure: its size and how to draw it on a canvas of that
// size. The builders return one.
type Figure struct {
	W, H vg.Length
	// build makes the plots with all text set by h; *drawing is its result
	// with gonum/plot's default text handler.
	build func(h text.Handler) (*drawing, error)
	*drawing
}

// drawing is a figure's plots and how to draw them on its canvas.
type drawing struct {
	plots []*plot.Plot
	draw  func(c draw.Canvas)
}

// newFigure builds a w × h figure once with the default text handler and
// returns it, or the error of that build.
func newFigure(w, h vg.Length, build func(text.Handler) (*drawing, error)) (*Figure, error) {
	d, err := build(plot.DefaultTextHandler)
	if err != nil {
		return nil, err
	}
	return &Figure{W: w, H: h, build: build, drawing: d}, nil
}

// Render draws f in format (one of Formats) to w. PNGs have DPI dots per
// inch and say so in a pHYs chunk; PDFs embed their fonts. It returns an
// error for an unknown format or a failed write.
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
		var b bytes.Buffer
		if _, err := (vgimg.PngCanvas{Canvas: ic}).WriteTo(&b); err != nil {
			return err
		}
		png, err := withDPI(b.Bytes(), DPI)
		if err != nil {
			return err
		}
		_, err = w.Write(png)
		return err
	case "svg":
		sc := vgsvg.NewWith(vgsvg.UseWH(f.W, f.H), vgsvg.EmbedFonts(false))
		paint(sc)
		cw = sc
	case "pdf":
		d, err := f.build(pdfText{plot.DefaultTextHandler})
		if err != nil {
			return err
		}
		pc := pdfCanvas{vgpdf.New(f.W, f.H)}
		dc := draw.New(pc)
		dc.SetColor(color.White)
		dc.Fill(dc.Rectangle.Path())
		d.draw(dc)
		cw = pc
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
