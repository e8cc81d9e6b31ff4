// Package npyfile reads and writes the NumPy .npy arrays kdcal exchanges with
// other tools: logits (float16, float32 or float64, N×C) and labels or
// indices (any integer dtype, N). Writes are atomic: a temp file in the same
// directory, then rename.
//
// The header parser is written here rather than taken from
// codeberg.org/sbinet/npyio, whose v0.14 reader assumes numpy's own key
// order and spacing: it panics on headers with the keys in another order or
// without a closing brace, misreads a shape when the dict has no trailing
// comma, rejects double-quoted keys and version 3.0, and allocates whatever
// header length a corrupt file declares. This one parses the header as the
// Python literal it is (see pylit.go) and checks the declared data size
// against the file before allocating.
//
// Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
package npyfile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/kdcal/kdcal/internal/atomicfile"
)

// Error is a problem with one .npy file; Path names it.
type Error struct {
	Path string
	Msg  string
}

func (e *Error) Error() string { return e.Path + ": " + e.Msg }

func fail(path, format string, args ...any) error {
	return &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// open opens path and reads its header, checking that the data the header
// declares is exactly what the file holds after it.
func open(path string) (*os.File, *bufio.Reader, Header, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, Header{}, fail(path, "file not found")
		}
		return nil, nil, Header{}, fail(path, "%v", err)
	}
	st, err := f.Stat()
	if err == nil && st.IsDir() {
		err = errors.New("is a directory, not a .npy file")
	}
	if err != nil {
		f.Close()
		return nil, nil, Header{}, fail(path, "%v", err)
	}
	br := bufio.NewReader(f)
	h, err := readHeader(br, st.Size())
	if err == nil {
		err = h.checkLength(st.Size())
	}
	if err != nil {
		f.Close()
		return nil, nil, Header{}, &Error{Path: path, Msg: err.Error()}
	}
	return f, br, h, nil
}

// ReadMatrix reads a 2-D float16, float32 or float64 array (either byte
// order, C or Fortran order) as row-major float64 values. It rejects other
// dtypes and shapes, empty arrays and non-finite values, naming the file and
// the first bad element.
func ReadMatrix(path string) (data []float64, rows, cols int, err error) {
	f, br, h, err := open(path)
	if err != nil {
		return nil, 0, 0, err
	}
	defer f.Close()
	data, rows, cols, err = decodeMatrix(br, h)
	if err != nil {
		return nil, 0, 0, &Error{Path: path, Msg: err.Error()}
	}
	return data, rows, cols, nil
}

// decodeMatrix reads the data of a checked header (see ReadMatrix).
func decodeMatrix(r io.Reader, h Header) (data []float64, rows, cols int, err error) {
	if len(h.Shape) != 2 {
		return nil, 0, 0, fmt.Errorf("expected a 2-D array (N examples × C classes), got shape %s", shapeString(h.Shape))
	}
	rows, cols = h.Shape[0], h.Shape[1]
	if rows == 0 || cols == 0 {
		return nil, 0, 0, fmt.Errorf("array is empty (shape %s)", shapeString(h.Shape))
	}
	if h.Kind != 'f' {
		return nil, 0, 0, fmt.Errorf("dtype %s is not supported; logits must be float32 or float64 (x.astype(numpy.float32))", h.Descr)
	}
	raw, err := readData(r, h)
	if err != nil {
		return nil, 0, 0, err
	}
	data = make([]float64, h.Count)
	for i := range data {
		data[i] = floatAt(raw, i, h)
	}
	if h.Fortran {
		data = transpose(data, cols, rows)
	}
	for i, x := range data {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, 0, 0, fmt.Errorf("non-finite value %v at row %d, column %d", x, i/cols, i%cols)
		}
	}
	return data, rows, cols, nil
}

// ReadInts reads a 1-D array of any integer dtype (int8 … int64, uint8 …
// uint64, either byte order): labels or indices.
func ReadInts(path string) ([]int, error) {
	f, br, h, err := open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out, err := decodeInts(br, h)
	if err != nil {
		return nil, &Error{Path: path, Msg: err.Error()}
	}
	return out, nil
}

// decodeInts reads the data of a checked header (see ReadInts).
func decodeInts(r io.Reader, h Header) ([]int, error) {
	if len(h.Shape) != 1 {
		return nil, fmt.Errorf("expected a 1-D array of N integers, got shape %s", shapeString(h.Shape))
	}
	if h.Count == 0 {
		return nil, errors.New("array is empty")
	}
	if h.Kind != 'i' && h.Kind != 'u' {
		return nil, fmt.Errorf("dtype %s is not supported for labels; use an integer dtype such as int64", h.Descr)
	}
	raw, err := readData(r, h)
	if err != nil {
		return nil, err
	}
	out := make([]int, h.Count)
	for i := range out {
		v, ok := intAt(raw, i, h)
		if !ok {
			return nil, fmt.Errorf("value at index %d does not fit in a 64-bit signed integer", i)
		}
		out[i] = v
	}
	return out, nil
}

