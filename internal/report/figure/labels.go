package figure

import (
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// corner is where a label sits next to its point: dx, dy = +1 puts the
// text right of / above the point.
type corner struct{ dx, dy float64 }

// corners are tried in this order; ties keep the earlier one, so labels
// that have room all sit below right of their point.
var corners = []corner{{1, -1}, {1, 1}, {-1, -1}, {-1, 1}}

// labelPad is the gap between a point and its label.
const labelPad = vg.Length(4)

// placedLabels draws a text label at each point, each at the corner of
// its point (below right, above right, below left, above left) whose text
// box overlaps least, in canvas area, with the boxes of the labels placed
// before it and with every obstacle: the markers and error bars of the
// series. It is a greedy placement in the order of the labels, computed
// when the plot is drawn, in the canvas's own coordinates.
type placedLabels struct {
	xys       plotter.XYs
	labels    []string
	style     text.Style
	obstacles []*Points
}

// Plot implements plot.Plotter.
func (l *placedLabels) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	var obst []vg.Rectangle
	for _, pts := range l.obstacles {
		obst = append(obst, pointBoxes(pts, trX, trY)...)
	}
	var at []vg.Point
	var texts []string
	var sizes [][2]vg.Length
	for i, xy := range l.xys {
		pt := vg.Point{X: trX(xy.X), Y: trY(xy.Y)}
		if !c.Contains(pt) {
			continue
		}
		txt := strings.TrimSpace(l.labels[i])
		at, texts = append(at, pt), append(texts, txt)
		sizes = append(sizes, [2]vg.Length{l.style.Width(txt), l.style.Height(txt)})
	}
	sty := l.style
	sty.XAlign, sty.YAlign = draw.XLeft, draw.YBottom
	for i, r := range place(at, sizes, obst, c.Rectangle) {
		c.FillText(sty, r.Min, texts[i])
	}
}

// place returns the box of each label (w × h = sizes[i]) at its point:
// the first corner with the least overlap with the labels placed before
// it and with obst; a box outside area counts as fully overlapped.
func place(at []vg.Point, sizes [][2]vg.Length, obst []vg.Rectangle, area vg.Rectangle) []vg.Rectangle {
	var placed []vg.Rectangle
	for i, pt := range at {
		w, h := sizes[i][0], sizes[i][1]
		best, bestCost := vg.Rectangle{}, math.Inf(1)
		for _, k := range corners {
			r := cornerBox(pt, k, w, h)
			cost := overlap(r, placed) + overlap(r, obst)
			if !contains(area, r) {
				cost += float64(w * h)
			}
			if cost < bestCost {
				best, bestCost = r, cost
			}
		}
		placed = append(placed, best)
	}
	return placed
}

// cornerBox is the w × h box of a label at corner k of pt, labelPad away.
func cornerBox(pt vg.Point, k corner, w, h vg.Length) vg.Rectangle {
	x := pt.X + labelPad
	if k.dx < 0 {
		x = pt.X - labelPad - w
	}
	y := pt.Y + labelPad
	if k.dy < 0 {
		y = pt.Y - labelPad - h
	}
	return vg.Rectangle{Min: vg.Point{X: x, Y: y}, Max: vg.Point{X: x + w, Y: y + h}}
}

// pointBoxes are the canvas boxes of each point's marker and of its x and
// y error bars with their caps (as addSeries draws them).
func pointBoxes(pts *Points, trX, trY func(float64) vg.Length) []vg.Rectangle {
	const r, capHalf = vg.Length(3.5), vg.Length(2.5)
	var out []vg.Rectangle
	for i, xy := range pts.XYs {
		x, y := trX(xy.X), trY(xy.Y)
		out = append(out,
			vg.Rectangle{Min: vg.Point{X: x - r, Y: y - r}, Max: vg.Point{X: x + r, Y: y + r}},
			vg.Rectangle{Min: vg.Point{X: trX(xy.X - pts.XErrors[i].Low), Y: y - capHalf}, Max: vg.Point{X: trX(xy.X + pts.XErrors[i].High), Y: y + capHalf}},
			vg.Rectangle{Min: vg.Point{X: x - capHalf, Y: trY(xy.Y - pts.YErrors[i].Low)}, Max: vg.Point{X: x + capHalf, Y: trY(xy.Y + pts.YErrors[i].High)}})
	}
	return out
}

// overlap is the total area r shares with the boxes.
func overlap(r vg.Rectangle, boxes []vg.Rectangle) float64 {
	var a float64
	for _, b := range boxes {
		w := min(r.Max.X, b.Max.X) - max(r.Min.X, b.Min.X)
		h := min(r.Max.Y, b.Max.Y) - max(r.Min.Y, b.Min.Y)
		if w > 0 && h > 0 {
			a += float64(w * h)
		}
	}
	return a
}

// contains reports whether r lies inside outer.
func contains(outer, r vg.Rectangle) bool {
	return r.Min.X >= outer.Min.X && r.Min.Y >= outer.Min.Y && r.Max.X <= outer.Max.X && r.Max.Y <= outer.Max.Y
}
