package npyfile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// seedHeaders are the header variants the fuzz targets start from.
var seedHeaders = []string{
	"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n",
	"{'shape': (2, 3), 'fortran_order': True, 'descr': '>f8'}",
	`{"descr": "<i8", "fortran_order": False, "shape": (6,)}` + "\n",
	"{'descr': '|u1', 'fortran_order': False, 'shape': (0x6L,), } # c\n",
	"{'descr': '<f2', 'fortran_order': False, 'shape': (), }",
	"{'descr': '<i4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 0), }",
}

// FuzzReadNPY feeds arbitrary bytes to the .npy reader. It must never panic or
// allocate more than the input holds; when it accepts a file, the header
// must describe exactly the bytes that follow it, re-rendering the header
// canonically must parse to the same header, and the values must survive a
// canonical re-encoding unchanged.
func FuzzReadNPY(f *testing.F) {
	for i, h := range seedHeaders {
		for _, ver := range []byte{1, 2, 3} {
			f.Add(npyBytes(ver, h, make([]byte, 48)[:24+8*i%24]))
		}
	}
	f.Add(encodeFloat32([]float32{1, 2, 3, 4, 5, 6}, 2, 3))
	f.Add(encodeInt64([]int{3, -1, 9}))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeBytes(b)
		if err != nil {
			return
		}
		if int64(h.Count)*int64(h.Size) != int64(len(b))-h.DataOffset {
			t.Fatalf("accepted header %+v does not describe the %d bytes after it", h, int64(len(b))-h.DataOffset)
		}
		checkCanonicalHeader(t, h)
		data := b[h.DataOffset:]
		if m, rows, cols, err := decodeMatrix(bytes.NewReader(data), h); err == nil {
			checkMatrixRoundTrip(t, m, rows, cols)
		}
		if y, err := decodeInts(bytes.NewReader(data), h); err == nil && len(y) != h.Count {
			t.Fatalf("decodeInts returned %d values for shape %v", len(y), h.Shape)
		}
	})
}

// checkCanonicalHeader writes h's dict the way numpy does and parses it back.
func checkCanonicalHeader(t *testing.T, h Header) {
	t.Helper()
	fortran := "False"
	if h.Fortran {
		fortran = "True"
	}
	dict := fmt.Sprintf("{'descr': %q, 'fortran_order': %s, 'shape': %s, }\n", h.Descr, fortran, shapeString(h.Shape))
	if !strings.ContainsAny(h.Descr, "\\\"'") {
		var h2 Header
		if err := h2.parseDict(dict); err != nil {
			t.Fatalf("canonical header %q of an accepted file does not parse: %v", dict, err)
		}
		if h2.Descr != h.Descr || h2.Fortran != h.Fortran || !slices.Equal(h2.Shape, h.Shape) || h2.Count != h.Count {
			t.Fatalf("canonical header %q parses to %+v, want %+v", dict, h2, h)
		}
	}
}

// checkMatrixRoundTrip encodes m as a canonical little-endian float64 file
// and reads it back.
func checkMatrixRoundTrip(t *testing.T, m []float64, rows, cols int) {
	t.Helper()
	var buf bytes.Buffer
	writeHeader(&buf, "<f8", []int{rows, cols})
	binary.Write(&buf, binary.LittleEndian, m)
	h, err := decodeBytes(buf.Bytes())
	if err != nil {
		t.Fatalf("re-encoded matrix does not read: %v", err)
	}
	m2, r2, c2, err := decodeMatrix(bytes.NewReader(buf.Bytes()[h.DataOffset:]), h)
	if err != nil || r2 != rows || c2 != cols || !slices.Equal(m, m2) {
		t.Fatalf("re-encoded matrix reads as %v %d×%d (%v), want %v %d×%d", m2, r2, c2, err, m, rows, cols)
	}
}

// FuzzNPYRoundTrip checks that what npyfile writes it reads back identically:
// float32 matrices bit for bit (non-finite values refused with their
// position) and int64 vectors exactly.
func FuzzNPYRoundTrip(f *testing.F) {
	f.Add(uint8(2), uint8(3), []byte("0123456789abcdefghijklmnopqrstuvwxyz"))
	f.Add(uint8(1), uint8(1), []byte{0, 0, 0xc0, 0x7f}) // NaN
	f.Fuzz(func(t *testing.T, rows, cols uint8, raw []byte) {
		r, c := int(rows), int(cols)
		if r*c*4 > len(raw) {
			r = len(raw) / 4 / max(c, 1)
		}
		vals := make([]float32, r*c)
		finite := true
		for i := range vals {
			vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			finite = finite && !math.IsNaN(float64(vals[i])) && !math.IsInf(float64(vals[i]), 0)
		}
		b := encodeFloat32(vals, r, c)
		h, err := decodeBytes(b)
		if err != nil {
			t.Fatalf("written %d×%d file does not read: %v", r, c, err)
		}
		m, r2, c2, err := decodeMatrix(bytes.NewReader(b[h.DataOffset:]), h)
		switch {
		case r*c == 0:
			if err == nil || !strings.Contains(err.Error(), "empty") {
				t.Fatalf("empty %d×%d matrix: %v", r, c, err)
			}
		case !finite:
			if err == nil || !strings.Contains(err.Error(), "non-finite") {
				t.Fatalf("non-finite values read without error: %v", err)
			}
		case err != nil || r2 != r || c2 != c:
			t.Fatalf("%d×%d read as %d×%d: %v", r, c, r2, c2, err)
		default:
			for i, v := range vals {
				if math.Float32bits(float32(m[i])) != math.Float32bits(v) {
					t.Fatalf("element %d: wrote %v, read %v", i, v, m[i])
				}
			}
		}
		ints := make([]int, len(raw)/8)
		for i := range ints {
			ints[i] = int(int64(binary.LittleEndian.Uint64(raw[8*i:])))
		}
		b = encodeInt64(ints)
		h, err = decodeBytes(b)
		if err != nil {
			t.Fatalf("written int64 file does not read: %v", err)
		}
		y, err := decodeInts(bytes.NewReader(b[h.DataOffset:]), h)
		if len(ints) > 0 && (err != nil || !slices.Equal(y, ints)) {
			t.Fatalf("wrote %v, read %v (%v)", ints, y, err)
		}
	})
}
