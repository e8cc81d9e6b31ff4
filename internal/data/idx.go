package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// idxUbyte is the IDX type code of unsigned bytes, the only one MNIST-style
// files use.
const idxUbyte = 0x08

// ReadIDX reads an IDX file (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE
// FORMAT"): magic 0x00 0x00 <type> <ndims>, ndims big-endian uint32 sizes,
// then the data. A gzip-compressed file is detected by its magic bytes. Only
// unsigned-byte data is supported.
func ReadIDX(path string) (dims []int, values []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, &Error{Path: path, Msg: "cannot open: " + err.Error()}
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if head, _ := br.Peek(2); bytes.Equal(head, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, &Error{Path: path, Msg: "corrupt gzip stream: " + err.Error()}
		}
		defer gz.Close()
		r = gz
	}
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, nil, &Error{Path: path, Msg: "too short for an IDX header", Hint: "the file is truncated; fetch it again"}
	}
	if magic[0] != 0 || magic[1] != 0 || magic[2] != idxUbyte || magic[3] == 0 || magic[3] > 4 {
		return nil, nil, &Error{Path: path, Msg: fmt.Sprintf("wrong magic number %#08x (want 0x000008NN: unsigned bytes, 1-4 dims)",
			binary.BigEndian.Uint32(magic[:])), Hint: "this is not an MNIST-style IDX file"}
	}
	dims = make([]int, magic[3])
	total := 1
	for i := range dims {
		var d uint32
		if err := binary.Read(r, binary.BigEndian, &d); err != nil {
			return nil, nil, &Error{Path: path, Msg: "truncated IDX header", Hint: "fetch the file again"}
		}
		dims[i] = int(d)
		total *= int(d)
	}
	if total > 1<<31 {
		return nil, nil, &Error{Path: path, Msg: fmt.Sprintf("implausible dimensions %v", dims)}
	}
	values = make([]byte, total)
	if n, err := io.ReadFull(r, values); err != nil {
		return nil, nil, &Error{Path: path, Msg: fmt.Sprintf("truncated: header promises %d bytes of data %v, file holds %d", total, dims, n),
			Hint: "fetch the file again (kdcal data fetch)"}
	}
	return dims, values, nil
}

// readIDXPair reads an images file (N×H×W) and a labels file (N) and checks
// they agree and that every label is in [0, classes).
func readIDXPair(imagesPath, labelsPath string, classes int) (images []byte, labels []int, h, w int, err error) {
	dims, images, err := ReadIDX(imagesPath)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	if len(dims) != 3 {
		return nil, nil, 0, 0, &Error{Path: imagesPath, Msg: fmt.Sprintf("expected 3 dimensions (N×H×W) for images, got %v", dims)}
	}
	ldims, raw, err := ReadIDX(labelsPath)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	if len(ldims) != 1 {
		return nil, nil, 0, 0, &Error{Path: labelsPath, Msg: fmt.Sprintf("expected 1 dimension for labels, got %v", ldims)}
	}
	if ldims[0] != dims[0] {
		return nil, nil, 0, 0, &Error{Path: labelsPath, Msg: fmt.Sprintf("%d labels for %d images in %s", ldims[0], dims[0], imagesPath),
			Hint: "the two files do not belong together; fetch them again"}
	}
	labels = make([]int, len(raw))
	for i, b := range raw {
		if int(b) >= classes {
			return nil, nil, 0, 0, &Error{Path: labelsPath, Msg: fmt.Sprintf("label %d of example %d is outside [0, %d)", b, i, classes)}
		}
		labels[i] = int(b)
	}
	return images, labels, dims[1], dims[2], nil
}
