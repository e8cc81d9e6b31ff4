package npyfile_test

import (
	"encoding/binary"
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

// TestNumpyCrossCheck has numpy write every supported dtype and read kdcal's files.
func TestNumpyCrossCheck(t *testing.T) {
	testutil.RequirePython(t, "numpy")
	dir := t.TempDir()
	if err := npyfile.WriteFloat32(filepath.Join(dir, "k.npy"), []float32{1.5, 2, 3, 4, 5, 6}, 2, 3); err != nil {
		t.Fatal(err)
	}
	script := `
import numpy as np, sys
d = sys.argv[1]
k = np.load(d + "/k.npy")
assert k.dtype == np.float32 and k.shape == (2, 3) and k[0, 0] == 1.5, (k.dtype, k.shape, k)
x = np.arange(6, dtype=np.float64).reshape(2, 3) / 4
np.save(d + "/f8.npy", x); np.save(d + "/f4.npy", x.astype(np.float32))
np.save(d + "/i4.npy", np.array([2, 0, 1], dtype=np.int32)); np.save(d + "/i8.npy", np.array([2, 0, 1]))
np.save(d + "/fortran.npy", np.asfortranarray(x))
`
	if out, err := exec.Command(testutil.Python, "-c", script, dir).CombinedOutput(); err != nil {
		t.Fatalf("numpy: %v\n%s", err, out)
	}
	for _, name := range []string{"f8.npy", "f4.npy"} {
		got, r, c, err := npyfile.ReadMatrix(filepath.Join(dir, name))
		if err != nil || r != 2 || c != 3 || got[5] != 1.25 {
			t.Errorf("%s: %v %d×%d %v", name, err, r, c, got)
		}
	}
	for _, name := range []string{"i4.npy", "i8.npy"} {
		if y, err := npyfile.ReadInts(filepath.Join(dir, name)); err != nil || !slices.Equal(y, []int{2, 0, 1}) {
			t.Errorf("%s: %v %v", name, y, err)
		}
	}
	if _, _, _, err := npyfile.ReadMatrix(filepath.Join(dir, "fortran.npy")); err == nil || !strings.Contains(err.Error(), "Fortran") {
		t.Errorf("fortran: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	nan := filepath.Join(dir, "nan.npy")
	npyfile.WriteFloat32(nan, []float32{1, float32(math.NaN()), 3, 4}, 2, 2)
	vec := filepath.Join(dir, "vec.npy")
	npyfile.WriteInt64(vec, []int{1, 2})
	empty := filepath.Join(dir, "empty.npy")
	npyfile.WriteFloat32(empty, nil, 0, 10)
	text := filepath.Join(dir, "text.npy")
	os.WriteFile(text, []byte("label\n1\n2\n"), 0o644)
	trunc := filepath.Join(dir, "trunc.npy")
	npyfile.WriteFloat32(trunc, make([]float32, 100), 10, 10)
	b, _ := os.ReadFile(trunc)
	os.WriteFile(trunc, b[:len(b)-40], 0o644)

	tests := []struct {
		name string
		read func() error
		want string
	}{
		{"nan", func() error { _, _, _, err := npyfile.ReadMatrix(nan); return err }, "non-finite value NaN at row 0, column 1"},
		{"1-D as matrix", func() error { _, _, _, err := npyfile.ReadMatrix(vec); return err }, "expected a 2-D array"},
		{"2-D as labels", func() error { _, err := npyfile.ReadInts(nan); return err }, "expected a 1-D array"},
		{"float as labels", func() error { _, err := npyfile.ReadInts(filepath.Join(dir, "x")); return err }, "file not found"},
		{"empty", func() error { _, _, _, err := npyfile.ReadMatrix(empty); return err }, "array is empty"},
		{"not npy", func() error { _, _, _, err := npyfile.ReadMatrix(text); return err }, "not a NumPy .npy file"},
		{"truncated", func() error { _, _, _, err := npyfile.ReadMatrix(trunc); return err }, "truncated"},
		{"int as logits", func() error { _, _, _, err := npyfile.ReadMatrix(vec); return err }, "vec.npy"},
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
