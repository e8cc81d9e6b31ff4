package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/testutil"
)

// idxBytes encodes an unsigned-byte IDX file with the given dims and data.
func idxBytes(dims []int, values []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, idxUbyte, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(values)
	return b.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func write(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeIDXSet writes a tiny MNIST-style dataset (n images of 2×2 pixels).
func writeIDXSet(t *testing.T, dir string, n int, labels []byte, compress bool) {
	px := make([]byte, n*4)
	for i := range px {
		px[i] = byte(i)
	}
	enc := func(b []byte) []byte { return b }
	suffix := ""
	if compress {
		enc, suffix = gz, ".gz"
	}
	for _, pre := range []string{"train", "t10k"} {
		write(t, dir, pre+"-images-idx3-ubyte"+suffix, enc(idxBytes([]int{n, 2, 2}, px)))
		write(t, dir, pre+"-labels-idx1-ubyte"+suffix, enc(idxBytes([]int{len(labels)}, labels)))
	}
}

func TestReadIDXRawAndGzip(t *testing.T) {
	for _, compress := range []bool{false, true} {
		dir := t.TempDir()
		writeIDXSet(t, filepath.Join(dir, "mnist"), 3, []byte{0, 9, 4}, compress)
		train, test, err := ReadOfficial(config.Data{Dataset: "mnist", Dir: dir})
		if err != nil {
			t.Fatalf("compress=%v: %v", compress, err)
		}
		if train.N != 3 || test.N != 3 || train.H != 2 || train.W != 2 || train.C != 1 {
			t.Fatalf("compress=%v: shape N=%d %dx%dx%d", compress, train.N, train.C, train.H, train.W)
		}
		if !slices.Equal(train.Y, []int{0, 9, 4}) || train.X[5] != 5 {
			t.Errorf("compress=%v: labels %v, X[5]=%v", compress, train.Y, train.X[5])
		}
	}
}

// TestBadFiles covers every bad-file case: each error names the file and the problem.
func TestBadFiles(t *testing.T) {
	good := idxBytes([]int{2, 2, 2}, make([]byte, 8))
	labels := idxBytes([]int{2}, []byte{1, 2})
	withDims := func(dims ...int) []byte { return idxBytes(dims, nil) }
	tests := []struct {
		name     string
		images   []byte
		labels   []byte
		skip     bool // do not write the files at all
		wantFile string
		want     string
	}{
		{"missing file", nil, nil, true, "train-images-idx3-ubyte.gz", "file not found; run `kdcal data fetch --dataset mnist`"},
		{"wrong magic", append([]byte{0, 0, 0x0D, 3}, good[4:]...), labels,
			false, "train-images-idx3-ubyte.gz", "wrong magic number 0x00000d03: IDX type 0x0d (float32) is not supported"},
		{"not idx at all", []byte("<html>not found</html>"), labels,
			false, "train-images-idx3-ubyte.gz", "wrong magic number"},
		{"too many dims", append([]byte{0, 0, 8, 9}, good[4:]...), labels,
			false, "train-images-idx3-ubyte.gz", "9 dimensions (want 1-4)"},
		{"truncated data", good[:len(good)-3], labels,
			false, "train-images-idx3-ubyte.gz", "truncated: header promises 8 bytes of data [2 2 2], file holds 5"},
		{"truncated header", good[:6], labels,
			false, "train-images-idx3-ubyte.gz", "truncated IDX header"},
		{"empty images file", []byte{}, labels,
			false, "train-images-idx3-ubyte.gz", "the file is empty"},
		{"no images (said: train split is empty)", withDims(0, 28, 28), idxBytes([]int{0}, nil),
			false, "train-images-idx3-ubyte.gz", "holds no images (dimensions [0 28 28])"},
		{"zero-width images", withDims(2, 28, 0), labels,
			false, "train-images-idx3-ubyte.gz", "images of 28×0 pixels hold nothing"},
		{"dims overflow (panicked)", withDims(1<<32-1, 1<<32-1, 1<<32-1), labels,
			false, "train-images-idx3-ubyte.gz", "implausible dimensions [4294967295 4294967295 4294967295]"},
		{"dims wrap to 0 (blamed the labels)", withDims(1<<22, 1<<21, 1<<21), labels,
			false, "train-images-idx3-ubyte.gz", "implausible dimensions [4194304 2097152 2097152]"},
		{"count mismatch", good, idxBytes([]int{3}, []byte{1, 2, 3}),
			false, "train-labels-idx1-ubyte.gz", "3 labels for 2 images"},
		{"label out of range", good, idxBytes([]int{2}, []byte{1, 12}),
			false, "train-labels-idx1-ubyte.gz", "label 12 of example 1 is outside [0, 10)"},
		{"labels with image dims", good, good,
			false, "train-labels-idx1-ubyte.gz", "expected 1 dimension for labels"},
	}
	for _, tt := range tests {
		for _, compress := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/gzip=%v", tt.name, compress), func(t *testing.T) {
				dir := t.TempDir()
				enc := func(b []byte) []byte { return b }
				if compress {
					enc = gz
				}
				if !tt.skip {
					write(t, dir, "mnist/train-images-idx3-ubyte.gz", enc(tt.images))
					write(t, dir, "mnist/train-labels-idx1-ubyte.gz", enc(tt.labels))
				}
				_, err := Load(config.Data{Dataset: "mnist", Dir: dir, ValFraction: 0.5})
				var de *Error
				if !errors.As(err, &de) {
					t.Fatalf("error %v (%T) is not a *data.Error", err, err)
				}
				if !strings.HasSuffix(de.Path, tt.wantFile) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("error %q\nwant file %s and text %q", err, tt.wantFile, tt.want)
				}
			})
		}
	}
}

