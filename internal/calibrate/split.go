package calibrate

import (
	"fmt"

	"github.com/kdcal/kdcal/internal/npyfile"
)

// ReadSplit reads a logits/labels pair of .npy files (N×C float32/float64
// logits, N int32/int64 labels) and checks that they fit together. Errors
// are *npyfile.Error naming the offending file.
func ReadSplit(logitsPath, labelsPath string) (Split, error) {
	z, n, c, err := npyfile.ReadMatrix(logitsPath)
	if err != nil {
		return Split{}, err
	}
	if c < 2 {
		return Split{}, &npyfile.Error{Path: logitsPath, Msg: fmt.Sprintf("has %d column; calibration needs logits of at least 2 classes (N×C)", c)}
	}
	y, err := npyfile.ReadInts(labelsPath)
	if err != nil {
		return Split{}, err
	}
	if len(y) != n {
		return Split{}, &npyfile.Error{Path: labelsPath, Msg: fmt.Sprintf("has %d labels, but %s has %d rows of logits", len(y), logitsPath, n)}
	}
	for i, v := range y {
		if v < 0 || v >= c {
			return Split{}, &npyfile.Error{Path: labelsPath, Msg: fmt.Sprintf("label %d at index %d is outside [0, %d): %s has %d classes", v, i, c, logitsPath, c)}
		}
	}
	return Split{Logits: z, Labels: y, C: c}, nil
}

// ReadSplits reads a validation pair and, when testLogits is not empty, a
// test pair with the same number of classes.
func ReadSplits(valLogits, valLabels, testLogits, testLabels string) (Split, *Split, error) {
	val, err := ReadSplit(valLogits, valLabels)
	if err != nil || testLogits == "" {
		return val, nil, err
	}
	test, err := ReadSplit(testLogits, testLabels)
	if err != nil {
		return val, nil, err
	}
	if test.C != val.C {
		return val, nil, &npyfile.Error{Path: testLogits, Msg: fmt.Sprintf("has %d classes, but %s has %d", test.C, valLogits, val.C)}
	}
	return val, &test, nil
}
