// Package testutil holds test-only helpers shared by kdcal's packages.
package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kdcal/kdcal/internal/npyfile"
)

// RepoRoot returns the directory holding go.mod, walking up from the
// package under test.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testutil: go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// DataDir returns the repository's data/ folder ($KDCALTEST_DATA when set; not
// KDCAL_*, which the configuration reads as keys).
func DataDir(t testing.TB) string {
	if d := os.Getenv("KDCALTEST_DATA"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(t), "data")
}

// RequireDataset skips the test, saying how to install the data, when a
// dataset's training images are absent from DataDir.
func RequireDataset(t testing.TB, dataset string) string {
	t.Helper()
	dir := DataDir(t)
	if _, err := os.Stat(filepath.Join(dir, dataset, "train-images-idx3-ubyte.gz")); err != nil {
		t.Skipf("%s not installed under %s: run `make data` (CI does)", dataset, dir)
	}
	return dir
}

// Python is Debian's interpreter, which has numpy and torch when the
// python3-numpy / python3-torch packages are installed.
const Python = "/usr/bin/python3"

// RequirePython skips the test unless Debian's python3 can import every module.
func RequirePython(t testing.TB, modules ...string) {
	t.Helper()
	for _, m := range modules {
		if err := exec.Command(Python, "-c", "import "+m).Run(); err != nil {
			t.Skipf("%s cannot import %s (install python3-%s with apt-get; CI does)", Python, m, m)
		}
	}
}

// BenchArrays reads logits_<N>x<C>.npy and labels_<N>x<C>.npy from
// $KDCAL_BENCH_DIR, written by scripts/bench_calib.py so that the Go
// benchmarks and numpy time the same arrays. ok is false when the variable
// is unset (benchmarks then generate their own data).
func BenchArrays(tb testing.TB, n, c int) (z []float64, y []int, ok bool) {
	tb.Helper()
	dir := os.Getenv("KDCAL_BENCH_DIR")
	if dir == "" {
		return nil, nil, false
	}
	name := fmt.Sprintf("%dx%d.npy", n, c)
	z, _, cols, err := npyfile.ReadMatrix(filepath.Join(dir, "logits_"+name))
	if err != nil {
		tb.Fatal(err)
	}
	y, err = npyfile.ReadInts(filepath.Join(dir, "labels_"+name))
	if err != nil || cols != c || len(y) != n {
		tb.Fatalf("bench data %s: %v (cols %d, rows %d)", name, err, cols, len(y))
	}
	return z, y, true
}
