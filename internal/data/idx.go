package data

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
)

// idxUbyte is the IDX type code of unsigned bytes, the only one MNIST-style
// files use.
const idxUbyte = 0x08

// maxIDXBytes bounds the data an IDX file may declare (2 GiB, over forty
// times MNIST's 47 MB of training images), so that a corrupt header is
// refused before anything is allocated.
const maxIDXBytes = 1 << 31

// idxTypes names the IDX type codes, for the error on unsupported ones.
var idxTypes = map[byte]string{0x09: "signed bytes", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}

const refetchHint = "the file is damaged; fetch it again (kdcal data fetch)"

// ReadIDX reads an IDX file (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE
// FORMAT"): magic 0x00 0x00 <type> <ndims>, ndims big-endian uint32 sizes,
// then the data. A gzip-compressed file is detected by its magic bytes. Only
// unsigned-byte data is supported.
//
// The declared size is checked before anything is allocated: against the
// file's size for a raw file; for a gzip file the stream is read with a
// limit of one byte more than declared and then to its end, so that a
// short, long or corrupt stream (gzip's CRC-32 and length trailer) is an
// error naming the file.
func ReadIDX(path string) (dims []int, values []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, &Error{Path: path, Msg: "cannot open: " + err.Error()}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, &Error{Path: path, Msg: "cannot stat: " + err.Error()}
	}
	if st.IsDir() {
		return nil, nil, &Error{Path: path, Msg: "is a directory, not an IDX file"}
	}
	return readIDXFile(path, f, st.Size())
}

// readIDXFile reads the IDX content of r (size bytes, raw or gzip); path
// names it in errors.
func readIDXFile(path string, r io.Reader, size int64) (dims []int, values []byte, err error) {
	br := bufio.NewReader(r)
	if head, _ := br.Peek(2); bytes.Equal(head, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, &Error{Path: path, Msg: "corrupt gzip header: " + err.Error(), Hint: refetchHint}
		}
		defer gz.Close()
		gz.Multistream(false)
		return readIDXStream(path, &gzipStream{gz: gz, src: br}, -1)
	}
	return readIDXStream(path, br, size)
}

// readIDXStream reads an IDX header and data from r. size is the number of
// bytes r holds, or -1 when unknown (a gzip stream).
func readIDXStream(path string, r io.Reader, size int64) (dims []int, values []byte, err error) {
	dims, total, err := readIDXHeader(path, r)
	if err != nil {
		return nil, nil, gzipError(path, err)
	}
	if size >= 0 {
		if have := size - int64(4+4*len(dims)); have != total {
			return nil, nil, sizeError(path, dims, total, have)
		}
		values = make([]byte, total)
		if n, err := io.ReadFull(r, values); err != nil {
			return nil, nil, sizeError(path, dims, total, int64(n))
		}
		return dims, values, nil
	}
	values, err = readAtMost(r, total+1)
	if err != nil {
		return nil, nil, gzipError(path, err)
	}
	if int64(len(values)) != total {
		if int64(len(values)) > total {
			return nil, nil, &Error{Path: path, Msg: fmt.Sprintf("the gzip stream holds more than the %d bytes of data the header declares %v", total, dims),
				Hint: refetchHint}
		}
		return nil, nil, sizeError(path, dims, total, int64(len(values)))
	}
	return dims, values, nil
}

// readIDXHeader reads the magic number and dimensions and returns the
// number of data bytes they declare.
func readIDXHeader(path string, r io.Reader) (dims []int, total int64, err error) {
	var magic [4]byte
	if n, err := io.ReadFull(r, magic[:]); err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return nil, 0, &Error{Path: path, Msg: "the file is empty", Hint: refetchHint}
		}
		return nil, 0, tooShort(path, err)
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, 0, &Error{Path: path, Msg: fmt.Sprintf("wrong magic number %#08x (want 0x000008NN: unsigned bytes, 1-4 dims)",
			binary.BigEndian.Uint32(magic[:])), Hint: "this is not an MNIST-style IDX file"}
	}
	if magic[2] != idxUbyte {
		msg := fmt.Sprintf("wrong magic number %#08x: IDX type %#02x", binary.BigEndian.Uint32(magic[:]), magic[2])
		if name, ok := idxTypes[magic[2]]; ok {
			msg += " (" + name + ")"
		}
		return nil, 0, &Error{Path: path, Msg: msg + " is not supported", Hint: "kdcal reads unsigned-byte (0x08) IDX files, as MNIST ships them"}
	}
	if magic[3] == 0 || magic[3] > 4 {
		return nil, 0, &Error{Path: path, Msg: fmt.Sprintf("wrong magic number %#08x: %d dimensions (want 1-4)", binary.BigEndian.Uint32(magic[:]), magic[3]),
			Hint: "this is not an MNIST-style IDX file"}
	}
	raw := make([]byte, 4*int(magic[3]))
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, 0, tooShort(path, err)
	}
	dims = make([]int, magic[3])
	for i := range dims {
		dims[i] = int(binary.BigEndian.Uint32(raw[4*i:]))
	}
	total, ok := dimsProduct(dims)
	if !ok {
		return nil, 0, &Error{Path: path, Msg: fmt.Sprintf("implausible dimensions %v: they declare more than %d bytes of data", dims, int64(maxIDXBytes)),
			Hint: refetchHint}
	}
	return dims, total, nil
}

// dimsProduct multiplies dims without overflow; ok is false above maxIDXBytes.
// A zero dimension makes the product 0 whatever the others are.
func dimsProduct(dims []int) (int64, bool) {
	p := uint64(1)
	over := false
	for _, d := range dims {
		if d == 0 {
			return 0, true
		}
		hi, lo := bits.Mul64(p, uint64(d))
		over = over || hi != 0 || lo > maxIDXBytes
		p = lo
	}
	return int64(p), !over
}

