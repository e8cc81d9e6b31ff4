package calibrate_test

import (
	"slices"
	"testing"

	"github.com/kdcal/kdcal/internal/calibrate"
	"github.com/kdcal/kdcal/internal/calibrate/calibratetest"
	"github.com/kdcal/kdcal/internal/config"
)

// Every registered method passes the conformance suite.
func TestConformance(t *testing.T) {
	opts := calibrate.OptionsFrom(config.Default().Calibration)
	for _, name := range calibrate.Methods() {
		t.Run(name, func(t *testing.T) {
			calibratetest.Suite{
				New: func() calibrate.Calibrator {
					cal, err := calibrate.New(name, opts)
					if err != nil {
						t.Fatal(err)
					}
					return cal
				},
				Identity: name == "none",
			}.Run(t)
		})
	}
}

// The registry holds exactly the methods the configuration accepts.
func TestRegistryMatchesConfig(t *testing.T) {
	if got := calibrate.Methods(); !slices.Equal(got, config.Calibrators) {
		t.Errorf("registry %v, config.Calibrators %v", got, config.Calibrators)
	}
	if _, err := calibrate.New("platt", calibrate.Options{}); err == nil {
		t.Error("New accepted an unknown method")
	}
}
