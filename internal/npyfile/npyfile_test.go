package npyfile_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kdcal/kdcal/internal/npyfile"
	"github.com/kdcal/kdcal/internal/testutil"
)

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "logits.npy")
	data := []float32{1, -2.5, 3e-8, 4, 5, 6}
	if err := npyfile.WriteFloat32(p, data, 3, 2); err != nil {
		t.Fatal(err)
	}
	got, r, c, err := npyfile.ReadMatrix(p)
	if err != nil || r != 3 || c != 2 {
		t.Fatalf("%v %d×%d", err, r, c)
	}
	for i := range data {
		if got[i] != float64(data[i]) {
			t.Errorf("element %d: %v != %v", i, got[i], data[i])
		}
	}
	lp := filepath.Join(dir, "labels.npy")
	if err := npyfile.WriteInt64(lp, []int{3, 0, 9}); err != nil {
		t.Fatal(err)
	}
	if y, err := npyfile.ReadInts(lp); err != nil || !slices.Equal(y, []int{3, 0, 9}) {
		t.Fatalf("%v %v", y, err)
	}
	b, _ := os.ReadFile(p)
	if hl := int(binary.LittleEndian.Uint16(b[8:10])); (10+hl)%64 != 0 {
		t.Errorf("data starts at %d, not 64-byte aligned", 10+hl)
	}
}

// npyFile writes a .npy file with a raw header text (format version ver)
// followed by data.
func npyFile(t *testing.T, path string, ver byte, header string, data []byte) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("\x93NUMPY")
	b.Write([]byte{ver, 0})
	if ver == 1 {
		binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	} else {
		binary.Write(&b, binary.LittleEndian, uint32(len(header)))
	}
	b.WriteString(header)
	b.Write(data)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func le[T any](v ...T) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, v)
	return b.Bytes()
}

// handCrafted are headers numpy.save never writes but the format allows (or
// forbids): each is written with the data of a 2×3 float32 matrix (m_…) or
// a 4-element int64 vector (v_…). TestNumpyAgreement has numpy load every
// one and requires kdcal to agree, except where stricter says why not.
var handCrafted = []struct {
	name     string
	ver      byte
	header   string
	stricter string // why kdcal refuses a file numpy loads ("" = must agree)
}{
	{"m_keys_reordered", 1, "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4', }\n", ""},
	{"m_double_quotes", 1, `{"descr": "<f4", "fortran_order": False, "shape": (2, 3)}` + "\n", ""},
	{"m_no_trailing_comma", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\n", ""},
	{"v_no_trailing_comma", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,)}\n", ""},
	{"m_shape_trailing_comma", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3,), }\n", ""},
	{"m_no_spaces_no_newline", 1, "{'descr':'<f4','fortran_order':False,'shape':(2,3)}", ""},
	{"m_whitespace_comment", 1, "{\n\t'descr' : '<f4' , # float32\n 'fortran_order':False,\r\n 'shape':( 2 ,3 ) }  \n", ""},
	{"m_leading_spaces", 1, "  {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\n", ""},
	{"m_v2", 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", ""},
	{"m_v3_utf8", 3, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } # π\n", ""},
	{"m_long_suffix", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }\n", ""},
	{"m_u_prefix", 1, "{u'descr': u'<f4', u'fortran_order': False, u'shape': (2, 3)}\n", ""},
	{"m_hex_plus", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0x2, +3)}\n", ""},
	{"m_duplicate_key", 1, "{'descr': '<f8', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\n", ""},
	{"m_adjacent_strings", 1, "{'descr': '<' 'f4', 'fortran_order': False, 'shape': (2, 3)}\n", ""},
	{"m_native_order", 1, "{'descr': '=f4', 'fortran_order': False, 'shape': (2, 3)}\n", ""},
	{"m_no_order", 1, "{'descr': 'f4', 'fortran_order': False, 'shape': (2, 3)}\n", ""},
	{"m_fortran", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2), }\n", ""},
	{"v_unsigned", 1, "{'descr': '<u8', 'fortran_order': False, 'shape': (4,), }\n", ""},
	{"v_int32_pairs", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (8,), }\n", ""},
	{"v_1tuple_no_comma", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4), }\n", ""},
	{"v_shape_list", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': [4], }\n", ""},
	{"v_extra_key", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), 'x': 0}\n", ""},
	{"v_missing_key", 1, "{'descr': '<i8', 'shape': (4,)}\n", ""},
	{"v_fortran_0", 1, "{'descr': '<i8', 'fortran_order': 0, 'shape': (4,)}\n", ""},
	{"v_bool_dim", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (True,)}\n", ""},
	{"v_negative_dim", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (-4,)}\n",
		"numpy 1.24 reads a negative dimension as 'the rest of the file' (numpy.fromfile with a negative count); kdcal refuses it"},
	{"v_leading_zero", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (04,)}\n", ""},
	{"v_nul_padding", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,)}\x00\x00\n", ""},
	{"v_no_closing_brace", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), \n", ""},
	{"v_junk_after", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,)} x\n", ""},
	{"v_bytes_descr", 1, "{'descr': b'<i8', 'fortran_order': False, 'shape': (4,)}\n", ""},
	{"v_huge_shape", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (100000000000,)}\n", ""},
	{"v_short_data", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (5,)}\n", ""},
	{"v_trailing_data", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,)}\n",
		"numpy ignores bytes after the declared data; kdcal refuses them because they mean the header does not describe the data"},
	{"v_char_code", 1, "{'descr': 'l', 'fortran_order': False, 'shape': (4,)}\n",
		"kdcal reads the canonical dtype strings numpy writes ('<i8'), not one-letter codes"},
	{"v_dtype_name", 1, "{'descr': 'int64', 'fortran_order': False, 'shape': (4,)}\n",
		"kdcal reads the canonical dtype strings numpy writes ('<i8'), not dtype names"},
}

