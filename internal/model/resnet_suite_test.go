package model_test

import (
	"testing"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/model/modeltest"
	"github.com/kdcal/kdcal/internal/spec"
)

// TestResNetFamily runs the family conformance suite on the resnet family.
func TestResNetFamily(t *testing.T) {
	modeltest.Suite{Family: "resnet", Input: spec.Shape{C: 1, H: 8, W: 8, Classes: 4},
		Sizes: []config.ModelSpec{{"depth": 8, "width": 2}, {"depth": 8, "width": 4}, {"depth": 14, "width": 4}}}.Run(t)
}
