package model

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"

	"github.com/nlpodyssey/safetensors"
	"gorgonia.org/tensor"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/config"
)

// MetaKey is the safetensors metadata key holding the JSON-encoded Meta.
const MetaKey = "kdcal_model"

// Meta describes a saved model: enough to rebuild it in kdcal or PyTorch
// and to feed it correctly normalised inputs.
type Meta struct {
	Family  string    `json:"family"`            // mlp | cnn
	Conv    []int     `json:"conv,omitempty"`    // output channels per conv stage
	Hidden  []int     `json:"hidden"`            // hidden dense widths
	Input   [3]int    `json:"input"`             // C, H, W
	Classes int       `json:"classes"`           // outputs
	Params  int       `json:"params"`            // trainable parameters
	Dataset string    `json:"dataset,omitempty"` // dataset the model was trained on
	Scale   float64   `json:"scale,omitempty"`   // inputs are x' = (x·scale − mean_c) / std_c
	Mean    []float64 `json:"mean,omitempty"`    // per-channel mean after scaling
	Std     []float64 `json:"std,omitempty"`     // per-channel standard deviation after scaling
	Version string    `json:"kdcal_version,omitempty"`
	// Layout says in words how the tensors form the network.
	Layout string `json:"layout"`
}

const layoutText = "NCHW input; per conv stage i: conv{i} (3x3, stride 1, padding 1, torch Conv2d weight OIHW) + bias, " +
	"ReLU, max-pool 2x2 stride 2; flatten(1); per hidden layer i: fc{i} (torch Linear, weight (out,in)) + ReLU; " +
	"then out (torch Linear) gives the logits"

// MetaOf returns the Meta of w's architecture; callers fill the data fields.
func MetaOf(w *Weights) Meta {
	a := w.Arch
	return Meta{Family: a.Family, Conv: a.Spec.Conv, Hidden: a.Spec.Hidden, Input: [3]int{a.C, a.H, a.W},
		Classes: a.Classes, Params: a.NumParams(), Layout: layoutText}
}

// Arch rebuilds the architecture a Meta describes.
func (m Meta) Arch() (Arch, error) {
	return NewArch(m.Family, config.ModelSpec{Conv: m.Conv, Hidden: m.Hidden}, m.Input[0], m.Input[1], m.Input[2], m.Classes)
}

// TorchViews returns w's tensors in PyTorch layout (dense weights
// transposed to (out, in), biases flattened), keyed by prefix + name.
func (w *Weights) TorchViews(prefix string) map[string]safetensors.TensorView {
	if w.Dtype != tensor.Float32 {
		panic("model: TorchViews needs Float32 weights")
	}
	out := make(map[string]safetensors.TensorView, len(w.Params))
	for i, p := range w.Params {
		data := w.Float32s(i)
		if p.Kind == DenseWeight {
			data = transpose(data, p.Shape[0], p.Shape[1])
		}
		out[prefix+p.Name] = Float32View(p.TorchShape(), data)
	}
	return out
}

// SetFromTorch copies tensors in PyTorch layout (as TorchViews writes them)
// into w in place. Every parameter must be present with the right shape.
func (w *Weights) SetFromTorch(st safetensors.SafeTensors, prefix string) error {
	for i, p := range w.Params {
		data, err := ReadFloat32(st, prefix+p.Name, p.TorchShape())
		if err != nil {
			return err
		}
		if p.Kind == DenseWeight {
			data = transpose(data, p.Shape[1], p.Shape[0])
		}
		copy(w.Float32s(i), data)
	}
	return nil
}

// transpose returns the (cols × rows) transpose of a row-major rows × cols matrix.
func transpose(a []float32, rows, cols int) []float32 {
	t := make([]float32, len(a))
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			t[c*rows+r] = a[r*cols+c]
		}
	}
	return t
}

// Float32View encodes data (little-endian F32) as a safetensors view of shape.
func Float32View(shape []int, data []float32) safetensors.TensorView {
	b := make([]byte, 0, 4*len(data))
	for _, v := range data {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	s := make([]uint64, len(shape))
	for i, d := range shape {
		s[i] = uint64(d)
	}
	tv, err := safetensors.NewTensorView(safetensors.F32, s, b)
	if err != nil {
		panic("model: " + err.Error())
	}
	return tv
}

// ReadFloat32 decodes the F32 tensor name of shape from st.
func ReadFloat32(st safetensors.SafeTensors, name string, shape []int) ([]float32, error) {
	tv, ok := st.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("tensor %q is missing", name)
	}
	want := make([]uint64, len(shape))
	for i, d := range shape {
		want[i] = uint64(d)
	}
	if tv.DType() != safetensors.F32 || !slices.Equal(tv.Shape(), want) {
		return nil, fmt.Errorf("tensor %q is %v %v, want F32 %v", name, tv.DType(), tv.Shape(), want)
	}
	b := tv.Data()
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}

// Save writes w to path as safetensors (atomically): PyTorch-layout tensors
// named as in Arch.Params, and metadata {"format": "pt", MetaKey: JSON(meta)}.
// meta's architecture fields are taken from w.
func Save(path string, w *Weights, meta Meta) error {
	arch := MetaOf(w)
	meta.Family, meta.Conv, meta.Hidden, meta.Input, meta.Classes, meta.Params, meta.Layout =
		arch.Family, arch.Conv, arch.Hidden, arch.Input, arch.Classes, arch.Params, arch.Layout
	mj, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("model: encode metadata: %w", err)
	}
	b, err := safetensors.Serialize(w.TorchViews(""), map[string]string{"format": "pt", MetaKey: string(mj)})
	if err != nil {
		return fmt.Errorf("model: serialize %s: %w", path, err)
	}
	return atomicfile.Write(path, b)
}

// ReadFile reads and parses a safetensors file, returning its tensors and
// its metadata map.
func ReadFile(path string) (safetensors.SafeTensors, map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return safetensors.SafeTensors{}, nil, err
	}
	_, md, err := safetensors.ReadMetadata(b)
	if err != nil {
		return safetensors.SafeTensors{}, nil, fmt.Errorf("%s: not a safetensors file: %w", path, err)
	}
	st, err := safetensors.Deserialize(b)
	if err != nil {
		return safetensors.SafeTensors{}, nil, fmt.Errorf("%s: not a safetensors file: %w", path, err)
	}
	return st, md.Metadata(), nil
}

// Load reads a model written by Save and returns Float32 weights and the metadata.
func Load(path string) (*Weights, Meta, error) {
	st, md, err := ReadFile(path)
	if err != nil {
		return nil, Meta{}, err
	}
	var meta Meta
	mj, ok := md[MetaKey]
	if !ok {
		return nil, Meta{}, fmt.Errorf("%s: metadata has no %q entry (not written by kdcal)", path, MetaKey)
	}
	if err := json.Unmarshal([]byte(mj), &meta); err != nil {
		return nil, Meta{}, fmt.Errorf("%s: metadata %q: %w", path, MetaKey, err)
	}
	a, err := meta.Arch()
	if err != nil {
		return nil, Meta{}, fmt.Errorf("%s: %w", path, err)
	}
	w := NewWeights(a, tensor.Float32)
	if err := w.SetFromTorch(st, ""); err != nil {
		return nil, Meta{}, fmt.Errorf("%s: %w", path, err)
	}
	return w, meta, nil
}