// TestGzipIntegrity checks that a gzip file is read to its end: a wrong
// CRC-32, bytes after the stream, more data than declared, and a stream cut
// short are errors naming the file.
func TestGzipIntegrity(t *testing.T) {
	good := gz(idxBytes([]int{2, 2, 2}, []byte{1, 2, 3, 4, 5, 6, 7, 8}))
	badCRC := slices.Clone(good)
	badCRC[len(badCRC)-8] ^= 0xff // the CRC-32 is the trailer's first 4 bytes
	tests := []struct {
		name string
		file []byte
		want string
	}{
		{"checksum mismatch", badCRC, "gzip checksum mismatch"},
		{"trailing garbage", append(slices.Clone(good), "garbage"...), "bytes after the end of the gzip stream"},
		{"more data than declared", gz(idxBytes([]int{2, 2, 2}, make([]byte, 9))), "the gzip stream holds more than the 8 bytes"},
		{"cut short", good[:len(good)-10], "truncated gzip stream"},
		{"corrupt header", append([]byte{0x1f, 0x8b, 99}, good[3:]...), "corrupt gzip header"},
		{"raw trailing data", idxBytes([]int{2, 2, 2}, make([]byte, 9)), "1 bytes follow the 8 bytes of data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := write(t, t.TempDir(), "x-images-idx3-ubyte.gz", tt.file)
			_, _, err := ReadIDX(p)
			var de *Error
			if !errors.As(err, &de) || de.Path != p || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want a *data.Error on %s containing %q", err, p, tt.want)
			}
		})
	}
	p := write(t, t.TempDir(), "ok.gz", append(slices.Clone(good), gz(nil)...)) // a second, empty gzip member is allowed
	if dims, v, err := ReadIDX(p); err != nil || !slices.Equal(dims, []int{2, 2, 2}) || v[7] != 8 {
		t.Errorf("two-member gzip: %v %v %v", dims, v, err)
	}
}

// TestHugeDeclaredSizeAllocatesNothing checks that a 12-byte header
// declaring 1.9 GB of data is refused without allocating it, raw or gzip.
func TestHugeDeclaredSizeAllocatesNothing(t *testing.T) {
	header := idxBytes([]int{2_000_000, 31, 31}, nil) // 1.92e9 bytes declared
	for _, compress := range []bool{false, true} {
		b := header
		if compress {
			b = gz(header)
		}
		p := write(t, t.TempDir(), "huge.gz", b)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, err := ReadIDX(p)
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), "truncated: header promises 1922000000 bytes") {
			t.Errorf("gzip=%v: error %v", compress, err)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
			t.Errorf("gzip=%v: allocated %d bytes for a %d-byte file", compress, got, len(b))
		}
	}
}

