package npyfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Header is the parsed header of a .npy file (NumPy format versions 1.0,
// 2.0 and 3.0, https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
//
//	"\x93NUMPY" major minor  header_len (uint16 LE in 1.0, uint32 LE in 2.0 and 3.0)
//	header: a Python literal dict {'descr': …, 'fortran_order': …, 'shape': (…)}
//	        (latin-1 before 3.0, UTF-8 in 3.0), space-padded, usually '\n'-terminated
//	data:   prod(shape) elements of descr, C or Fortran order
type Header struct {
	Major, Minor byte
	Descr        string           // the dtype as written, e.g. "<f4"
	Kind         byte             // 'f' floating point, 'i' signed or 'u' unsigned integer
	Size         int              // bytes per element
	Order        binary.ByteOrder // byte order of the elements
	Fortran      bool             // data are stored column-major
	Shape        []int
	Count        int   // number of elements, the product of Shape
	DataOffset   int64 // bytes before the data: magic, version, length field and header
}

// magic starts every .npy file.
const magic = "\x93NUMPY"

// maxHeaderLen bounds the header. numpy itself refuses headers longer than
// 10000 characters unless told otherwise (numpy.load's max_header_size);
// 1 MiB leaves room for that override while keeping a corrupt length field
// from allocating gigabytes.
const maxHeaderLen = 1 << 20

// descrPattern is the canonical dtype string numpy writes (dtype.str):
// byte order, kind, item size.
var descrPattern = regexp.MustCompile(`^([<>|=]?)([a-zA-Z])([0-9]+)$`)

// readHeader reads and checks a .npy header from r, a stream of size bytes.
// It does not read the data.
func readHeader(r io.Reader, size int64) (Header, error) {
	var pre [8]byte
	n, err := io.ReadFull(r, pre[:])
	if err != nil {
		if n == 0 || !strings.HasPrefix(magic, string(pre[:min(n, 6)])) {
			return Header{}, notNumpy(pre[:n])
		}
		return Header{}, fmt.Errorf("truncated: %d bytes, too short for a .npy header", n)
	}
	if string(pre[:6]) != magic {
		return Header{}, notNumpy(pre[:])
	}
	h := Header{Major: pre[6], Minor: pre[7]}
	lenBytes := 4
	switch {
	case h.Major == 1 && h.Minor == 0:
		lenBytes = 2
	case (h.Major == 2 || h.Major == 3) && h.Minor == 0:
	default:
		return Header{}, fmt.Errorf("format version %d.%d is not one NumPy defines (1.0, 2.0, 3.0); save the array with numpy.save", h.Major, h.Minor)
	}
	var lb [4]byte
	if _, err := io.ReadFull(r, lb[:lenBytes]); err != nil {
		return Header{}, errors.New("truncated: the file ends inside the header length field")
	}
	hlen := int64(binary.LittleEndian.Uint32(lb[:]))
	h.DataOffset = 8 + int64(lenBytes) + hlen
	switch {
	case h.DataOffset > size:
		return Header{}, fmt.Errorf("truncated: the header declares %d bytes, but the file has %d bytes in all", hlen, size)
	case hlen > maxHeaderLen:
		return Header{}, fmt.Errorf("header length %d is implausible (more than %d bytes): the file is corrupt", hlen, maxHeaderLen)
	}
	raw := make([]byte, hlen)
	if _, err := io.ReadFull(r, raw); err != nil {
		return Header{}, fmt.Errorf("truncated: the file ends inside the %d-byte header", hlen)
	}
	text, err := headerText(raw, h.Major)
	if err != nil {
		return Header{}, err
	}
	if err := h.parseDict(text); err != nil {
		return Header{}, err
	}
	return h, nil
}

func notNumpy(head []byte) error {
	hint := "save arrays with numpy.save"
	switch {
	case bytes.HasPrefix(head, []byte("PK")):
		hint = "this looks like a .npz archive (numpy.savez); extract one array and save it with numpy.save"
	case len(head) == 0:
		return errors.New("the file is empty, not a NumPy .npy file; save arrays with numpy.save")
	}
	return fmt.Errorf("not a NumPy .npy file (it does not start with \\x93NUMPY); %s", hint)
}

// headerText decodes the header bytes: latin-1 before version 3.0, UTF-8 in
// 3.0. Like Python, it refuses NUL bytes.
func headerText(raw []byte, major byte) (string, error) {
	if i := bytes.IndexByte(raw, 0); i >= 0 {
		return "", fmt.Errorf("header holds a NUL byte at offset %d: the file is corrupt", i)
	}
	if major >= 3 {
		if !utf8.Valid(raw) {
			return "", errors.New("version 3.0 header is not valid UTF-8")
		}
		return string(raw), nil
	}
	rs := make([]rune, len(raw))
	for i, b := range raw {
		rs[i] = rune(b)
	}
	return string(rs), nil
}

// parseDict parses the header's dict and fills h. Like numpy, it requires
// exactly the keys descr, fortran_order and shape, in any order.
func (h *Header) parseDict(text string) error {
	v, err := parsePyLiteral(text, h.Major < 3)
	if err != nil {
		return fmt.Errorf("header is not a Python literal (%v): the file is corrupt", err)
	}
	if v.kind != pyDict {
		return fmt.Errorf("header is %s, not a dict", v.kind)
	}
	want := []string{"descr", "fortran_order", "shape"}
	for _, k := range v.keys {
		if !slices.Contains(want, k) {
			return fmt.Errorf("header has the unexpected key %q (a .npy header holds exactly descr, fortran_order and shape)", k)
		}
	}
	for _, k := range want {
		if _, ok := v.get(k); !ok {
			return fmt.Errorf("header has no %q key", k)
		}
	}
	descr, _ := v.get("descr")
	if err := h.setDescr(descr); err != nil {
		return err
	}
	fo, _ := v.get("fortran_order")
	if fo.kind != pyBool {
		return fmt.Errorf("fortran_order is %s, not True or False", fo.repr())
	}
	h.Fortran = fo.b
	shape, _ := v.get("shape")
	return h.setShape(shape)
}

func (h *Header) setDescr(d pyValue) error {
	if d.kind == pyList {
		return errors.New("the array has a structured dtype (record fields); save a plain numeric array")
	}
	if d.kind != pyStr {
		return fmt.Errorf("descr is %s, not a dtype string", d.repr())
	}
	h.Descr = d.str
	m := descrPattern.FindStringSubmatch(d.str)
	if m == nil {
		return fmt.Errorf("dtype %q is not a numeric dtype kdcal reads (e.g. '<f4', '<f8', '<i8')", d.str)
	}
	size, err := strconv.Atoi(m[3])
	kind := m[2][0]
	if err != nil || !validSize(kind, size) {
		return fmt.Errorf("dtype %q is not a numeric dtype kdcal reads (e.g. '<f4', '<f8', '<i8')", d.str)
	}
	h.Kind, h.Size = kind, size
	switch m[1] {
	case "<":
		h.Order = binary.LittleEndian
	case ">":
		h.Order = binary.BigEndian
	default: // "=", "|" or none: native, as numpy reads it
		h.Order = binary.NativeEndian
	}
	return nil
}

func validSize(kind byte, size int) bool {
	switch kind {
	case 'f':
		return size == 2 || size == 4 || size == 8
	case 'i', 'u':
		return size == 1 || size == 2 || size == 4 || size == 8
	}
	return false
}

// setShape checks that the shape is a tuple of non-negative ints whose
// element count and byte size fit in an int.
func (h *Header) setShape(s pyValue) error {
	if s.kind != pyTuple {
		return fmt.Errorf("shape %s is not a tuple (a 1-D shape is written (n,))", s.repr())
	}
	count := uint64(1)
	overflow := false
	h.Shape = make([]int, len(s.items))
	for i, d := range s.items {
		if d.kind != pyInt {
			return fmt.Errorf("shape %s: dimension %d is %s, not an integer", s.repr(), i, d.kind)
		}
		n, ok := d.Uint64(math.MaxInt)
		if !ok {
			return fmt.Errorf("shape %s: dimension %d is negative or too large", s.repr(), i)
		}
		h.Shape[i] = int(n)
		hi, lo := bits.Mul64(count, n)
		overflow = overflow || hi != 0
		count = lo
	}
	if hi, lo := bits.Mul64(count, uint64(h.Size)); overflow || hi != 0 || lo > math.MaxInt {
		if slices.Contains(h.Shape, 0) {
			return fmt.Errorf("shape %s overflows and holds a zero dimension: the file is corrupt", s.repr())
		}
		return fmt.Errorf("shape %s declares more data than any file can hold: the file is corrupt", s.repr())
	}
	h.Count = int(count)
	return nil
}

// checkLength compares the data size the header declares with what the file
// holds after the header. A longer file is refused as well as a shorter
// one: trailing bytes mean the header does not describe the data.
func (h *Header) checkLength(size int64) error {
	need := int64(h.Count) * int64(h.Size)
	have := size - h.DataOffset
	switch {
	case have < need:
		return fmt.Errorf("truncated: the header declares shape %s of %s (%d bytes of data), the file holds %d",
			shapeString(h.Shape), h.Descr, need, have)
	case have > need:
		return fmt.Errorf("%d bytes follow the %d bytes of data the header declares (shape %s of %s): "+
			"the header does not describe the data; rewrite the file with numpy.save", have-need, need, shapeString(h.Shape), h.Descr)
	}
	return nil
}

// shapeString writes a shape as Python does: (), (3,), (3, 4).
func shapeString(shape []int) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = strconv.Itoa(d)
	}
	if len(parts) == 1 {
		return "(" + parts[0] + ",)"
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
