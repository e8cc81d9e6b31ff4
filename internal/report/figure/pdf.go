package figure

import (
	"image/color"
	"strings"

	"golang.org/x/text/encoding/charmap"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/vgpdf"
)

// Two things in gonum/plot v0.17's vgpdf need working around:
//
//   - It embeds its fonts with the Windows-1252 code page and writes the
//     bytes of FillString's string as they are, so UTF-8 text (±, ·, τ)
//     comes out garbled ("Â±"). PDF figures therefore go through pdfText,
//     which spells the few characters outside Windows-1252 in ASCII before
//     anything is measured or drawn (so that layout and drawing agree), and
//     pdfCanvas, which encodes what is drawn (golang.org/x/text's charmap).
//   - SetColor hands the alpha-premultiplied channels of color.RGBA() to
//     fpdf as the colour and sets the alpha on top, so a translucent fill is
//     drawn too dark (the reliability bars came out brown, not orange).
//     pdfCanvas passes the straight (non-premultiplied) channels instead.

// spelled are the report's characters that Windows-1252 lacks.
var spelled = strings.NewReplacer("τ", "tau", "ρ", "rho", "Δ", "Delta", "σ", "sigma", "−", "-", "≥", ">=", "≤", "<=", "→", "->")

// cp1252Text spells txt in characters Windows-1252 has: spelled ones in
// ASCII, anything else still missing as "?".
func cp1252Text(txt string) string {
	txt = spelled.Replace(txt)
	return strings.Map(func(r rune) rune {
		if _, ok := charmap.Windows1252.EncodeRune(r); !ok {
			return '?'
		}
		return r
	}, txt)
}

// pdfText is a text handler that measures and draws cp1252Text(txt).
type pdfText struct{ text.Handler }

func (h pdfText) Box(txt string, fnt font.Font) (width, height, depth vg.Length) {
	return h.Handler.Box(cp1252Text(txt), fnt)
}

func (h pdfText) Draw(c vg.Canvas, txt string, sty text.Style, pt vg.Point) {
	h.Handler.Draw(c, cp1252Text(txt), sty, pt)
}

// pdfCanvas is a PDF canvas whose strings are encoded in Windows-1252 (they
// have been through cp1252Text, so every rune has a byte) and whose colours
// keep their straight channels.
type pdfCanvas struct{ *vgpdf.Canvas }

// SetColor sets clr with its straight channels and alpha (see straight).
func (c pdfCanvas) SetColor(clr color.Color) {
	if clr == nil {
		clr = color.Black
	}
	c.Canvas.SetColor(straight{color.NRGBA64Model.Convert(clr).(color.NRGBA64)})
}

// straight reports its channels without alpha premultiplication, which is
// what vgpdf.Canvas.SetColor expects of RGBA (it is not a color.Color by
// the letter of that contract; it only ever goes to vgpdf).
type straight struct{ c color.NRGBA64 }

func (s straight) RGBA() (r, g, b, a uint32) {
	return uint32(s.c.R), uint32(s.c.G), uint32(s.c.B), uint32(s.c.A)
}

// FillString draws s encoded in Windows-1252.
func (c pdfCanvas) FillString(f font.Face, pt vg.Point, s string) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if e, ok := charmap.Windows1252.EncodeRune(r); ok {
			b = append(b, e)
		} else {
			b = append(b, '?')
		}
	}
	c.Canvas.FillString(f, pt, string(b))
}
