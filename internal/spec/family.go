// Package spec describes model families and datasets without building or
// loading anything: what the plan, the configuration and the commands need
// to know (parameter shapes and counts, training cost, input shapes, class
// counts, files and checksums) and nothing that pulls in gorgonia or a
// dataset reader. internal/model and internal/data look the same names up
// to build graphs and load files.
//
// A model family is registered here once (RegisterFamily, normally from
// the family's own file's init) and a dataset once (RegisterDataset); every
// other package asks the registry, so an unknown name is an error that
// lists the registered ones.
package spec

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Shape is a model's input (C, H, W) and its number of classes.
type Shape struct{ C, H, W, Classes int }

// D returns the input dimension C·H·W.
func (s Shape) D() int { return s.C * s.H * s.W }

// Kind says what a parameter tensor is.
type Kind int

// Parameter kinds.
const (
	ConvWeight  Kind = iota // (out, in, kh, kw), OIHW in gorgonia and torch
	ConvBias                // (1, out, 1, 1) in gorgonia, (out,) in torch
	DenseWeight             // (in, out) in gorgonia, (out, in) in torch
	DenseBias               // (1, out) in gorgonia, (out,) in torch
	Vector                  // (n,) in both: BatchNorm scales, shifts and running statistics
	Matrix                  // (out, in) in both: a Linear weight the graph holds in torch's layout
	Counter                 // () in both: an int64 scalar buffer (BatchNorm's num_batches_tracked)
)

// Param describes one parameter (or buffer) tensor.
type Param struct {
	Name   string // torch state-dict name, e.g. "conv0.weight", "fc1.bias", "out.weight"
	Kind   Kind
	Shape  []int // gorgonia layout
	FanIn  int   // inputs per output unit
	FanOut int   // outputs per input unit
	Output bool  // part of the output layer (no ReLU after it)
}

// Size returns the number of elements.
func (p Param) Size() int {
	n := 1
	for _, d := range p.Shape {
		n *= d
	}
	return n
}

// TorchShape returns the parameter's shape in the PyTorch module.
func (p Param) TorchShape() []int {
	switch p.Kind {
	case DenseWeight:
		return []int{p.Shape[1], p.Shape[0]}
	case ConvBias, DenseBias:
		return []int{p.Shape[1]}
	}
	return slices.Clone(p.Shape)
}

// Arch is one concrete architecture: a family's spec applied to an input shape.
type Arch interface {
	// Family names the registered family.
	Family() string
	// Input returns the input shape and class count.
	Input() Shape
	// Params lists the learnable tensors in a fixed order, with torch
	// state-dict names and gorgonia layouts.
	Params() []Param
	// Buffers lists the non-learnable state a checkpoint must carry (e.g.
	// BatchNorm running statistics), in a fixed order; nil for none.
	Buffers() []Param
	// Cost is the multiply-adds of one training example (forward +
	// backward), used by the plan to order steps and estimate time left.
	Cost() float64
	// String describes the architecture in one line for size listings.
	String() string
}

// Family is a model family: how its spec is read from the configuration
// and turned into an Arch for an input shape. Graph building lives in
// internal/model, keyed by the same name.
type Family interface {
	// Name is the value of teacher.family / student.family.
	Name() string
	// Keys lists the spec's keys (e.g. conv, hidden) with a comment each.
	Keys() []Key
	// Check reports what is wrong with a spec without an input shape, each
	// problem naming its key relative to the spec ("" or e.g. "conv").
	Check(s Spec) []Problem
	// New returns the architecture of a checked spec for input shape in; an
	// input too small for the spec is an error.
	New(s Spec, in Shape) (Arch, error)
	// HashKey is what step hashes record of a spec (a typed value whose
	// JSON never changes for the same architecture).
	HashKey(s Spec) any
}

// Spec is a family's architecture as the configuration holds it: its keys
// and their values (a whole number or a list of whole numbers), read by the
// family.
type Spec = map[string]any

// Key is one key of a family's spec.
type Key struct{ Name, Comment string }

// Problem is one thing wrong with a spec.
type Problem struct{ Key, Msg string }

// NumParams returns the number of learnable parameters of a.
func NumParams(a Arch) int {
	n := 0
	for _, p := range a.Params() {
		n += p.Size()
	}
	return n
}

var (
	mu       sync.RWMutex
	families = map[string]Family{}
	datasets = map[string]Dataset{}
)

// RegisterFamily makes a family known by its name. It panics on a
// duplicate name: two families cannot answer to one configuration value.
func RegisterFamily(f Family) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := families[f.Name()]; dup {
		panic("spec: family " + f.Name() + " registered twice")
	}
	families[f.Name()] = f
}

// LookupFamily returns the registered family of that name.
func LookupFamily(name string) (Family, error) {
	mu.RLock()
	f, ok := families[name]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown family %q (registered model families: %s)", name, strings.Join(FamilyNames(), ", "))
	}
	return f, nil
}

// FamilyNames lists the registered families, sorted.
func FamilyNames() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(families))
	for n := range families {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// NewArch looks the family up, checks the spec and returns its architecture.
func NewArch(family string, s Spec, in Shape) (Arch, error) {
	f, err := LookupFamily(family)
	if err != nil {
		return nil, err
	}
	if ps := f.Check(s); len(ps) > 0 {
		msgs := make([]string, len(ps))
		for i, p := range ps {
			msgs[i] = p.Msg
			if p.Key != "" {
				msgs[i] = p.Key + ": " + p.Msg
			}
		}
		return nil, fmt.Errorf("%s: %s", family, strings.Join(msgs, "; "))
	}
	if in.C < 1 || in.H < 1 || in.W < 1 || in.Classes < 2 {
		return nil, fmt.Errorf("input %d×%d×%d with %d classes is not a valid shape", in.C, in.H, in.W, in.Classes)
	}
	return f.New(s, in)
}

// HashKey returns family's HashKey of s (s itself for an unknown family):
// what step hashes and summaries record of an architecture.
func HashKey(family string, s Spec) any {
	f, err := LookupFamily(family)
	if err != nil {
		return s
	}
	return f.HashKey(s)
}

// Initialisation schemes of a family's weights (teacher.train.init,
// student.train.init).
const (
	// InitHe is kdcal's default: weights of layers followed by a ReLU He
	// (Kaiming) uniform, U(±√(6/fan_in)) (He et al. 2015), the output
	// layer Glorot uniform, U(±√(6/(fan_in+fan_out))) (Glorot & Bengio
	// 2010), biases 0.
	InitHe = "he"
	// InitTorch is PyTorch 1.13's reset_parameters of nn.Linear and
	// nn.Conv2d: kaiming_uniform_(w, a=√5), whose bound
	// gain·√(3/fan_in) with gain √(2/(1+a²)) = √(1/3) is 1/√fan_in, so
	// weights U(±1/√fan_in), and biases U(±1/√fan_in); BatchNorm weight 1,
	// bias 0.
	InitTorch = "torch"
)

// Initer is implemented by a family that draws its weights in more than
// kdcal's default way; Inits lists the schemes it supports, InitHe first.
// A family that does not implement it supports InitHe only.
type Initer interface {
	Inits() []string
}

// Inits returns the initialisation schemes family supports (nil for an
// unknown family).
func Inits(family string) []string {
	f, err := LookupFamily(family)
	if err != nil {
		return nil
	}
	if i, ok := f.(Initer); ok {
		return i.Inits()
	}
	return []string{InitHe}
}
