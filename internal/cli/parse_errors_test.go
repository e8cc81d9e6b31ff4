package cli

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 11, end to end: every parser's bad input runs the real kdcal binary
// (this test binary as `kdcal`, see TestMain) and must end with the
// documented exit code and a message naming the file or key, never a panic
// or stack trace (which would exit 2 and print "goroutine").

// parseCase is one kdcal invocation in a fresh directory.
type parseCase struct {
	name  string
	setup func(t *testing.T, dir string) []string // writes inputs, returns the arguments
	env   []string
	code  int
	want  []string // substrings of stderr; DIR is replaced by the directory
}

func runParseCases(t *testing.T, cases []parseCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := tc.setup(t, dir)
			cmd := kdcal(dir, args...)
			cmd.Env = append(cmd.Env, tc.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			msg := stderr.String()
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, msg)
			}
			for _, w := range tc.want {
				if w = strings.ReplaceAll(w, "DIR", dir); !strings.Contains(msg, w) {
					t.Errorf("stderr lacks %q:\n%s", w, msg)
				}
			}
			for _, bad := range []string{"panic:", "goroutine ", "runtime error", ".go:"} {
				if strings.Contains(msg, bad) {
					t.Errorf("stderr holds %q (a crash, not a message):\n%s", bad, msg)
				}
			}
		})
	}
}

// npyBytes is a .npy file (format 1.0) with a raw header and data.
func npyBytes(header string, data []byte) []byte {
	b := append([]byte("\x93NUMPY\x01\x00"), binary.LittleEndian.AppendUint16(nil, uint16(len(header)))...)
	return append(append(b, header...), data...)
}

// writeLogitsPair writes n×3 float32 logits under header and n int64 labels
// (label = argmax for most rows), returning the flags that pass them.
func writeLogitsPair(t *testing.T, dir, header string, n int) []string {
	t.Helper()
	var logits, labels []byte
	for i := range n {
		for c := range 3 {
			v := float32(0)
			if c == i%3 {
				v = 2
			}
			logits = binary.LittleEndian.AppendUint32(logits, math.Float32bits(v))
		}
		y := i % 3
		if i%5 == 0 {
			y = (i + 1) % 3
		}
		labels = binary.LittleEndian.AppendUint64(labels, uint64(y))
	}
	lp, yp := filepath.Join(dir, "logits.npy"), filepath.Join(dir, "labels.npy")
	writeBytes(t, lp, npyBytes(header, logits))
	writeBytes(t, yp, npyBytes(fmt.Sprintf("{'descr': '<i8', 'fortran_order': False, 'shape': (%d,), }\n", n), labels))
	return []string{"calibrate", "--method", "temp", "--val-logits", lp, "--val-labels", yp}
}