// numpyLoad is the script TestNumpyAgreement runs: it writes arrays with
// numpy.save in every version, dtype, byte order and memory order kdcal
// reads, then loads every file in the directory and reports the result.
const numpyLoad = `
import json, os, sys
import numpy as np
from numpy.lib import format as fmt
d = sys.argv[1]
m = (np.arange(6, dtype=np.float64).reshape(2, 3) - 2.5) / 4
v = np.array([3, 0, 9, 2**40], dtype=np.int64)
for ver in [(1, 0), (2, 0), (3, 0)]:
    tag = "v%d" % ver[0]
    for dt in ["<f2", ">f2", "<f4", ">f4", "<f8", ">f8"]:
        for order in "CF":
            with open(os.path.join(d, "np_m_%s_%s_%s.npy" % (tag, dt[1:] + ("be" if dt[0] == ">" else "le"), order)), "wb") as f:
                fmt.write_array(f, np.asarray(m.astype(dt), order=order), version=ver)
    for dt in ["|i1", "|u1", "<i2", ">u2", "<i4", ">i4", "<u4", "<i8", ">i8", "<u8"]:
        x = v if dt[2] == "8" else v % 100
        with open(os.path.join(d, "np_v_%s_%s.npy" % (tag, dt[1:] + ("be" if dt[0] == ">" else "le"))), "wb") as f:
            fmt.write_array(f, x.astype(dt), version=ver)
out = {}
for name in sorted(os.listdir(d)):
    try:
        a = np.load(os.path.join(d, name))
        out[name] = {"ok": True, "shape": list(a.shape), "values": a.ravel(order="C").astype(np.float64).tolist()}
    except Exception as e:
        out[name] = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
print(json.dumps(out))
`

// TestNumpyAgreement checks kdcal's reader against numpy.load on files
// numpy writes (every version, dtype and order) and on hand-crafted headers:
// what numpy loads kdcal loads with the same values (2-D float matrices,
// 1-D integer vectors), and what numpy refuses kdcal refuses.
func TestNumpyAgreement(t *testing.T) {
	testutil.RequirePython(t, "numpy")
	dir := t.TempDir()
	stricter := map[string]string{}
	for _, h := range handCrafted {
		data := le(float32(-0.625), -0.375, -0.125, 0.125, 0.375, 0.625)
		if strings.HasPrefix(h.name, "v_") {
			data = le(int64(3), 0, 9, 1<<40)
		}
		npyFile(t, filepath.Join(dir, h.name+".npy"), h.ver, h.header, data)
		stricter[h.name+".npy"] = h.stricter
	}
	out, err := exec.Command(testutil.Python, "-c", numpyLoad, dir).Output()
	if err != nil {
		t.Fatalf("numpy: %v", err)
	}
	var results map[string]struct {
		OK     bool
		Shape  []int
		Values []float64
		Error  string
	}
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatal(err)
	}
	if len(results) < len(handCrafted)+60 {
		t.Fatalf("numpy reported %d files", len(results))
	}
	for name, np := range results {
		t.Run(strings.TrimSuffix(name, ".npy"), func(t *testing.T) {
			var got []float64
			var shape []int
			p := filepath.Join(dir, name)
			if strings.Contains(name, "m_") {
				data, r, c, rerr := npyfile.ReadMatrix(p)
				got, shape, err = data, []int{r, c}, rerr
			} else {
				y, rerr := npyfile.ReadInts(p)
				for _, v := range y {
					got = append(got, float64(v))
				}
				shape, err = []int{len(y)}, rerr
			}
			why := stricter[name]
			switch {
			case !np.OK && err == nil:
				t.Fatalf("numpy refuses the file (%s), kdcal reads shape %v", np.Error, shape)
			case !np.OK:
				t.Logf("both refuse: numpy %s; kdcal %v", np.Error, err)
			case why != "":
				if err == nil {
					t.Fatalf("kdcal reads a file it should refuse (%s)", why)
				}
			case err != nil:
				t.Fatalf("numpy reads shape %v, kdcal fails: %v", np.Shape, err)
			case !slices.Equal(shape, np.Shape) || !slices.Equal(got, np.Values):
				t.Fatalf("kdcal read %v %v, numpy %v %v", shape, got, np.Shape, np.Values)
			}
		})
	}
}

