package data

import (
	"fmt"
	"os"
)

// cifarImage is the size of one CIFAR image: 3 channels × 32 × 32, stored
// channel-major (all red, then green, then blue), row-major within a channel.
const cifarImage = 3 * 32 * 32

// maxCIFARBytes bounds the size of the files of one CIFAR split (2 GiB;
// CIFAR-10's five training batches hold 154 MB).
const maxCIFARBytes = 1 << 31

// readCIFAR reads CIFAR binary files (https://www.cs.toronto.edu/~kriz/cifar.html,
// "Binary version"). CIFAR-10 records are <1 label byte><3072 pixel bytes>;
// CIFAR-100 records are <coarse label><fine label><3072 pixel bytes>, and the
// fine label is used. labelBytes is 1 or 2. Every file's size is checked
// (non-empty, a whole number of records) before anything is read.
func readCIFAR(paths []string, labelBytes, classes int) (images []byte, labels []int, err error) {
	rec := int64(labelBytes + cifarImage)
	var total int64
	for _, p := range paths {
		st, err := os.Stat(p)
		switch {
		case err != nil:
			return nil, nil, &Error{Path: p, Msg: "cannot read: " + err.Error(), Hint: cifarHint}
		case st.IsDir():
			return nil, nil, &Error{Path: p, Msg: "is a directory, not a CIFAR batch file", Hint: cifarHint}
		case st.Size() == 0:
			return nil, nil, &Error{Path: p, Msg: "the file is empty", Hint: "the file is truncated; copy it again"}
		case st.Size()%rec != 0:
			return nil, nil, &Error{Path: p, Msg: fmt.Sprintf("size %d is not a multiple of the %d-byte record", st.Size(), rec),
				Hint: "the file is truncated or not in the CIFAR binary format"}
		}
		total += st.Size()
		if total > maxCIFARBytes {
			return nil, nil, &Error{Path: p, Msg: fmt.Sprintf("the files of this split hold %d bytes, more than the %d kdcal reads", total, int64(maxCIFARBytes)),
				Hint: "this is not a CIFAR split"}
		}
	}
	n := int(total / rec)
	images, labels = make([]byte, 0, n*cifarImage), make([]int, 0, n)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, &Error{Path: p, Msg: "cannot read: " + err.Error(), Hint: cifarHint}
		}
		if images, labels, err = parseCIFAR(p, b, labelBytes, classes, images, labels); err != nil {
			return nil, nil, err
		}
	}
	return images, labels, nil
}

// parseCIFAR appends the records of one CIFAR file's content b to images and
// labels.
func parseCIFAR(path string, b []byte, labelBytes, classes int, images []byte, labels []int) ([]byte, []int, error) {
	rec := labelBytes + cifarImage
	if len(b) == 0 || len(b)%rec != 0 {
		return nil, nil, &Error{Path: path, Msg: fmt.Sprintf("size %d is not a multiple of the %d-byte record", len(b), rec),
			Hint: "the file changed while it was read, or is not in the CIFAR binary format"}
	}
	for off := 0; off < len(b); off += rec {
		y := int(b[off+labelBytes-1])
		if y >= classes {
			return nil, nil, &Error{Path: path, Msg: fmt.Sprintf("label %d of record %d is outside [0, %d)", y, off/rec, classes)}
		}
		labels = append(labels, y)
		images = append(images, b[off+labelBytes:off+rec]...)
	}
	return images, labels, nil
}

const cifarHint = "CIFAR is not shipped by any package manager here: place the binary version's files " +
	"(data_batch_1.bin … data_batch_5.bin, test_batch.bin for CIFAR-10; train.bin, test.bin for CIFAR-100) under data.dir/<dataset>/"
