package data

import (
	"bytes"
	"slices"
	"testing"
)

// FuzzReadIDX feeds arbitrary bytes (raw or gzip) to the IDX reader. It must
// never panic or allocate what a header merely declares; when it accepts a
// file, the data must be exactly the declared size, and writing the same
// dimensions and data back, raw and gzip, must read back identically.
func FuzzReadIDX(f *testing.F) {
	f.Add(idxBytes([]int{2, 2, 2}, make([]byte, 8)))
	f.Add(gz(idxBytes([]int{3}, []byte{1, 2, 3})))
	f.Add(idxBytes([]int{1 << 22, 1 << 21, 1 << 21}, nil))
	f.Add(gz(idxBytes([]int{2_000_000, 31, 31}, nil)))
	f.Add(append(gz(idxBytes([]int{1}, []byte{7})), gz(nil)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		dims, values, err := readIDXFile("fuzz", bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %v is a %T, not a *data.Error", err, err)
			}
			return
		}
		n, ok := dimsProduct(dims)
		if !ok || int64(len(values)) != n {
			t.Fatalf("dims %v but %d values", dims, len(values))
		}
		for _, enc := range []func([]byte) []byte{func(b []byte) []byte { return b }, gz} {
			d2, v2, err := readIDXFile("fuzz", bytes.NewReader(enc(idxBytes(dims, values))), -1)
			if err != nil || !slices.Equal(d2, dims) || !bytes.Equal(v2, values) {
				t.Fatalf("re-encoded file reads as %v (%d values, %v), want %v (%d)", d2, len(v2), err, dims, len(values))
			}
		}
	})
}

// FuzzCIFAR feeds arbitrary bytes to the CIFAR record parser (both record
// layouts). When it accepts them, every record must be one label in range
// and 3072 pixels, in order.
func FuzzCIFAR(f *testing.F) {
	f.Add(cifarRecord([]byte{3}, 1), uint8(1))
	f.Add(append(cifarRecord([]byte{3, 77}, 0), cifarRecord([]byte{1, 99}, 0)...), uint8(2))
	f.Add([]byte{}, uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, lb uint8) {
		labelBytes, classes := 1, 10
		if lb%2 == 0 {
			labelBytes, classes = 2, 100
		}
		images, labels, err := parseCIFAR("fuzz", b, labelBytes, classes, nil, nil)
		if err != nil {
			return
		}
		rec := labelBytes + cifarImage
		if len(labels)*rec != len(b) || len(images) != len(labels)*cifarImage {
			t.Fatalf("%d bytes gave %d labels and %d pixels", len(b), len(labels), len(images))
		}
		for i, y := range labels {
			if y < 0 || y >= classes || y != int(b[i*rec+labelBytes-1]) ||
				!bytes.Equal(images[i*cifarImage:(i+1)*cifarImage], b[i*rec+labelBytes:(i+1)*rec]) {
				t.Fatalf("record %d misread", i)
			}
		}
	})
}
