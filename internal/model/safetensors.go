package model

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/nlpodyssey/safetensors"
	"gorgonia.org/tensor"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/spec"
)

// MetaKey is the safetensors metadata key holding the JSON-encoded Meta.
const MetaKey = "kdcal_model"

// Meta describes a saved model: enough to rebuild it in kdcal or PyTorch
// and to feed it correctly normalised inputs.
type Meta struct {
	Family  string    `json:"family"`            // mlp | cnn
	Conv    []int     `json:"conv,omitempty"`    // output channels per conv stage
	Hidden  []int     `json:"hidden"`            // hidden dense widths
	Spec    spec.Spec `json:"spec,omitempty"`    // the spec of a family other than mlp and cnn
	Input   [3]int    `json:"input"`             // C, H, W
	Classes int       `json:"classes"`           // outputs
	Params  int       `json:"params"`            // trainable parameters
	Dataset string    `json:"dataset,omitempty"` // dataset the model was trained on
	// Normalize is the data.normalize of training (standardize or unit;
	// empty in files written before the key existed: standardize). Scale,
	// Mean and Std hold its arithmetic either way (unit: mean 0, std 1).
	Normalize string    `json:"normalize,omitempty"`
	Scale     float64   `json:"scale,omitempty"` // inputs are x' = (x·scale − mean_c) / std_c
	Mean      []float64 `json:"mean,omitempty"`  // per-channel mean after scaling
	Std       []float64 `json:"std,omitempty"`   // per-channel standard deviation after scaling
	Version   string    `json:"kdcal_version,omitempty"`
	// Layout says in words how the tensors form the network.
	Layout string `json:"layout"`
}

const layoutText = "NCHW input; per conv stage i: conv{i} (3x3, stride 1, padding 1, torch Conv2d weight OIHW) + bias, " +
	"ReLU, max-pool 2x2 stride 2; flatten(1); per hidden layer i: fc{i} (torch Linear, weight (out,in)) + ReLU; " +
	"then out (torch Linear) gives the logits"

// MetaOf returns the Meta of w's architecture; callers fill the data fields.
func MetaOf(w *Weights) Meta {
	a := w.Arch
	m := Meta{Family: a.Family, Input: [3]int{a.C, a.H, a.W}, Classes: a.Classes, Params: a.NumParams(), Layout: layoutText}
	if ca, ok := a.desc.(spec.ConvArch); ok {
		m.Conv, m.Hidden = ca.Spec.Conv, ca.Spec.Hidden
	} else {
		m.Spec, m.Layout = a.Spec, a.String()
	}
	return m
}

// Arch rebuilds the architecture a Meta describes.
func (m Meta) Arch() (Arch, error) {
	s := m.Spec
	if s == nil {
		s = spec.Spec{"hidden": m.Hidden}
		if m.Conv != nil {
			s["conv"] = m.Conv
		}
	}
	return NewArch(m.Family, s, m.Input[0], m.Input[1], m.Input[2], m.Classes)
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
	for i, p := range w.Buffers {
		if c := w.Counters[i]; c != nil {
			out[prefix+p.Name] = int64View(*c)
			continue
		}
		out[prefix+p.Name] = Float32View(p.TorchShape(), w.B[i].Data().([]float32))
	}
	return out
}

// counterShape is the shape a Counter buffer (torch's 0-dim int64
// num_batches_tracked) is stored with: (1,), because
// github.com/nlpodyssey/safetensors counts a 0-dim shape as 0 elements;
// torch's load_state_dict takes a (1,) tensor for a 0-dim buffer (its
// compatibility rule for checkpoints from torch 0.3).
var counterShape = []int{1}

// int64View encodes v as a safetensors I64 view of shape counterShape.
func int64View(v int64) safetensors.TensorView {
	tv, err := safetensors.NewTensorView(safetensors.I64, []uint64{1}, binary.LittleEndian.AppendUint64(nil, uint64(v)))
	if err != nil {
		panic("model: " + err.Error())
	}
	return tv
}

