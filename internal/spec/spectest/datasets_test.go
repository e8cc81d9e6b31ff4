package spectest_test

import (
	"strings"
	"testing"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/spec"
	"github.com/kdcal/kdcal/internal/spec/spectest"
)

// A toy in-memory dataset: one registration line in this file. The suite
// checks it like the built-in ones, and a configuration naming it
// validates and plans with its shape.
func init() {
	spec.RegisterDataset(spec.Dataset{Name: "toy-blobs", Shape: spec.Fixed(1, 2, 2, 3), PixelScale: 1, Source: spec.FetchNone})
}

func TestBuiltinDatasets(t *testing.T) {
	for _, n := range config.Datasets {
		t.Run(n, func(t *testing.T) { spectest.Dataset(t, n, spec.Generated{Features: 16, Classes: 4}) })
	}
}

func TestToyDataset(t *testing.T) {
	spectest.Dataset(t, "toy-blobs", spec.Generated{})
	c, err := config.Load(config.Source{Set: map[string]string{"data.dataset": "toy-blobs", "teacher.family": "mlp",
		"teacher.sizes": "tiny", "seeds": "0"}})
	if err != nil {
		t.Fatal(err)
	}
	if sh, err := c.Data.Shape(); err != nil || sh != (spec.Shape{C: 1, H: 2, W: 2, Classes: 3}) {
		t.Fatalf("Shape = %+v, %v", sh, err)
	}
	// teacher tiny = 784-32-10 on MNIST; here 4-32-3: 3·(4·32 + 32·3) MACs per example and epoch.
	st, _ := plan.Build(c).Get("teachers/tiny/seed-0")
	if want := 3.0 * (4*32 + 32*3) * float64(c.Teacher.Train.Epochs); st.Cost != want {
		t.Errorf("teacher cost %g, want %g", st.Cost, want)
	}
}

// An unknown dataset is an error naming the key and the registered names,
// never a silent 1×28×28×10.
func TestUnknownDataset(t *testing.T) {
	_, err := config.Load(config.Source{Set: map[string]string{"data.dataset": "imagenet"}})
	if err == nil || !strings.Contains(err.Error(), "data.dataset") || !strings.Contains(err.Error(), "fashion-mnist") {
		t.Fatalf("got %v", err)
	}
	if _, err := (config.Data{Dataset: "imagenet"}).Shape(); err == nil || !strings.Contains(err.Error(), "data.dataset") {
		t.Fatalf("Shape of an unknown dataset: %v", err)
	}
}
