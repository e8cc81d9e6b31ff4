package modeltest_test

import (
	"testing"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/model/modeltest"
	"github.com/kdcal/kdcal/internal/spec"
)

var small = spec.Shape{C: 1, H: 8, W: 8, Classes: 3}

func TestMLP(t *testing.T) {
	modeltest.Suite{Family: config.FamilyMLP, Input: small,
		Sizes: []config.ModelSpec{{"hidden": []int{4}}, {"hidden": []int{16, 16}}}}.Run(t)
}

func TestCNN(t *testing.T) {
	modeltest.Suite{Family: config.FamilyCNN, Input: small,
		Sizes: []config.ModelSpec{{"conv": []int{2}, "hidden": []int{4}}, {"conv": []int{4, 8}, "hidden": []int{16}}}}.Run(t)
}
