package figure

import (
	"bytes"
	"image/color"
	"image/png"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg/draw"

	"github.com/kdcal/kdcal/internal/metrics"
)

// bins returns n equal-width bins with the given counts, accuracy and
// confidence at the bin centre minus gap.
func bins(counts []int, gap float64) []metrics.Bin {
	out := make([]metrics.Bin, len(counts))
	for i, c := range counts {
		lo, hi := float64(i)/float64(len(counts)), float64(i+1)/float64(len(counts))
		out[i] = metrics.Bin{Lo: lo, Hi: hi, Count: c, Confidence: (lo + hi) / 2, Accuracy: (lo+hi)/2 - gap}
	}
	return out
}

func points(xy ...[2]float64) *Points {
	p := &Points{}
	for _, v := range xy {
		p.Add(v[0], v[1], 0.1, 0.5)
	}
	return p
}

var (
	raw = Style{Color: Blue, Glyph: draw.CircleGlyph{}}
	cal = Style{Color: Vermillion, Glyph: draw.PyramidGlyph{}}
)

// figures builds one figure of every kind from small hand-made data.
func figures(t *testing.T) map[string]*Figure {
	t.Helper()
	build := map[string]func() (*Figure, error){
		"reliability": func() (*Figure, error) {
			return Reliability(ReliabilityData{BeforeTitle: "Teacher τ (1k params)", AfterTitle: "After temp", Before: bins([]int{0, 10, 70}, 0.05),
				After: bins([]int{5, 30, 45}, 0), BeforeECE: 0.05, AfterECE: 0.01})
		},
		"teacher-calibration": func() (*Figure, error) {
			return TeacherCalibration(TeacherCalibrationData{Before: points([2]float64{1e4, 2}, [2]float64{1e5, 3}),
				After: points([2]float64{1e4, 1}, [2]float64{1e5, 1}), Temperature: points([2]float64{1e4, 1.1}, [2]float64{1e5, 1.3}),
				BeforeLabel: "uncalibrated", AfterLab: "after temp", ParamLo: 1e4, ParamHi: 1e5})
		},
		"student-vs-size": func() (*Figure, error) {
			return StudentVsSize(StudentVsSizeData{Title: "τ = 4", ParamLo: 1e4, ParamHi: 1e6,
				Series:   []Series{{"raw", raw, points([2]float64{1e4, 80}, [2]float64{1e6, 82})}, {"cal", cal, points([2]float64{1e4, 80.5}, [2]float64{1e6, 82})}},
				Baseline: &Band{Label: "scratch, mean ± std", Mean: 81, Std: 0.3}})
		},
		"student-vs-teacher-acc": func() (*Figure, error) {
			return StudentVsTeacherAcc(StudentVsTeacherAccData{Title: "τ = 4",
				Series: []Series{{"raw", raw, points([2]float64{85, 80}, [2]float64{88, 82})}}, Baseline: &Band{Label: "scratch", Mean: 81, Std: math.NaN()}})
		},
		"effective-temperature": func() (*Figure, error) { return EffectiveTemperature(effTempData()) },
	}
	out := map[string]*Figure{}
	for name, b := range build {
		f, err := b()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = f
	}
	return out
}

// effTempData: raw KD at τ·T = τ exactly (1 and 4), for 3 sizes whose
// points coincide in x; calibrated KD at τ·T_cal.
func effTempData() EffectiveTemperatureData {
	d := EffectiveTemperatureData{Arms: []Series{{Label: "raw", Style: raw}, {Label: "cal", Style: cal}},
		Sizes: []string{"tiny", "small", "large"}, Baseline: &Band{Label: "scratch", Mean: 84, Std: 0.2}}
	for u := range 3 {
		for _, tau := range []float64{1, 4} {
			d.Cells = append(d.Cells, Cell{Arm: 0, Size: u, X: tau, Y: 83 + float64(u), YErr: 0.3})
			d.Cells = append(d.Cells, Cell{Arm: 1, Size: u, X: tau * (0.95 + 0.1*float64(u)), Y: 83.2 + float64(u), YErr: 0.3})
		}
	}
	return d
}

// TestRender renders every kind in every format: PNGs decode to the
// figure's pixel size and record DPI in a pHYs chunk, SVGs are SVG, PDFs
// are PDF with the fixed date and the same bytes every time.
func TestRender(t *testing.T) {
	for name, f := range figures(t) {
		for _, format := range Formats {
			var a, b bytes.Buffer
			if err := f.Render(&a, format); err != nil {
				t.Fatalf("%s.%s: %v", name, format, err)
			}
			if err := f.Render(&b, format); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Errorf("%s.%s: two renders differ", name, format)
			}
			switch format {
			case "png":
				img, err := png.Decode(bytes.NewReader(a.Bytes()))
				if err != nil {
					t.Fatalf("%s.png: %v", name, err)
				}
				if w, h := f.PixelSize(); img.Bounds().Dx() != w || img.Bounds().Dy() != h {
					t.Errorf("%s.png is %v, want %dx%d", name, img.Bounds(), w, h)
				}
				// 200 dpi = 7874 pixels per metre, read back as 199.9996 dpi.
				if x, y, ok := DPIOf(a.Bytes()); !ok || math.Abs(x-DPI) > 0.01 || math.Abs(y-DPI) > 0.01 {
					t.Errorf("%s.png: pHYs %v × %v dpi (found %v), want %d", name, x, y, ok, DPI)
				}
			case "svg":
				if !strings.Contains(a.String(), "<svg") {
					t.Errorf("%s.svg is not SVG", name)
				}
			case "pdf":
				if !bytes.HasPrefix(a.Bytes(), []byte("%PDF-")) || !bytes.Contains(a.Bytes(), []byte("/CreationDate (D:20000101000000)")) ||
					!bytes.Contains(a.Bytes(), []byte("/FontFile2")) {
					t.Errorf("%s.pdf: not a PDF with the fixed date and an embedded TrueType font", name)
				}
			}
		}
	}
	if err := figures(t)["reliability"].Render(&bytes.Buffer{}, "eps"); err == nil || !strings.Contains(err.Error(), "eps") {
		t.Errorf("unknown format: err = %v", err)
	}
}