// TestDataDirMessages checks the errors that lead the user somewhere: a
// data.dir (or its dataset folder) that is a file, a directory where a file
// belongs, and train and test images of different shapes.
func TestDataDirMessages(t *testing.T) {
	t.Run("data.dir is a file", func(t *testing.T) {
		f := write(t, t.TempDir(), "data", []byte("x"))
		for _, read := range []func() error{
			func() error { _, err := Load(config.Data{Dataset: "mnist", Dir: f, ValFraction: 0.1}); return err },
			func() error { return Fetch(t.Context(), f, "mnist", io.Discard) },
		} {
			err := read()
			var de *Error
			if !errors.As(err, &de) || de.Path != f || !strings.Contains(err.Error(), "data.dir is a file, not a directory") ||
				strings.Contains(err.Error(), "run `kdcal data fetch") {
				t.Errorf("error %v", err)
			}
		}
	})
	t.Run("data.dir/mnist is a file", func(t *testing.T) {
		dir := t.TempDir()
		f := write(t, dir, "mnist", []byte("x"))
		_, err := Load(config.Data{Dataset: "mnist", Dir: dir, ValFraction: 0.1})
		if err == nil || !strings.Contains(err.Error(), f+": data.dir/mnist is a file, not a directory") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("directory for a file", func(t *testing.T) {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "mnist", "train-images-idx3-ubyte.gz"), 0o755)
		_, err := Load(config.Data{Dataset: "mnist", Dir: dir, ValFraction: 0.1})
		if err == nil || !strings.Contains(err.Error(), "file not found") {
			t.Errorf("error %v", err)
		}
		p := filepath.Join(dir, "mnist", "train-images-idx3-ubyte.gz")
		if _, _, err := ReadIDX(p); err == nil || !strings.Contains(err.Error(), p+": is a directory") {
			t.Errorf("ReadIDX: %v", err)
		}
	})
	t.Run("train and test shapes differ (panicked after an epoch)", func(t *testing.T) {
		dir := t.TempDir()
		writeIDXSet(t, filepath.Join(dir, "mnist"), 3, []byte{0, 1, 2}, true)
		test := write(t, dir, "mnist/t10k-images-idx3-ubyte.gz", gz(idxBytes([]int{3, 3, 3}, make([]byte, 27))))
		_, err := Load(config.Data{Dataset: "mnist", Dir: dir, ValFraction: 0.1})
		var de *Error
		if !errors.As(err, &de) || de.Path != test ||
			!strings.Contains(err.Error(), "test images are 1×3×3, but the training images in "+filepath.Join(dir, "mnist", "train-images-idx3-ubyte.gz")+" are 1×2×2") {
			t.Errorf("error %v", err)
		}
	})
}

// TestSplitLeavesEveryClass checks that a split leaving a class without a
// validation or training example fails at load, before any training, as a
// configuration error naming the key responsible.
func TestSplitLeavesEveryClass(t *testing.T) {
	// per examples of each class 0-8, plus rare examples of class 9.
	set := func(per, rare int) string {
		labels := make([]byte, 9*per+rare)
		for i := range labels {
			labels[i] = byte(i % 9)
			if i >= 9*per {
				labels[i] = 9
			}
		}
		dir := t.TempDir()
		writeIDXSet(t, filepath.Join(dir, "mnist"), len(labels), labels, true)
		return dir
	}
	one, two := set(10, 1), set(100, 2)
	tests := []struct {
		name  string
		dir   string
		frac  float64
		limit int
		want  string
	}{
		{"no validation example", one, 0.2, 0, "data.val_fraction: 0.2 puts no example of class 9 (1 examples) in the validation split (round(0.2 × 1) = 0)"},
		{"no training example", one, 0.5, 0, "data.val_fraction: 0.5 leaves class 9 (1 examples) without a training example"},
		// 675 + 1 training examples; quotas 20·75/676 = 2.2 for classes 0-8 and 0.03 for class 9.
		{"limit drops a class", two, 0.25, 20, "data.train_limit: 20 leaves class 9 without a training example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(config.Data{Dataset: "mnist", Dir: tt.dir, ValFraction: tt.frac, TrainLimit: tt.limit})
			var ce *config.Error
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want a *config.Error containing %q", err, tt.want)
			}
		})
	}
	if _, err := Load(config.Data{Dataset: "mnist", Dir: two, ValFraction: 0.25, TrainLimit: 300}); err != nil {
		t.Errorf("a split that keeps every class: %v", err)
	}
}

