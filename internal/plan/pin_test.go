package plan

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kdcal/kdcal/internal/config"
)

var updatePins = flag.Bool("update-pins", false, "rewrite testdata/step-hashes.txt")

// TestStepHashesPinned pins every step's key, hash and cost for the shipped
// presets. The file was written before the model-family and dataset
// registries replaced the per-family code, so a refactor that changes any
// step hash (and with it reuses nothing of an existing store) fails here.
func TestStepHashesPinned(t *testing.T) {
	var b strings.Builder
	for _, preset := range []string{"default", "quick", "paper"} {
		file := filepath.Join("..", "..", "configs", preset+".yaml")
		c, err := config.Load(config.Source{File: file})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range Build(c).Steps {
			fmt.Fprintf(&b, "%s %s %s %g\n", preset, s.Key, s.Hash, s.Cost)
		}
	}
	golden := filepath.Join("testdata", "step-hashes.txt")
	if *updatePins {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("step %d: got %q, pinned %q (and maybe more)", i, gl[i], wl[i])
			}
		}
		t.Fatalf("got %d lines, pinned %d", len(gl), len(wl))
	}
}