// TestReliabilitySharedScale: the two share panels get one y-scale: the
// larger share, 70/80 = 0.875 before calibration, rounded up to a tenth
// above it (⌈8.75 + 0.5⌉/10 = 1.0), on both; after calibration alone it
// would be ⌈45/80·10 + 0.5⌉/10 = 0.7 (hand-computed).
func TestReliabilitySharedScale(t *testing.T) {
	f := figures(t)["reliability"]
	before, after := f.plots[2], f.plots[3]
	if before.Y.Max != 1 || after.Y.Max != 1 {
		t.Errorf("share axes end at %v (before) and %v (after), want 1 and 1", before.Y.Max, after.Y.Max)
	}
}

// glyphXs returns the x values of every glyph (markers and error-bar caps)
// of p, back from the axis' normalised coordinate, except those at the ends
// of the axis (the baseline band's).
func glyphXs(p *plot.Plot) []float64 {
	var xs []float64
	lo, hi := p.X.Min, p.X.Max
	for _, b := range p.GlyphBoxes(p) {
		if b.X == 0 || b.X == 1 {
			continue
		}
		x := lo + b.X*(hi-lo)
		if _, ok := p.X.Scale.(plot.LogScale); ok {
			x = lo * math.Pow(hi/lo, b.X)
		}
		xs = append(xs, x)
	}
	return xs
}

// checkTrueX fails unless every glyph of p sits at one of want (relative
// 1e-9: the round trip through the normalised axis), and every want has one.
func checkTrueX(t *testing.T, name string, p *plot.Plot, want []float64) {
	t.Helper()
	got := glyphXs(p)
	want = slices.Compact(append([]float64(nil), want...))
	if len(got) == 0 {
		t.Fatalf("%s: no glyphs", name)
	}
	seen := map[int]bool{}
	for _, x := range got {
		i := sort.Search(len(want), func(i int) bool { return want[i] >= x*(1-1e-9) })
		if i == len(want) || math.Abs(want[i]-x) > 1e-9*want[i] {
			t.Errorf("%s: a glyph at x = %v, off every true x %v", name, x, want)
			continue
		}
		seen[i] = true
	}
	if len(seen) != len(want) {
		t.Errorf("%s: glyphs at %d of the %d true x values", name, len(seen), len(want))
	}
}

// TestTrueX: markers and error bars stay at the data's x (arms are told
// apart by colour and marker, not by moving points): raw KD at exactly
// τ = 1 and 4 in the effective-temperature figure, parameters in the size
// figures.
func TestTrueX(t *testing.T) {
	fs := figures(t)
	var eff []float64
	for _, c := range effTempData().Cells {
		eff = append(eff, c.X)
	}
	sort.Float64s(eff)
	checkTrueX(t, "effective temperature", fs["effective-temperature"].plots[0], eff)
	checkTrueX(t, "student vs size", fs["student-vs-size"].plots[0], []float64{1e4, 1e6})
	checkTrueX(t, "teacher calibration", fs["teacher-calibration"].plots[0], []float64{1e4, 1e5})
}

func TestPNGChunks(t *testing.T) {
	var b bytes.Buffer
	f := figures(t)["student-vs-teacher-acc"]
	if err := f.Render(&b, "png"); err != nil {
		t.Fatal(err)
	}
	if _, err := withDPI(b.Bytes(), 100); err == nil {
		t.Error("a second pHYs chunk was added")
	}
	if _, err := withDPI([]byte("GIF89a"), 100); err == nil {
		t.Error("a non-PNG was accepted")
	}
	if _, _, ok := DPIOf([]byte("\x89PNG\r\n\x1a\n")); ok {
		t.Error("DPI found in a truncated PNG")
	}
}

// TestPDFText: text for PDFs is spelled in Windows-1252 (vgpdf's code page),
// and colours keep their straight channels.
func TestPDFText(t *testing.T) {
	for in, want := range map[string]string{
		"Effective temperature τ·T": "Effective temperature tau·T",
		"mean ± std, −0.5 ≥ ρ":      "mean ± std, -0.5 >= rho",
		"∞ × é":                     "? × é",
	} {
		if got := cp1252Text(in); got != want {
			t.Errorf("cp1252Text(%q) = %q, want %q", in, got, want)
		}
	}
	// NRGBA{0xD5, 0x5E, 0, 0xB0}: vgpdf keeps the top 8 bits, which must be
	// the straight channels 0xD5, 0x5E, 0 (premultiplied they would be
	// 0xD5·0xB0/0xFF = 0x93, 0x40, 0: the too-dark fill).
	s := straight{color.NRGBA64Model.Convert(color.NRGBA{0xD5, 0x5E, 0, 0xB0}).(color.NRGBA64)}
	if r, g, b, a := s.RGBA(); r>>8 != 0xD5 || g>>8 != 0x5E || b != 0 || a != 0xB0B0 {
		t.Errorf("straight RGBA = %x %x %x %x, want top bytes d5 5e 0 and alpha b0b0", r, g, b, a)
	}
}
