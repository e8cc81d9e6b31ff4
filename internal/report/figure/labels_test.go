package figure

import (
	"testing"

	"gonum.org/v1/plot/vg"
)

// TestPlaceLabels: labels with room sit below right of their point; a
// label whose default corner would cover a neighbour's label or marker
// moves to another corner; none leaves the canvas.
func TestPlaceLabels(t *testing.T) {
	area := vg.Rectangle{Max: vg.Point{X: 400, Y: 300}}
	size := [2]vg.Length{40, 10}
	marker := func(p vg.Point) vg.Rectangle {
		return vg.Rectangle{Min: vg.Point{X: p.X - 3.5, Y: p.Y - 3.5}, Max: vg.Point{X: p.X + 3.5, Y: p.Y + 3.5}}
	}
	for _, tc := range []struct {
		name string
		at   []vg.Point
		want []corner
	}{
		{"apart", []vg.Point{{X: 50, Y: 100}, {X: 200, Y: 200}}, []corner{{1, -1}, {1, -1}}},
		// the second point's marker sits where the first's label would go
		{"marker below right", []vg.Point{{X: 100, Y: 100}, {X: 120, Y: 95}}, []corner{{1, 1}, {1, -1}}},
		// the second label would cover the first's
		{"label below right", []vg.Point{{X: 100, Y: 100}, {X: 130, Y: 100}}, []corner{{1, -1}, {1, 1}}},
		{"right edge", []vg.Point{{X: 390, Y: 100}}, []corner{{-1, -1}}},
		{"bottom edge", []vg.Point{{X: 100, Y: 5}}, []corner{{1, 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var obst []vg.Rectangle
			sizes := make([][2]vg.Length, len(tc.at))
			for i, p := range tc.at {
				obst, sizes[i] = append(obst, marker(p)), size
			}
			got := place(tc.at, sizes, obst, area)
			for i, r := range got {
				if want := cornerBox(tc.at[i], tc.want[i], size[0], size[1]); r != want {
					t.Errorf("label %d at %v: box %v, want corner %v (%v)", i, tc.at[i], r, tc.want[i], want)
				}
				if !contains(area, r) {
					t.Errorf("label %d leaves the canvas: %v", i, r)
				}
				for j := range i {
					if overlap(r, got[j:j+1]) > 0 {
						t.Errorf("labels %d and %d overlap: %v, %v", j, i, r, got[j])
					}
				}
			}
		})
	}
}
