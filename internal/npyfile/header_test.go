package npyfile

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// python is Debian's interpreter (internal/testutil.Python; testutil
// imports this package, so it cannot be imported here).
const python = "/usr/bin/python3"

// npyBytes builds a .npy file from a raw header text (no padding added),
// for format version ver (1, 2 or 3), followed by data.
func npyBytes(ver byte, header string, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString(magic)
	b.Write([]byte{ver, 0})
	if ver == 1 {
		binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	} else {
		binary.Write(&b, binary.LittleEndian, uint32(len(header)))
	}
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

// decodeBytes reads a whole .npy file held in memory, as ReadMatrix and
// ReadInts read one on disk.
func decodeBytes(b []byte) (Header, error) {
	h, err := readHeader(bytes.NewReader(b), int64(len(b)))
	if err == nil {
		err = h.checkLength(int64(len(b)))
	}
	return h, err
}

// TestHeaderVariants pins header parsing against the NumPy format
// specification: any key order, either quote, optional trailing commas,
// padding, versions 1.0–3.0, and the cases of issue 11 that panicked or
// were misread with npyio.
func TestHeaderVariants(t *testing.T) {
	six := make([]byte, 24) // 6 × 4 bytes
	tests := []struct {
		name   string
		ver    byte
		header string
		data   []byte
		shape  []int
		descr  string
	}{
		{"numpy's own", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + strings.Repeat(" ", 50) + "\n", six, []int{2, 3}, "<f4"},
		{"keys in another order (panicked)", 1, "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4', }\n", six, []int{2, 3}, "<f4"},
		{"double quotes (rejected)", 1, `{"descr": "<f4", "fortran_order": False, "shape": (2, 3)}` + "\n", six, []int{2, 3}, "<f4"},
		{"no trailing comma, 2-D", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\n", six, []int{2, 3}, "<f4"},
		{"no trailing comma, 1-D (read as length 0)", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (6,)}\n", six, []int{6}, "<i4"},
		{"shape with trailing comma", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3,), }\n", six, []int{2, 3}, "<i4"},
		{"no spaces", 1, "{'descr':'<i4','fortran_order':False,'shape':(6,)}", six, []int{6}, "<i4"},
		{"newlines, tabs, comment", 1, "{\n\t'descr': '<i4',  # int32\n\t'fortran_order': False,\r\n\t'shape': ( 6 , ) ,\n}\n", six, []int{6}, "<i4"},
		{"leading spaces", 1, "   {'descr': '<i4', 'fortran_order': False, 'shape': (6,)}\n", six, []int{6}, "<i4"},
		{"version 2.0", 2, "{'descr': '<i4', 'fortran_order': False, 'shape': (6,), }\n", six, []int{6}, "<i4"},
		{"version 3.0 (rejected)", 3, "{'descr': '<i4', 'fortran_order': False, 'shape': (6,), }\n", six, []int{6}, "<i4"},
		{"version 3.0 UTF-8 comment", 3, "{'descr': '<i4', 'fortran_order': False, 'shape': (6,), } # é\n", six, []int{6}, "<i4"},
		{"Python 2 long suffix", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2L, 3L), }\n", six, []int{2, 3}, "<i4"},
		{"u prefix", 1, "{u'descr': u'<i4', u'fortran_order': False, u'shape': (6,), }\n", six, []int{6}, "<i4"},
		{"hex and unary plus", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (0x2, +3), }\n", six, []int{2, 3}, "<i4"},
		{"parenthesised tuple", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': ((6,)), }\n", six, []int{6}, "<i4"},
		{"duplicate key, last wins", 1, "{'descr': '<f8', 'descr': '<i4', 'fortran_order': False, 'shape': (6,), }\n", six, []int{6}, "<i4"},
		{"adjacent strings", 1, "{'descr': '<' 'i4', 'fortran_order': False, 'shape': (6,), }\n", six, []int{6}, "<i4"},
		{"scalar", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (), }\n", six[:4], nil, "<i4"},
		{"zero-length", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (0, 3), }\n", nil, []int{0, 3}, "<i4"},
		{"big-endian", 1, "{'descr': '>i4', 'fortran_order': False, 'shape': (6,), }\n", six, []int{6}, ">i4"},
		{"native order", 1, "{'descr': '=i4', 'fortran_order': False, 'shape': (6,), }\n", six, []int{6}, "=i4"},
		{"not applicable order", 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (24,), }\n", six, []int{24}, "|u1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := decodeBytes(npyBytes(tt.ver, tt.header, tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(h.Shape, tt.shape) && !(len(h.Shape) == 0 && len(tt.shape) == 0) || h.Descr != tt.descr {
				t.Errorf("shape %v descr %q, want %v %q", h.Shape, h.Descr, tt.shape, tt.descr)
			}
		})
	}
}

// TestHeaderErrors pins the message for every malformed header: none
// panics, none allocates what a corrupt length or shape declares.
func TestHeaderErrors(t *testing.T) {
	six := make([]byte, 24)
	good := "{'descr': '<i4', 'fortran_order': False, 'shape': (6,), }\n"
	tests := []struct {
		name string
		file []byte
		want string
	}{
		{"empty file", nil, "the file is empty"},
		{"text", []byte("label\n1\n2\n"), "not a NumPy .npy file"},
		{"npz", []byte("PK\x03\x04rest"), ".npz archive"},
		{"truncated magic", []byte(magic[:4]), "truncated: 4 bytes, too short for a .npy header"},
		{"truncated before the length", []byte(magic + "\x01\x00\x10"), "ends inside the header length"},
		{"truncated header (panicked)", npyBytes(1, good, six)[:30], "truncated: the header declares 58 bytes, but the file has 30 bytes"},
		{"huge header length", append([]byte(magic+"\x02\x00\xff\xff\xff\x7f"), bytes.Repeat([]byte(" "), 100)...), "the header declares 2147483647 bytes"},
		{"unknown version", append([]byte(magic+"\x04\x00"), npyBytes(1, good, six)[8:]...), "format version 4.0 is not one NumPy defines"},
		{"minor version", append([]byte(magic+"\x01\x01"), npyBytes(1, good, six)[8:]...), "format version 1.1"},
		{"missing closing brace (panicked)", npyBytes(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (6,), \n", six), "no closing brace"},
		{"missing closing paren", npyBytes(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (6, }\n", six), "not a Python literal"},
		{"junk after the dict", npyBytes(1, good[:len(good)-1]+" x\n", six), `unexpected "x\n" after`},
		{"NUL padding", npyBytes(1, good[:len(good)-1]+"\x00\x00\n", six), "NUL byte"},
		{"not a dict", npyBytes(1, "[1, 2]\n", six), "header is a list, not a dict"},
		{"missing key", npyBytes(1, "{'descr': '<i4', 'shape': (6,), }\n", six), `no "fortran_order" key`},
		{"extra key", npyBytes(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (6,), 'x': 1}\n", six), `unexpected key "x"`},
		{"1-tuple without comma", npyBytes(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (6), }\n", six), "shape 6 is not a tuple (a 1-D shape is written (n,))"},
		{"shape as list", npyBytes(1, "{'descr': '<i4', 'fortran_order': False, 'shape': [6], }\n", six), "shape [6] is not a tuple"},
		{"negative dimension", npyBytes(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (-6,), }\n", six), "dimension 0 is negative"},
		{"boolean dimension", npyBytes(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (True,), }\n", six), "dimension 0 is a boolean"},
		{"leading zero", npyBytes(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (06,), }\n", six), `"06" is not an integer literal`},
		{"fortran_order 0", npyBytes(1, "{'descr': '<i4', 'fortran_order': 0, 'shape': (6,), }\n", six), "fortran_order is 0, not True or False"},
		{"structured dtype", npyBytes(1, "{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (6,), }\n", six), "structured dtype"},
		{"object dtype", npyBytes(1, "{'descr': '|O', 'fortran_order': False, 'shape': (6,), }\n", six), `dtype "|O" is not a numeric dtype`},
		{"bytes descr", npyBytes(1, "{'descr': b'<i4', 'fortran_order': False, 'shape': (6,), }\n", six), "not a Python literal"},
		{"odd size", npyBytes(1, "{'descr': '<i3', 'fortran_order': False, 'shape': (6,), }\n", six), `dtype "<i3"`},
		{"L suffix in 3.0", npyBytes(3, "{'descr': '<i4', 'fortran_order': False, 'shape': (6L,), }\n", six), "not an integer literal"},
		{"huge shape (panicked)", npyBytes(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (100000000000, 3), }\n", six),
			"truncated: the header declares shape (100000000000, 3) of <i4 (1200000000000 bytes of data), the file holds 24"},
		{"shape overflows int64", npyBytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }\n", six), "declares more data than any file can hold"},
		{"shape wraps to 0", npyBytes(1, "{'descr': '<u1', 'fortran_order': False, 'shape': (4294967296, 4294967296, 0), }\n", nil), "holds a zero dimension"},
		{"dimension above int64", npyBytes(1, "{'descr': '<u1', 'fortran_order': False, 'shape': (99999999999999999999,), }\n", nil), "too large"},
		{"truncated data", npyBytes(1, good, six[:20]), "truncated: the header declares shape (6,) of <i4 (24 bytes of data), the file holds 20"},
		{"trailing data", npyBytes(1, good, append(six, 1, 2)), "2 bytes follow the 24 bytes of data the header declares"},
		{"deep nesting", npyBytes(1, strings.Repeat("(", 100)+"\n", nil), "nesting deeper than 32"},
		{"unclosed string", npyBytes(1, "{'descr: '<i4'}\n", six), "not a Python literal"},
		{"invalid UTF-8 in 3.0", npyBytes(3, "{'descr': '<i4', 'fortran_order': False, 'shape': (6,), } # \xff\n", six), "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeBytes(tt.file)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestFloat16 checks the binary16 decoder on values whose bits numpy gives:
// np.array([1, -2, 65504, 2**-24, 2**-14, inf], np.float16).view(np.uint16).
func TestFloat16(t *testing.T) {
	tests := []struct {
		bits uint16
		want float64
	}{
		{0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, 0x1p-24}, {0x0400, 0x1p-14}, {0x3555, 0.333251953125}, {0, 0},
	}
	for _, tt := range tests {
		if got := float16(tt.bits); got != tt.want {
			t.Errorf("float16(%#04x) = %v, want %v", tt.bits, got, tt.want)
		}
	}
	if v := float16(0x7c00); v <= 1e308 {
		t.Errorf("float16(0x7c00) = %v, want +Inf", v)
	}
	if v := float16(0x7e00); v == v {
		t.Errorf("float16(0x7e00) = %v, want NaN", v)
	}
}

// TestNumpyDifferential mutates headers at random (seeded: insertions,
// deletions and replacements drawn from header tokens) and has numpy.load
// and kdcal read each file: kdcal must accept nothing numpy refuses, read
// every file numpy reads with the same shape and values, and refuse one only
// for the documented reasons (a non-canonical dtype string, bytes after the
// data). The mutations avoid a bare '\r' before the dict, which numpy 1.24's
// Python-2 header filter (tokenize/untokenize) mangles.
func TestNumpyDifferential(t *testing.T) {
	if err := exec.Command(python, "-c", "import numpy").Run(); err != nil {
		t.Skipf("%s cannot import numpy (install python3-numpy; CI does)", python)
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	bases := []string{
		"{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }\n",
		"{'shape': (4,), 'descr': '<i8', 'fortran_order': False}",
		`{"descr": "<i8", "fortran_order": False, "shape": (4,)}`,
	}
	tokens := []string{" ", "\n", ",", "(", ")", "{", "}", "'", `"`, ":", "#", `\`, "L", "0", "4", "2", "_", "+", "-",
		"u", "r", "b", "x", "True", "False", "None", "(4)", "[4]", "(2, 2)", "(1, 4)", "(4, 1)", "'<i4'", "'>i8'",
		"'|i8'", "'=i8'", "'i8'", "'<u8'", "'<f8'", "\t", "0x4", "4_0", "04", "1_2"}
	data := binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, 3), 1<<63|1<<40)
	data = append(data, data...)
	const n = 1000
	for i := range n {
		h := bases[rng.IntN(len(bases))]
		for k := rng.IntN(4) + 1; k > 0; k-- {
			pos := rng.IntN(len(h) + 1)
			end := min(len(h), pos+1+rng.IntN(4))
			switch rng.IntN(3) {
			case 0:
				h = h[:pos] + tokens[rng.IntN(len(tokens))] + h[pos:]
			case 1:
				h = h[:min(pos, len(h))] + h[end:]
			default:
				h = h[:min(pos, len(h))] + tokens[rng.IntN(len(tokens))] + h[end:]
			}
		}
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d.npy", i)), npyBytes(byte(1+rng.IntN(3)), h, data), 0o644)
	}
	out, err := exec.Command(python, "-c", `
import json, os, sys, numpy as np
d = sys.argv[1]; out = {}
for n in sorted(os.listdir(d)):
    try:
        a = np.load(os.path.join(d, n))
        out[n] = {"ok": True, "shape": list(a.shape), "values": a.ravel().astype(np.float64).tolist()}
    except Exception as e:
        out[n] = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
print(json.dumps(out))`, dir).Output()
	if err != nil {
		t.Fatalf("numpy: %v", err)
	}
	var results map[string]struct {
		OK     bool
		Shape  []int
		Values []float64
		Error  string
	}
	if err := json.Unmarshal(out, &results); err != nil || len(results) != n {
		t.Fatalf("%d results: %v", len(results), err)
	}
	stricter := 0
	for name, np := range results {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		h, err := decodeBytes(b)
		switch {
		case !np.OK && err == nil:
			t.Errorf("%s %q: numpy refuses it (%s), kdcal reads shape %v", name, b, np.Error, h.Shape)
		case np.OK && err != nil && (strings.Contains(err.Error(), "is not a numeric dtype kdcal reads") || strings.Contains(err.Error(), "bytes follow")):
			stricter++
		case np.OK && err != nil:
			t.Errorf("%s %q: numpy reads shape %v, kdcal fails: %v", name, b, np.Shape, err)
		case np.OK:
			if !slices.Equal(h.Shape, np.Shape) && len(h.Shape)+len(np.Shape) > 0 {
				t.Errorf("%s %q: kdcal reads shape %v, numpy %v", name, b, h.Shape, np.Shape)
			}
			if got := values(b[h.DataOffset:], h); !slices.Equal(got, np.Values) {
				t.Errorf("%s %q: kdcal reads %v, numpy %v", name, b, got, np.Values)
			}
		}
	}
	t.Logf("%d mutated headers; %d refused by kdcal only, for a documented reason", n, stricter)
}

// values decodes every element of data as float64 in the C order of the
// array, as numpy's ravel gives them (Fortran-ordered data of up to two
// dimensions are transposed; more dimensions do not arise from the
// mutations).
func values(data []byte, h Header) []float64 {
	out := make([]float64, h.Count)
	for i := range out {
		if h.Kind == 'f' {
			out[i] = floatAt(data, i, h)
			continue
		}
		v, ok := intAt(data, i, h)
		out[i] = float64(v)
		if h.Kind == 'u' && !ok {
			out[i] = float64(uint64(v))
		}
	}
	if h.Fortran && len(h.Shape) == 2 {
		out = transpose(out, h.Shape[1], h.Shape[0])
	}
	return out
}
