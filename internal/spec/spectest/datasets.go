// Package spectest is the conformance suite of the dataset registry: every
// registered dataset's descriptor is checked here.
package spectest

import (
	"encoding/hex"
	"testing"

	"github.com/kdcal/kdcal/internal/spec"
)

// Dataset checks one registered dataset's descriptor: found by name, a
// valid shape and class count (for generated sets, at g), a pixel scale in
// (0, 1], 64-hex-digit checksums, files for every fetchable dataset, and a
// known fetch source.
func Dataset(t *testing.T, name string, g spec.Generated) {
	t.Helper()
	d, err := spec.LookupDataset(name)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != name {
		t.Errorf("registered as %q, named %q", name, d.Name)
	}
	sh := d.Shape(g)
	if sh.C < 1 || sh.H < 1 || sh.W < 1 || sh.Classes < 2 {
		t.Errorf("%s: shape %+v", name, sh)
	}
	if !(d.PixelScale > 0 && d.PixelScale <= 1) {
		t.Errorf("%s: pixel scale %v not in (0, 1]", name, d.PixelScale)
	}
	for f, sum := range d.Files {
		if b, err := hex.DecodeString(sum); err != nil || len(b) != 32 {
			t.Errorf("%s: %s: checksum %q is not a SHA-256", name, f, sum)
		}
	}
	switch d.Source {
	case spec.FetchGoModule, spec.FetchDebian:
		if len(d.Files) == 0 {
			t.Errorf("%s: fetchable but declares no files to verify", name)
		}
	case spec.FetchNone, spec.FetchManual:
	default:
		t.Errorf("%s: unknown source %q", name, d.Source)
	}
	if d.Source == spec.FetchManual && d.Hint == "" {
		t.Errorf("%s: fetched by hand but no hint says how", name)
	}
	if d.Source != spec.FetchNone && d.Train <= 0 {
		t.Errorf("%s: Train (official training-set size, for cost estimates) is %d", name, d.Train)
	}
}