func writeBytes(t *testing.T, p string, b []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestNPYParseErrorsEndToEnd: the .npy cases of issue 11 that panicked
// (exit 2) or were misread, through `kdcal calibrate`.
func TestNPYParseErrorsEndToEnd(t *testing.T) {
	logits := func(header string) func(*testing.T, string) []string {
		return func(t *testing.T, dir string) []string { return writeLogitsPair(t, dir, header, 60) }
	}
	truncated := func(t *testing.T, dir string) []string {
		args := writeLogitsPair(t, dir, "{'descr': '<f4', 'fortran_order': False, 'shape': (60, 3), }\n", 60)
		b, _ := os.ReadFile(args[4])
		writeBytes(t, args[4], b[:30])
		return args
	}
	runParseCases(t, []parseCase{
		{"keys in another order, double quotes, no trailing comma (crashed, rejected)",
			logits(`{"shape": (60, 3), "descr": "<f4", "fortran_order": False}` + "\n"), nil, ExitOK, []string{}},
		{"truncated header (crashed)", truncated, nil, ExitData,
			[]string{"DIR/logits.npy: truncated: the header declares", "but the file has 30 bytes in all"}},
		{"huge declared shape (crashed)", logits("{'descr': '<f4', 'fortran_order': False, 'shape': (60000000000, 3), }\n"), nil, ExitData,
			[]string{"DIR/logits.npy: truncated: the header declares shape (60000000000, 3) of <f4"}},
		{"no closing brace (crashed)", logits("{'descr': '<f4', 'fortran_order': False, 'shape': (60, 3), \n"), nil, ExitData,
			[]string{"DIR/logits.npy: header is not a Python literal", "no closing brace"}},
	})
}

// idxFile encodes an unsigned-byte IDX file, gzip-compressed.
func idxFile(dims []int, values []byte) []byte {
	var raw bytes.Buffer
	raw.Write([]byte{0, 0, 8, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&raw, binary.BigEndian, uint32(d))
	}
	raw.Write(values)
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(raw.Bytes())
	w.Close()
	return out.Bytes()
}

// mnistStudy writes a config reading MNIST-style files from DIR/data and
// the four files (n 2×2 images, labels i%10, except class 9 has one
// example) and returns the train-teachers arguments.
func mnistStudy(t *testing.T, dir string, n int, valFraction float64) []string {
	t.Helper()
	cfg := fmt.Sprintf(`name: p
experiments_dir: %s/exp
seeds: [0]
data: {dataset: mnist, dir: %s/data, val_fraction: %g}
teacher: {family: mlp, sizes: [tiny], train: {epochs: 1, batch_size: 8}}
`, dir, dir, valFraction)
	writeBytes(t, filepath.Join(dir, "study.yaml"), []byte(cfg))
	labels := make([]byte, n)
	for i := range labels {
		labels[i] = byte(i % 9)
	}
	labels[n-1] = 9
	for _, pre := range []string{"train", "t10k"} {
		writeBytes(t, filepath.Join(dir, "data", "mnist", pre+"-images-idx3-ubyte.gz"), idxFile([]int{n, 2, 2}, make([]byte, 4*n)))
		writeBytes(t, filepath.Join(dir, "data", "mnist", pre+"-labels-idx1-ubyte.gz"), idxFile([]int{n}, labels))
	}
	return []string{"train-teachers", "--config", "study.yaml"}
}

// TestDataParseErrorsEndToEnd: the IDX cases of issue 11 through
// `kdcal train-teachers`, which loads the dataset before training.
func TestDataParseErrorsEndToEnd(t *testing.T) {
	images := "DIR/data/mnist/train-images-idx3-ubyte.gz"
	replace := func(name string, b []byte) func(*testing.T, string) []string {
		return func(t *testing.T, dir string) []string {
			args := mnistStudy(t, dir, 40, 0.5)
			writeBytes(t, filepath.Join(dir, "data", "mnist", name), b)
			return args
		}
	}
	badCRC := idxFile([]int{40, 2, 2}, make([]byte, 160))
	badCRC[len(badCRC)-8] ^= 1
	runParseCases(t, []parseCase{
		{"dims overflow (crashed)", replace("train-images-idx3-ubyte.gz", idxFile([]int{1 << 22, 1 << 21, 1 << 21}, nil)), nil, ExitData,
			[]string{images + ": implausible dimensions [4194304 2097152 2097152]"}},
		{"a 12-byte header declaring 1.9 GB", replace("train-images-idx3-ubyte.gz", idxFile([]int{2_000_000, 31, 31}, nil)), nil, ExitData,
			[]string{images + ": truncated: header promises 1922000000 bytes"}},
		{"no images (said: train split is empty)", replace("train-images-idx3-ubyte.gz", idxFile([]int{0, 2, 2}, nil)), nil, ExitData,
			[]string{images + ": holds no images"}},
		{"gzip CRC mismatch", replace("train-images-idx3-ubyte.gz", badCRC), nil, ExitData,
			[]string{images + ": gzip checksum mismatch"}},
		{"train and test shapes differ (crashed after an epoch)", replace("t10k-images-idx3-ubyte.gz", idxFile([]int{40, 3, 3}, make([]byte, 360))), nil, ExitData,
			[]string{"DIR/data/mnist/t10k-images-idx3-ubyte.gz: test images are 1×3×3, but the training images in " + images + " are 1×2×2"}},
		{"data.dir is a file (said: run kdcal data fetch)", func(t *testing.T, dir string) []string {
			args := mnistStudy(t, dir, 40, 0.5)
			os.RemoveAll(filepath.Join(dir, "data"))
			writeBytes(t, filepath.Join(dir, "data"), []byte("not a directory"))
			return args
		}, nil, ExitData, []string{"DIR/data: data.dir is a file, not a directory"}},
		{"validation split empty for a class", func(t *testing.T, dir string) []string { return mnistStudy(t, dir, 40, 0.2) }, nil, ExitConfig,
			[]string{"data.val_fraction: 0.2 puts no example of class 9 (1 examples) in the validation split"}},
	})
}

// TestConfigParseErrorsEndToEnd: values of the wrong type from each source,
// duplicate grid values and an empty file, through `kdcal config show`.
func TestConfigParseErrorsEndToEnd(t *testing.T) {
	file := func(body string) func(*testing.T, string) []string {
		return func(t *testing.T, dir string) []string {
			writeBytes(t, filepath.Join(dir, "c.yaml"), []byte(body))
			return []string{"config", "show", "--config", "c.yaml"}
		}
	}
	show := func(args ...string) func(*testing.T, string) []string {
		return func(*testing.T, string) []string { return append([]string{"config", "show"}, args...) }
	}
	runParseCases(t, []parseCase{
		{"epochs 2.5 (became 2)", file("teacher:\n  train:\n    epochs: 2.5\n"), nil, ExitConfig,
			[]string{"c.yaml:3: teacher.train.epochs: got 2.5 (a fractional number), expected a whole number"}},
		{"epochs true (became 1)", show(), []string{"KDCAL_STUDENT_TRAIN_EPOCHS=true"}, ExitConfig,
			[]string{"environment variable KDCAL_STUDENT_TRAIN_EPOCHS: student.train.epochs: got true (a boolean), expected a whole number"}},
		{"wrong type from --set", show("--set", "data.val_fraction=[0.1]"), nil, ExitConfig,
			[]string{"flag --set data.val_fraction: data.val_fraction: got a list, expected a finite number"}},
		{"duplicate temperature", show("--set", "kd.temperature=[4, 4]"), nil, ExitConfig,
			[]string{"kd.temperature: temperature 4 is listed more than once"}},
		{"empty file", file("# nothing\n"), nil, ExitConfig, []string{"c.yaml: the config file is empty"}},
		{"epochs 2.0 is 2", show("--set", "teacher.train.epochs=2.0"), nil, ExitOK, nil},
	})
}
