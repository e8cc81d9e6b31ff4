package model

import (
	"fmt"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/spec"
)

// Param, Kind and their constants are the family registry's (internal/spec):
// the layer-shape walk is written once there and read by the plan too.
type (
	Param = spec.Param
	Kind  = spec.Kind
)

// Parameter kinds.
const (
	ConvWeight  = spec.ConvWeight
	ConvBias    = spec.ConvBias
	DenseWeight = spec.DenseWeight
	DenseBias   = spec.DenseBias
)

// Arch is one concrete architecture: a family, its layer widths and the
// input it reads.
type Arch struct {
	Family  string           // a registered family (spec.FamilyNames)
	Spec    config.ModelSpec // conv channels per stage (CNN), dense hidden widths
	C, H, W int              // input channels, height, width
	Classes int              // outputs
	desc    spec.Arch
}

// NewArch checks an architecture and returns it. Problems a user can cause
// (unknown family, non-positive widths, an image too small for the number of
// pooling stages) are errors naming the offending value.
func NewArch(family string, s config.ModelSpec, c, h, w, classes int) (Arch, error) {
	d, err := spec.NewArch(family, s, spec.Shape{C: c, H: h, W: w, Classes: classes})
	if err != nil {
		return Arch{}, fmt.Errorf("model: %w", err)
	}
	if _, err := builderOf(family); err != nil {
		return Arch{}, err
	}
	return Arch{Family: family, Spec: s, C: c, H: h, W: w, Classes: classes, desc: d}, nil
}

// D returns the input dimension C·H·W.
func (a Arch) D() int { return a.C * a.H * a.W }

// Desc returns the family's description of the architecture.
func (a Arch) Desc() spec.Arch { return a.desc }

// Params lists the parameter tensors in the family's fixed order.
func (a Arch) Params() []Param { return a.desc.Params() }

// NumParams returns the number of trainable parameters.
func (a Arch) NumParams() int { return spec.NumParams(a.desc) }

// String describes the architecture, e.g.
// "cnn 1×28×28 conv[4 8] → 392 → dense[32] → 10".
func (a Arch) String() string { return a.desc.String() }

// DropPartialBatches reports whether training must skip a last batch
// smaller than the batch size: true for a family that normalises with
// batch statistics (its spec.Arch has a DropPartialBatches method saying
// so, e.g. resnet's BatchNorm), whose statistics zero-padded rows would
// change. torch's DataLoader(drop_last=True) does the same.
func (a Arch) DropPartialBatches() bool {
	d, ok := a.desc.(interface{ DropPartialBatches() bool })
	return ok && d.DropPartialBatches()
}