func TestCorruptGzip(t *testing.T) {
	dir := t.TempDir()
	b := gz(idxBytes([]int{2, 2, 2}, make([]byte, 8)))
	write(t, dir, "mnist/train-images-idx3-ubyte.gz", b[:len(b)/2])
	_, _, err := ReadIDX(filepath.Join(dir, "mnist/train-images-idx3-ubyte.gz"))
	if err == nil || !strings.Contains(err.Error(), "train-images-idx3-ubyte.gz") {
		t.Fatalf("error = %v", err)
	}
}

// cifarRecord builds one CIFAR record with the given label bytes and a pixel pattern.
func cifarRecord(labels []byte, fill byte) []byte {
	rec := append([]byte{}, labels...)
	for i := 0; i < cifarImage; i++ {
		rec = append(rec, fill+byte(i%7))
	}
	return rec
}

func TestCIFAR(t *testing.T) {
	dir := t.TempDir()
	var batch []byte
	for i := 0; i < 4; i++ {
		batch = append(batch, cifarRecord([]byte{byte(i)}, byte(10*i))...)
	}
	for i := 1; i <= 5; i++ {
		write(t, dir, filepath.Join("cifar10", "data_batch_"+string(rune('0'+i))+".bin"), batch)
	}
	write(t, dir, "cifar10/test_batch.bin", batch[:2*(1+cifarImage)])
	train, test, err := ReadOfficial(config.Data{Dataset: "cifar10", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 20 || test.N != 2 || train.C != 3 || train.H != 32 || train.Classes != 10 {
		t.Fatalf("train N=%d test N=%d shape %dx%dx%d", train.N, test.N, train.C, train.H, train.W)
	}
	if train.Y[5] != 1 || train.X[5*3072+1] != 11 {
		t.Errorf("record 5: label %d, pixel 1 = %v (want 1, 11)", train.Y[5], train.X[5*3072+1])
	}

	// CIFAR-100: two label bytes, the fine one is used.
	write(t, dir, "cifar100/train.bin", append(cifarRecord([]byte{3, 77}, 0), cifarRecord([]byte{1, 99}, 0)...))
	write(t, dir, "cifar100/test.bin", cifarRecord([]byte{0, 5}, 0))
	train, _, err = ReadOfficial(config.Data{Dataset: "cifar100", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(train.Y, []int{77, 99}) || train.Classes != 100 {
		t.Errorf("cifar100 labels %v classes %d", train.Y, train.Classes)
	}

	// Truncated file and out-of-range label.
	write(t, dir, "cifar100/test.bin", cifarRecord([]byte{0, 5}, 0)[:100])
	if _, _, err := ReadOfficial(config.Data{Dataset: "cifar100", Dir: dir}); err == nil ||
		!strings.Contains(err.Error(), "test.bin: size 100 is not a multiple of the 3074-byte record") {
		t.Errorf("truncated: %v", err)
	}
	write(t, dir, "cifar100/test.bin", cifarRecord([]byte{0, 100}, 0))
	if _, _, err := ReadOfficial(config.Data{Dataset: "cifar100", Dir: dir}); err == nil ||
		!strings.Contains(err.Error(), "label 100 of record 0 is outside [0, 100)") {
		t.Errorf("bad label: %v", err)
	}
}

func TestStratifiedSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	labels := make([]int, 1003)
	for i := range labels {
		labels[i] = rng.IntN(7)
	}
	tr1, va1 := StratifiedSplit(labels, 7, 0.1, 42)
	tr2, va2 := StratifiedSplit(labels, 7, 0.1, 42)
	if !slices.Equal(tr1, tr2) || !slices.Equal(va1, va2) {
		t.Fatal("same seed gave different splits")
	}
	_, va3 := StratifiedSplit(labels, 7, 0.1, 43)
	if slices.Equal(va1, va3) {
		t.Error("different seeds gave the same validation split")
	}
	if len(tr1)+len(va1) != len(labels) || !slices.IsSorted(tr1) || !slices.IsSorted(va1) {
		t.Fatal("split is not a sorted partition")
	}
	seen := map[int]bool{}
	for _, i := range append(slices.Clone(tr1), va1...) {
		if seen[i] {
			t.Fatalf("position %d in both parts", i)
		}
		seen[i] = true
	}
	// Class balance: each class's validation count is within one example of frac·n_c.
	total, inVal := make([]int, 7), make([]int, 7)
	for _, y := range labels {
		total[y]++
	}
	for _, i := range va1 {
		inVal[labels[i]]++
	}
	for c := range total {
		if d := math.Abs(float64(inVal[c]) - 0.1*float64(total[c])); d > 1 {
			t.Errorf("class %d: %d of %d in validation (want %.1f ± 1)", c, inVal[c], total[c], 0.1*float64(total[c]))
		}
	}
}

func TestStratifiedSubset(t *testing.T) {
	labels := make([]int, 1000)
	for i := range labels {
		labels[i] = i % 4
		if i >= 900 {
			labels[i] = 3 // class 3 is over-represented
		}
	}
	idx := make([]int, 1000)
	for i := range idx {
		idx[i] = i
	}
	got := StratifiedSubset(labels, idx, 4, 100, 0)
	if len(got) != 100 || !slices.IsSorted(got) {
		t.Fatalf("len %d sorted %v", len(got), slices.IsSorted(got))
	}
	count := make([]int, 4)
	for _, i := range got {
		count[labels[i]]++
	}
	// Class counts are 225, 225, 225, 325 → quotas 22.5, 22.5, 22.5, 32.5 → 22 or 23 and 32 or 33.
	for c, want := range []float64{22.5, 22.5, 22.5, 32.5} {
		if math.Abs(float64(count[c])-want) > 1 {
			t.Errorf("class %d: %d examples, want %.1f ± 1", c, count[c], want)
		}
	}
}

func TestSyntheticDeterministicAndNormalised(t *testing.T) {
	cfg := config.Default().Data
	cfg.Dataset = "synthetic"
	a, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Load(cfg)
	if !slices.Equal(a.Train.X, b.Train.X) || !slices.Equal(a.Test.Y, b.Test.Y) {
		t.Fatal("synthetic set is not deterministic")
	}
	if a.Train.N+a.Val.N != cfg.Synthetic.Train || a.Test.N != cfg.Synthetic.Test {
		t.Errorf("sizes train %d val %d test %d", a.Train.N, a.Val.N, a.Test.N)
	}
	var s float64
	for _, v := range a.Train.X {
		s += float64(v)
	}
	if m := s / float64(len(a.Train.X)); math.Abs(m) > 1e-4 {
		t.Errorf("train mean after normalisation = %g, want 0 (tolerance 1e-4, float32 sums)", m)
	}
}

// TestNormalizeUnit: data.normalize unit leaves the inputs as x·scale
// (the synthetic set: scale 1, so as generated) and records mean 0, std 1;
// standardize changes them.
func TestNormalizeUnit(t *testing.T) {
	cfg := config.Default().Data
	cfg.Dataset = "synthetic"
	std, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Normalize = config.NormalizeUnit
	unit, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if std.Normalize != config.NormalizeStandardize || unit.Normalize != config.NormalizeUnit {
		t.Errorf("Normalize = %q, %q", std.Normalize, unit.Normalize)
	}
	if !slices.Equal(unit.Mean, []float64{0}) || !slices.Equal(unit.Std, []float64{1}) {
		t.Errorf("unit mean %v std %v, want [0] [1]", unit.Mean, unit.Std)
	}
	// x_std = (x_unit − mean)/std exactly as normalise computes it in float32.
	m, sd := float32(std.Mean[0]), float32(std.Std[0])
	for _, sp := range [][2]*Dataset{{std.Train, unit.Train}, {std.Val, unit.Val}, {std.Test, unit.Test}} {
		for i, v := range sp[1].X {
			if want := (v - m) / sd; sp[0].X[i] != want {
				t.Fatalf("%s[%d]: standardized %v, want (%v − %v)/%v = %v", sp[0].Name, i, sp[0].X[i], v, m, sd, want)
			}
		}
	}
	cfg.Normalize = "minmax"
	if _, err := Load(cfg); err == nil || !strings.Contains(err.Error(), "data.normalize") {
		t.Errorf("bad normalize: error %v, want one naming data.normalize", err)
	}
}

func TestIteratorVisitsEveryExampleOnce(t *testing.T) {
	cfg := config.Default().Data
	cfg.Dataset = "synthetic"
	s, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := s.Train
	it := d.Epoch(rand.New(rand.NewPCG(3, 4)), 64)
	seen := make([]bool, d.N)
	batches := 0
	for it.Next() {
		batches++
		for i, p := range it.Pos {
			if seen[p] {
				t.Fatalf("position %d twice", p)
			}
			seen[p] = true
			if it.Y[i] != d.Y[p] || it.X[i*d.D] != d.X[p*d.D] {
				t.Fatalf("batch row %d does not hold example %d", i, p)
			}
		}
	}
	if batches != d.Batches(64) || slices.Contains(seen, false) {
		t.Errorf("%d batches (want %d), all seen: %v", batches, d.Batches(64), !slices.Contains(seen, false))
	}
}

// TestRealDatasets reads the real MNIST and Fashion-MNIST files (installed by
// `make data`; CI installs them) and checks the official sizes and splits.
func TestRealDatasets(t *testing.T) {
	testutil.Slow(t, "about 6 s: loads MNIST and Fashion-MNIST")
	for _, name := range []string{"mnist", "fashion-mnist"} {
		t.Run(name, func(t *testing.T) {
			dir := testutil.RequireDataset(t, name)
			s, err := Load(config.Data{Dataset: name, Dir: dir, ValFraction: 0.1, SplitSeed: 0})
			if err != nil {
				t.Fatal(err)
			}
			if s.Train.N != 54000 || s.Val.N != 6000 || s.Test.N != 10000 || s.Train.D != 784 {
				t.Fatalf("train %d val %d test %d D %d", s.Train.N, s.Val.N, s.Test.N, s.Train.D)
			}
			counts := make([]int, 10)
			for _, y := range s.Val.Y {
				counts[y]++
			}
			for c, n := range counts {
				if n < 500 || n > 700 { // 10% of each class (5421–6742 per class in MNIST; 6000 in Fashion-MNIST)
					t.Errorf("class %d has %d validation examples", c, n)
				}
			}
			info := Inspect(dir, name)
			for _, f := range info.Files {
				if !f.Known {
					t.Errorf("%s: sha256 %s is not the packaged file's", f.Path, f.SHA256)
				}
			}
		})
	}
}

// TestCIFARBadFiles checks the CIFAR reader's size checks, made before any
// file is read: each error names the file.
func TestCIFARBadFiles(t *testing.T) {
	rec := cifarRecord([]byte{0, 5}, 0)
	tests := []struct {
		name  string
		setup func(dir string) string // returns the bad file
		want  string
	}{
		{"missing", func(dir string) string { return filepath.Join(dir, "cifar100", "train.bin") }, "cannot read"},
		{"empty", func(dir string) string { return write(t, dir, "cifar100/train.bin", nil) }, "the file is empty"},
		{"directory", func(dir string) string {
			p := filepath.Join(dir, "cifar100", "train.bin")
			os.MkdirAll(p, 0o755)
			return p
		}, "is a directory, not a CIFAR batch file"},
		{"partial record", func(dir string) string { return write(t, dir, "cifar100/train.bin", append(rec, rec[:10]...)) },
			"size 3084 is not a multiple of the 3074-byte record"},
		{"label out of range", func(dir string) string { return write(t, dir, "cifar100/train.bin", cifarRecord([]byte{0, 100}, 0)) },
			"label 100 of record 0 is outside [0, 100)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "cifar100/test.bin", rec)
			bad := tt.setup(dir)
			_, _, err := ReadOfficial(config.Data{Dataset: "cifar100", Dir: dir})
			var de *Error
			if !errors.As(err, &de) || de.Path != bad || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want a *data.Error on %s containing %q", err, bad, tt.want)
			}
		})
	}
}
