// Package npyfile reads and writes the NumPy .npy arrays kdcal exchanges with
// other tools: logits (float32 or float64, N×C) and labels or indices
// (int32 or int64, N). Reading uses codeberg.org/sbinet/npyio, which parses
// every header variant; writing a 2-D float32 array is done here because
// npyio writes slices as 1-D and 2-D only from float64 gonum matrices.
// Writes are atomic: a temp file in the same directory, then rename.
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

	"codeberg.org/sbinet/npyio"

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

// open reads the header of a .npy file.
func open(path string) (*os.File, *npyio.Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, fail(path, "file not found")
		}
		return nil, nil, fail(path, "%v", err)
	}
	r, err := npyio.NewReader(bufio.NewReader(f))
	if err != nil {
		f.Close()
		return nil, nil, fail(path, "not a NumPy .npy file (%v); save arrays with numpy.save", err)
	}
	return f, r, nil
}

// ReadMatrix reads a 2-D float32 or float64 array (C order) as row-major
// float64 values. It rejects other dtypes and shapes, empty arrays and
// non-finite values, naming the file and the first bad element.
func ReadMatrix(path string) (data []float64, rows, cols int, err error) {
	f, r, err := open(path)
	if err != nil {
		return nil, 0, 0, err
	}
	defer f.Close()
	shape := r.Header.Descr.Shape
	if len(shape) != 2 {
		return nil, 0, 0, fail(path, "expected a 2-D array (N examples × C classes), got shape %v", shape)
	}
	if r.Header.Descr.Fortran {
		return nil, 0, 0, fail(path, "Fortran-ordered arrays are not supported; save numpy.ascontiguousarray(x)")
	}
	rows, cols = shape[0], shape[1]
	if rows == 0 || cols == 0 {
		return nil, 0, 0, fail(path, "array is empty (shape %v)", shape)
	}
	switch dtypeCode(r.Header.Descr.Type) {
	case "f4":
		var v []float32
		if err := r.Read(&v); err != nil {
			return nil, 0, 0, fail(path, "truncated or unreadable data: %v", err)
		}
		data = make([]float64, len(v))
		for i, x := range v {
			data[i] = float64(x)
		}
	case "f8":
		if err := r.Read(&data); err != nil {
			return nil, 0, 0, fail(path, "truncated or unreadable data: %v", err)
		}
	default:
		return nil, 0, 0, fail(path, "dtype %s is not supported; use float32 or float64", r.Header.Descr.Type)
	}
	if len(data) != rows*cols {
		return nil, 0, 0, fail(path, "truncated: header says %d×%d, file holds %d values", rows, cols, len(data))
	}
	for i, x := range data {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, 0, 0, fail(path, "non-finite value %v at row %d, column %d", x, i/cols, i%cols)
		}
	}
	return data, rows, cols, nil
}

// ReadInts reads a 1-D int32 or int64 array (labels or indices).
func ReadInts(path string) ([]int, error) {
	f, r, err := open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	shape := r.Header.Descr.Shape
	if len(shape) != 1 {
		return nil, fail(path, "expected a 1-D array of N integers, got shape %v", shape)
	}
	if shape[0] == 0 {
		return nil, fail(path, "array is empty")
	}
	var out []int
	switch dtypeCode(r.Header.Descr.Type) {
	case "i4":
		var v []int32
		if err := r.Read(&v); err != nil {
			return nil, fail(path, "truncated or unreadable data: %v", err)
		}
		out = make([]int, len(v))
		for i, x := range v {
			out[i] = int(x)
		}
	case "i8":
		var v []int64
		if err := r.Read(&v); err != nil {
			return nil, fail(path, "truncated or unreadable data: %v", err)
		}
		out = make([]int, len(v))
		for i, x := range v {
			out[i] = int(x)
		}
	default:
		return nil, fail(path, "dtype %s is not supported for labels; use int32 or int64", r.Header.Descr.Type)
	}
	if len(out) != shape[0] {
		return nil, fail(path, "truncated: header says %d values, file holds %d", shape[0], len(out))
	}
	return out, nil
}

// dtypeCode reduces a header descr such as "'<f4'" to its kind and size ("f4");
// npyio handles the byte order when reading.
func dtypeCode(descr string) string {
	return strings.TrimLeft(strings.Trim(descr, "'\""), "<>|=")
}

// WriteFloat32 atomically writes a rows×cols float32 array in C order.
// It panics if len(data) != rows*cols.
func WriteFloat32(path string, data []float32, rows, cols int) error {
	if len(data) != rows*cols {
		panic("npyfile: data length does not match shape")
	}
	var buf bytes.Buffer
	buf.Grow(128 + 4*len(data))
	writeHeader(&buf, "<f4", fmt.Sprintf("(%d, %d)", rows, cols))
	if err := binary.Write(&buf, binary.LittleEndian, data); err != nil {
		return err
	}
	return atomicfile.Write(path, buf.Bytes())
}

// WriteInt64 atomically writes a 1-D int64 array.
func WriteInt64(path string, data []int) error {
	var buf bytes.Buffer
	writeHeader(&buf, "<i8", fmt.Sprintf("(%d,)", len(data)))
	v := make([]int64, len(data))
	for i, x := range data {
		v[i] = int64(x)
	}
	if err := binary.Write(&buf, binary.LittleEndian, v); err != nil {
		return err
	}
	return atomicfile.Write(path, buf.Bytes())
}

// writeHeader writes a version 1.0 header padded so the data starts on a
// 64-byte boundary, as numpy itself does.
func writeHeader(w io.Writer, descr, shape string) {
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape)
	const pre = 10 // magic (6) + version (2) + header length (2)
	total := pre + len(dict) + 1
	pad := (64 - total%64) % 64
	dict += strings.Repeat(" ", pad) + "\n"
	w.Write([]byte("\x93NUMPY\x01\x00"))
	binary.Write(w, binary.LittleEndian, uint16(len(dict)))
	io.WriteString(w, dict)
}