// readInt64 decodes the I64 counter tensor name from st.
func readInt64(st safetensors.SafeTensors, name string) (int64, error) {
	tv, ok := st.Tensor(name)
	if !ok {
		return 0, fmt.Errorf("tensor %q is missing", name)
	}
	if tv.DType() != safetensors.I64 || !slices.Equal(tv.Shape(), []uint64{1}) {
		return 0, fmt.Errorf("tensor %q is %v %v, want I64 [1]", name, tv.DType(), tv.Shape())
	}
	v := int64(binary.LittleEndian.Uint64(tv.Data()))
	if v < 0 {
		return 0, fmt.Errorf("tensor %q is %d, a count must be ≥ 0", name, v)
	}
	return v, nil
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
	for i, p := range w.Buffers {
		if c := w.Counters[i]; c != nil {
			v, err := readInt64(st, prefix+p.Name)
			if err != nil {
				return err
			}
			*c = v
			continue
		}
		data, err := ReadFloat32(st, prefix+p.Name, p.TorchShape())
		if err != nil {
			return err
		}
		copy(w.B[i].Data().([]float32), data)
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
	meta.Family, meta.Conv, meta.Hidden, meta.Spec, meta.Input, meta.Classes, meta.Params, meta.Layout =
		arch.Family, arch.Conv, arch.Hidden, arch.Spec, arch.Input, arch.Classes, arch.Params, arch.Layout
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

// FileError is a safetensors file that cannot be read or does not hold the
// model it should: Path names it, Msg says what is wrong, Err is the
// underlying error when there is one (fs.ErrNotExist for a missing file).
type FileError struct {
	Path string
	Msg  string
	Err  error
}

func (e *FileError) Error() string { return e.Path + ": " + e.Msg }
func (e *FileError) Unwrap() error { return e.Err }

// maxHeaderBytes bounds a safetensors header (the JSON after the 8-byte
// length), as the format's reference implementation and
// github.com/nlpodyssey/safetensors do: 100 MB.
const maxHeaderBytes = 100_000_000

// ReadFile reads and parses a safetensors file, returning its tensors and
// its metadata map. Before it reads the file it checks the header length
// against the bound and the file's size; the library then checks every
// tensor's dtype, shape and data offsets against the data (contiguous,
// exactly covering the file, no overflow).
func ReadFile(path string) (safetensors.SafeTensors, map[string]string, error) {
	b, err := readChecked(path)
	if err != nil {
		return safetensors.SafeTensors{}, nil, err
	}
	return parse(path, b)
}

// readChecked reads a file whose 8-byte header length is plausible.
func readChecked(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		msg := err.Error()
		if errors.Is(err, fs.ErrNotExist) {
			msg = "file not found"
		}
		return nil, &FileError{Path: path, Msg: msg, Err: err}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, &FileError{Path: path, Msg: err.Error(), Err: err}
	}
	if st.IsDir() {
		return nil, &FileError{Path: path, Msg: "is a directory, not a safetensors file"}
	}
	size := st.Size()
	var head [8]byte
	if _, err := io.ReadFull(f, head[:]); err != nil {
		return nil, &FileError{Path: path, Msg: fmt.Sprintf("not a safetensors file: %d bytes, too short for the 8-byte header length", size)}
	}
	n := binary.LittleEndian.Uint64(head[:])
	switch {
	case n > maxHeaderBytes:
		return nil, &FileError{Path: path, Msg: fmt.Sprintf("not a safetensors file: header length %d is over the format's %d-byte bound", n, maxHeaderBytes)}
	case n > uint64(size-8):
		return nil, &FileError{Path: path, Msg: fmt.Sprintf("truncated: the header length says %d bytes, the file has %d after it", n, size-8)}
	}
	b := make([]byte, size)
	copy(b, head[:])
	if _, err := io.ReadFull(f, b[8:]); err != nil {
		return nil, &FileError{Path: path, Msg: "truncated while reading (did the file change?): " + err.Error()}
	}
	return b, nil
}

// parse deserializes a whole safetensors file held in b.
func parse(path string, b []byte) (safetensors.SafeTensors, map[string]string, error) {
	_, md, err := safetensors.ReadMetadata(b)
	if err != nil {
		return safetensors.SafeTensors{}, nil, &FileError{Path: path, Msg: "not a valid safetensors file: " + err.Error(), Err: err}
	}
	st, err := safetensors.Deserialize(b)
	if err != nil {
		return safetensors.SafeTensors{}, nil, &FileError{Path: path, Msg: "not a valid safetensors file: " + err.Error(), Err: err}
	}
	return st, md.Metadata(), nil
}

// Load reads a model written by Save and returns Float32 weights and the
// metadata. Every tensor the metadata's architecture needs is checked
// (present, F32, the right shape) before the weights are allocated, so a
// damaged or foreign file cannot make kdcal allocate what its metadata
// claims.
func Load(path string) (*Weights, Meta, error) {
	st, md, err := ReadFile(path)
	if err != nil {
		return nil, Meta{}, err
	}
	return fromTensors(path, st, md)
}

func fromTensors(path string, st safetensors.SafeTensors, md map[string]string) (*Weights, Meta, error) {
	var meta Meta
	mj, ok := md[MetaKey]
	if !ok {
		return nil, Meta{}, &FileError{Path: path, Msg: fmt.Sprintf("metadata has no %q entry (not a model written by kdcal)", MetaKey)}
	}
	if err := json.Unmarshal([]byte(mj), &meta); err != nil {
		return nil, Meta{}, &FileError{Path: path, Msg: fmt.Sprintf("metadata %q is not valid: %v", MetaKey, err), Err: err}
	}
	a, err := meta.Arch()
	if err != nil {
		return nil, Meta{}, &FileError{Path: path, Msg: "metadata describes no valid architecture: " + strings.TrimPrefix(err.Error(), "model: "), Err: err}
	}
	params := a.Params()
	for _, p := range params {
		if err := checkTensor(st, p.Name, p.TorchShape()); err != nil {
			return nil, Meta{}, &FileError{Path: path, Msg: fmt.Sprintf("%v (the metadata describes %s)", err, a), Err: err}
		}
	}
	bufs := a.desc.Buffers()
	for _, p := range bufs {
		err := checkTensor(st, p.Name, p.TorchShape())
		if p.Kind == spec.Counter {
			_, err = readInt64(st, p.Name)
		}
		if err != nil {
			return nil, Meta{}, &FileError{Path: path, Msg: fmt.Sprintf("%v (the metadata describes %s)", err, a), Err: err}
		}
	}
	if n := st.Len(); n != len(params)+len(bufs) {
		return nil, Meta{}, &FileError{Path: path, Msg: fmt.Sprintf("holds %d tensors, the architecture %s has %d", n, a, len(params)+len(bufs))}
	}
	w := NewWeights(a, tensor.Float32)
	if err := w.SetFromTorch(st, ""); err != nil {
		return nil, Meta{}, &FileError{Path: path, Msg: err.Error(), Err: err}
	}
	return w, meta, nil
}

// checkTensor checks that tensor name is F32 of the given shape without
// decoding it.
func checkTensor(st safetensors.SafeTensors, name string, shape []int) error {
	tv, ok := st.Tensor(name)
	if !ok {
		return fmt.Errorf("tensor %q is missing", name)
	}
	want := make([]uint64, len(shape))
	for i, d := range shape {
		if d < 1 {
			return fmt.Errorf("tensor %q would have shape %v", name, shape)
		}
		want[i] = uint64(d)
	}
	if tv.DType() != safetensors.F32 || !slices.Equal(tv.Shape(), want) {
		return fmt.Errorf("tensor %q is %v %v, want F32 %v", name, tv.DType(), tv.Shape(), want)
	}
	return nil
}
