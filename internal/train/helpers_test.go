package train

import (
	"testing"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/data"
)

// syntheticSplits loads the synthetic set: 2000 official train examples
// (1800 train / 200 val), 500 test, 4 classes, 16 features as a 4×4 image.
func syntheticSplits(t testing.TB) *data.Splits {
	t.Helper()
	d := config.Default().Data
	d.Dataset = "synthetic"
	s, err := data.Load(d)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// recipe returns the default teacher recipe with a few changes.
func recipe(epochs, bs int) config.Train {
	r := config.Default().Teacher.Train
	r.Epochs, r.BatchSize = epochs, bs
	return r
}