func tooShort(path string, err error) error {
	if e := gzipError(path, err); e != err {
		return e
	}
	return &Error{Path: path, Msg: "truncated IDX header: the file ends before its dimensions", Hint: refetchHint}
}

func sizeError(path string, dims []int, total, have int64) error {
	if have > total {
		return &Error{Path: path, Msg: fmt.Sprintf("%d bytes follow the %d bytes of data the header declares %v", have-total, total, dims),
			Hint: "the header does not describe the file; fetch it again (kdcal data fetch)"}
	}
	return &Error{Path: path, Msg: fmt.Sprintf("truncated: header promises %d bytes of data %v, file holds %d", total, dims, have),
		Hint: "fetch the file again (kdcal data fetch)"}
}

// gzipStream reads the members of a gzip file one after the other (as
// gzip -d does) and marks the errors of the stream, so that a damaged one
// (which gzip reports as io.ErrUnexpectedEOF among others) is told apart
// from data that end cleanly but too early, and bytes after the last
// member that do not start another one are an error of their own.
type gzipStream struct {
	gz  *gzip.Reader
	src *bufio.Reader
}

type streamError struct{ err error }

func (e *streamError) Error() string { return e.err.Error() }
func (e *streamError) Unwrap() error { return e.err }

// errTrailing marks bytes after the end of the gzip stream.
var errTrailing = errors.New("bytes after the end of the gzip stream")

func (g *gzipStream) Read(p []byte) (int, error) {
	for {
		n, err := g.gz.Read(p)
		if err != io.EOF {
			if err != nil {
				err = &streamError{err}
			}
			return n, err
		}
		// End of a member (its CRC-32 and length verified): another one, or the end.
		if _, perr := g.src.Peek(1); perr != nil {
			return n, io.EOF
		}
		if rerr := g.gz.Reset(g.src); rerr != nil {
			return n, &streamError{errTrailing}
		}
		g.gz.Multistream(false)
		if n > 0 {
			return n, nil
		}
	}
}

// gzipError turns a failure of the gzip stream into an *Error naming the
// file; other errors are returned as they are.
func gzipError(path string, err error) error {
	var se *streamError
	if !errors.As(err, &se) {
		return err
	}
	var corrupt flate.CorruptInputError
	switch err = se.err; {
	case errors.Is(err, gzip.ErrChecksum):
		return &Error{Path: path, Msg: "gzip checksum mismatch: the decompressed data is not what was compressed", Hint: refetchHint}
	case errors.Is(err, errTrailing):
		return &Error{Path: path, Msg: "bytes after the end of the gzip stream are not another gzip member", Hint: refetchHint}
	case errors.As(err, &corrupt):
		return &Error{Path: path, Msg: "corrupt gzip stream: " + err.Error(), Hint: refetchHint}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Path: path, Msg: "truncated gzip stream: the file ends before the compressed data does", Hint: refetchHint}
	}
	return &Error{Path: path, Msg: "cannot decompress: " + err.Error(), Hint: refetchHint}
}

// readAtMost reads r to its end or to limit bytes, whichever comes first,
// growing its buffer (doubling) as data arrives, so that what a header
// declares allocates nothing by itself. An error other than io.EOF is
// returned.
func readAtMost(r io.Reader, limit int64) ([]byte, error) {
	buf := make([]byte, 0, min(limit, 1<<20))
	for int64(len(buf)) < limit {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(2*int64(cap(buf)), limit))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// idxPair is the content of an images file (N×H×W) and its labels file (N).
type idxPair struct {
	images []byte
	labels []int
	h, w   int
}

// readIDXPair reads an images file (N×H×W) and a labels file (N) and checks
// they agree and that every label is in [0, classes).
func readIDXPair(imagesPath, labelsPath string, classes int) (idxPair, error) {
	dims, images, err := ReadIDX(imagesPath)
	if err != nil {
		return idxPair{}, err
	}
	switch {
	case len(dims) != 3:
		return idxPair{}, &Error{Path: imagesPath, Msg: fmt.Sprintf("expected 3 dimensions (N×H×W) for images, got %v", dims)}
	case dims[0] == 0:
		return idxPair{}, &Error{Path: imagesPath, Msg: fmt.Sprintf("holds no images (dimensions %v)", dims), Hint: refetchHint}
	case dims[1] == 0 || dims[2] == 0:
		return idxPair{}, &Error{Path: imagesPath, Msg: fmt.Sprintf("images of %d×%d pixels hold nothing (dimensions %v)", dims[1], dims[2], dims), Hint: refetchHint}
	}
	ldims, raw, err := ReadIDX(labelsPath)
	if err != nil {
		return idxPair{}, err
	}
	if len(ldims) != 1 {
		return idxPair{}, &Error{Path: labelsPath, Msg: fmt.Sprintf("expected 1 dimension for labels, got %v", ldims)}
	}
	if ldims[0] != dims[0] {
		return idxPair{}, &Error{Path: labelsPath, Msg: fmt.Sprintf("%d labels for %d images in %s", ldims[0], dims[0], imagesPath),
			Hint: "the two files do not belong together; fetch them again"}
	}
	labels := make([]int, len(raw))
	for i, b := range raw {
		if int(b) >= classes {
			return idxPair{}, &Error{Path: labelsPath, Msg: fmt.Sprintf("label %d of example %d is outside [0, %d)", b, i, classes)}
		}
		labels[i] = int(b)
	}
	return idxPair{images: images, labels: labels, h: dims[1], w: dims[2]}, nil
}