// readData reads the Count·Size data bytes; the caller has checked that the
// file holds exactly that many after the header.
func readData(r io.Reader, h Header) ([]byte, error) {
	raw := make([]byte, h.Count*h.Size)
	if n, err := io.ReadFull(r, raw); err != nil {
		return nil, fmt.Errorf("truncated while reading: %d of %d bytes of data (did the file change?)", n, len(raw))
	}
	return raw, nil
}

// floatAt decodes element i of float data.
func floatAt(raw []byte, i int, h Header) float64 {
	b := raw[i*h.Size:]
	switch h.Size {
	case 2:
		return float16(h.Order.Uint16(b))
	case 4:
		return float64(math.Float32frombits(h.Order.Uint32(b)))
	default:
		return math.Float64frombits(h.Order.Uint64(b))
	}
}

// intAt decodes element i of integer data; ok is false for a uint64 above
// math.MaxInt64.
func intAt(raw []byte, i int, h Header) (int, bool) {
	b := raw[i*h.Size:]
	var u uint64
	switch h.Size {
	case 1:
		u = uint64(b[0])
	case 2:
		u = uint64(h.Order.Uint16(b))
	case 4:
		u = uint64(h.Order.Uint32(b))
	default:
		u = h.Order.Uint64(b)
	}
	if h.Kind == 'u' {
		return int(u), u <= math.MaxInt64
	}
	shift := 64 - 8*uint(h.Size) // sign-extend
	return int(int64(u<<shift) >> shift), true
}

// float16 converts an IEEE 754 binary16 value (numpy's float16) to float64:
// (−1)^s · 2^(e−15) · (1 + m/1024) for normal numbers, 2^−14 · m/1024 for
// subnormals, ±Inf and NaN for e = 31.
func float16(b uint16) float64 {
	sign := 1.0
	if b&0x8000 != 0 {
		sign = -1
	}
	e, m := int(b>>10&0x1f), float64(b&0x3ff)
	switch e {
	case 0:
		return sign * math.Ldexp(m/1024, -14)
	case 31:
		if m != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	}
	return sign * math.Ldexp(1+m/1024, e-15)
}

// transpose returns the (cols × rows) transpose of a row-major rows × cols
// matrix. Column-major (Fortran-order) data of an m × n array is the
// row-major n × m transpose, so transpose(data, n, m) puts it in C order.
func transpose(in []float64, rows, cols int) []float64 {
	out := make([]float64, len(in))
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			out[c*rows+r] = in[r*cols+c]
		}
	}
	return out
}

// WriteFloat32 atomically writes a rows×cols float32 array in C order.
// It panics if len(data) != rows*cols.
func WriteFloat32(path string, data []float32, rows, cols int) error {
	return atomicfile.Write(path, encodeFloat32(data, rows, cols))
}

// WriteInt64 atomically writes a 1-D int64 array.
func WriteInt64(path string, data []int) error {
	return atomicfile.Write(path, encodeInt64(data))
}

func encodeFloat32(data []float32, rows, cols int) []byte {
	if len(data) != rows*cols {
		panic("npyfile: data length does not match shape")
	}
	var buf bytes.Buffer
	buf.Grow(128 + 4*len(data))
	writeHeader(&buf, "<f4", []int{rows, cols})
	binary.Write(&buf, binary.LittleEndian, data)
	return buf.Bytes()
}

func encodeInt64(data []int) []byte {
	var buf bytes.Buffer
	buf.Grow(128 + 8*len(data))
	writeHeader(&buf, "<i8", []int{len(data)})
	for _, x := range data {
		buf.Write(binary.LittleEndian.AppendUint64(nil, uint64(x)))
	}
	return buf.Bytes()
}

// writeHeader writes a version 1.0 header padded so the data starts on a
// 64-byte boundary, as numpy itself does.
func writeHeader(w *bytes.Buffer, descr string, shape []int) {
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shapeString(shape))
	const pre = 10 // magic (6) + version (2) + header length (2)
	total := pre + len(dict) + 1
	pad := (64 - total%64) % 64
	dict += strings.Repeat(" ", pad) + "\n"
	w.WriteString(magic + "\x01\x00")
	binary.Write(w, binary.LittleEndian, uint16(len(dict)))
	w.WriteString(dict)
}