// TestNumpyReadsKdcal has numpy load the files kdcal writes.
func TestNumpyReadsKdcal(t *testing.T) {
	testutil.RequirePython(t, "numpy")
	dir := t.TempDir()
	if err := npyfile.WriteFloat32(filepath.Join(dir, "k.npy"), []float32{1.5, 2, 3, 4, 5, 6}, 2, 3); err != nil {
		t.Fatal(err)
	}
	if err := npyfile.WriteInt64(filepath.Join(dir, "y.npy"), []int{7, -1, 1 << 40}); err != nil {
		t.Fatal(err)
	}
	script := `
import numpy as np, sys
d = sys.argv[1]
k = np.load(d + "/k.npy")
assert k.dtype == np.float32 and k.shape == (2, 3) and k.tolist() == [[1.5, 2, 3], [4, 5, 6]], (k.dtype, k.shape, k)
y = np.load(d + "/y.npy")
assert y.dtype == np.int64 and y.tolist() == [7, -1, 2**40], y
`
	if out, err := exec.Command(testutil.Python, "-c", script, dir).CombinedOutput(); err != nil {
		t.Fatalf("numpy: %v\n%s", err, out)
	}
}

// TestBadInput checks the errors of the public readers: each is an
// *npyfile.Error naming the file.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	npyfile.WriteFloat32(path("nan.npy"), []float32{1, float32(math.NaN()), 3, 4}, 2, 2)
	npyfile.WriteInt64(path("vec.npy"), []int{1, 2})
	npyfile.WriteFloat32(path("empty.npy"), nil, 0, 10)
	os.WriteFile(path("text.npy"), []byte("label\n1\n2\n"), 0o644)
	npyfile.WriteFloat32(path("trunc.npy"), make([]float32, 100), 10, 10)
	b, _ := os.ReadFile(path("trunc.npy"))
	os.WriteFile(path("trunc.npy"), b[:len(b)-40], 0o644)
	os.Mkdir(path("dir.npy"), 0o755)
	npyFile(t, path("bool.npy"), 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (2,)}\n", []byte{1, 0})
	npyFile(t, path("u8big.npy"), 1, "{'descr': '<u8', 'fortran_order': False, 'shape': (1,)}\n", le(uint64(1<<63)))
	npyFile(t, path("inf16.npy"), 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1, 2)}\n", le(uint16(0x3c00), 0x7c00))

	matrix := func(name string) func() error {
		return func() error { _, _, _, err := npyfile.ReadMatrix(path(name)); return err }
	}
	ints := func(name string) func() error {
		return func() error { _, err := npyfile.ReadInts(path(name)); return err }
	}
	tests := []struct {
		name string
		read func() error
		want string
	}{
		{"nan", matrix("nan.npy"), "nan.npy: non-finite value NaN at row 0, column 1"},
		{"float16 inf", matrix("inf16.npy"), "inf16.npy: non-finite value +Inf at row 0, column 1"},
		{"1-D as matrix", matrix("vec.npy"), "vec.npy: expected a 2-D array"},
		{"bool as logits", matrix("bool.npy"), `bool.npy: dtype "|b1" is not a numeric dtype`},
		{"int as logits", matrix("vec.npy"), "vec.npy: expected a 2-D array"},
		{"2-D as labels", ints("nan.npy"), "nan.npy: expected a 1-D array"},
		{"missing", ints("x.npy"), "x.npy: file not found"},
		{"directory", ints("dir.npy"), "dir.npy: is a directory"},
		{"empty", matrix("empty.npy"), "array is empty"},
		{"not npy", matrix("text.npy"), "text.npy: not a NumPy .npy file"},
		{"truncated", matrix("trunc.npy"), "trunc.npy: truncated: the header declares shape (10, 10) of <f4 (400 bytes of data), the file holds 360"},
		{"bool labels", ints("bool.npy"), `dtype "|b1" is not a numeric dtype kdcal reads`},
		{"uint64 above int64", ints("u8big.npy"), "value at index 0 does not fit in a 64-bit signed integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.read()
			var ne *npyfile.Error
			if !errors.As(err, &ne) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want *npyfile.Error containing %q", err, tt.want)
			}
		})
	}
}

// TestFortranOrder checks that a column-major file is read in row-major order.
func TestFortranOrder(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f.npy")
	// The 2×3 matrix [[1 2 3] [4 5 6]] stored column by column.
	npyFile(t, p, 1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }\n", le(1.0, 4, 2, 5, 3, 6))
	got, r, c, err := npyfile.ReadMatrix(p)
	if err != nil || r != 2 || c != 3 || !slices.Equal(got, []float64{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("%v %d×%d %v", err, r, c, got)
	}
}
