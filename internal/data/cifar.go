package data

import (
	"fmt"
	"os"
)

// cifarImage is the size of one CIFAR image: 3 channels × 32 × 32, stored
// channel-major (all red, then green, then blue), row-major within a channel.
const cifarImage = 3 * 32 * 32

// readCIFAR reads CIFAR binary files (https://www.cs.toronto.edu/~kriz/cifar.html,
// "Binary version"). CIFAR-10 records are <1 label byte><3072 pixel bytes>;
// CIFAR-100 records are <coarse label><fine label><3072 pixel bytes>, and the
// fine label is used. labelBytes is 1 or 2.
func readCIFAR(paths []string, labelBytes, classes int) (images []byte, labels []int, err error) {
	rec := labelBytes + cifarImage
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, &Error{Path: p, Msg: "cannot read: " + err.Error(), Hint: cifarHint}
		}
		if len(b) == 0 || len(b)%rec != 0 {
			return nil, nil, &Error{Path: p, Msg: fmt.Sprintf("size %d is not a multiple of the %d-byte record", len(b), rec),
				Hint: "the file is truncated or not in the CIFAR binary format"}
		}
		for off := 0; off < len(b); off += rec {
			y := int(b[off+labelBytes-1])
			if y >= classes {
				return nil, nil, &Error{Path: p, Msg: fmt.Sprintf("label %d of record %d is outside [0, %d)", y, off/rec, classes)}
			}
			labels = append(labels, y)
			images = append(images, b[off+labelBytes:off+rec]...)
		}
	}
	return images, labels, nil
}

const cifarHint = "CIFAR is not shipped by any package manager here: place the binary version's files " +
	"(data_batch_1.bin … data_batch_5.bin, test_batch.bin for CIFAR-10; train.bin, test.bin for CIFAR-100) under data.dir/<dataset>/"
