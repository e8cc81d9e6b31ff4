package data_test

// A toy in-memory dataset in one file: its descriptor and its reader, one
// registration line each. Load splits, scales and normalises it like any
// registered dataset, and the spectest suite checks its descriptor.

import (
	"testing"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/data"
	"github.com/kdcal/kdcal/internal/spec"
	"github.com/kdcal/kdcal/internal/spec/spectest"
)

func init() {
	spec.RegisterDataset(spec.Dataset{Name: "toy-pixels", Shape: spec.Fixed(1, 2, 2, 2), PixelScale: 1.0 / 255, Source: spec.FetchNone})
	data.RegisterReader("toy-pixels", readToy)
}

// readToy makes 40 training and 10 test images of 2×2 pixels: class 0 dark
// (pixels 10+i%5), class 1 bright (200+i%5).
func readToy(string, config.Data) (train, test data.Raw, err error) {
	gen := func(n int) data.Raw {
		r := data.Raw{N: n, C: 1, H: 2, W: 2, Classes: 2, X: make([]float32, 4*n), Y: make([]int, n)}
		for i := range n {
			r.Y[i] = i % 2
			for j := range 4 {
				r.X[4*i+j] = float32(10 + 190*(i%2) + i%5)
			}
		}
		return r
	}
	return gen(40), gen(10), nil
}

func TestToyDataset(t *testing.T) {
	spectest.Dataset(t, "toy-pixels", spec.Generated{})
	cfg := config.Default().Data
	cfg.Dataset = "toy-pixels"
	s, err := data.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.Train.N+s.Val.N != 40 || s.Test.N != 10 || s.Val.N != 4 {
		t.Fatalf("splits %d/%d/%d, want 36/4/10", s.Train.N, s.Val.N, s.Test.N)
	}
	// Scaled by 1/255 before normalising: the mean of the training pixels
	// is about (10 + 200)/2/255 ≈ 0.41, not 105.
	if m := s.Mean[0]; m < 0.3 || m > 0.5 {
		t.Errorf("channel mean %v after scaling, want ≈ 0.41", m)
	}
}
