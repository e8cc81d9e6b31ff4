package plan

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/kdcal/kdcal/internal/atomicfile"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/runstore"
)

// ExternalVersion is part of an external teacher's hash, as EngineVersion is
// of a trained one: bump it when the import (slicing, what is written)
// changes results for the same files.
const ExternalVersion = 1

// The files of an external teacher (teacher.source external), relative to
// teacher.external_dir:
//
//	<size>/seed-<n>/train_logits.npy   N×C, the whole official training set in official order
//	<size>/seed-<n>/test_logits.npy    M×C, the official test set in official order
//	<size>/params.json                 optional: {"params": <trainable parameters>}
const (
	ExternalTrainFile  = "train_logits.npy"
	ExternalTestFile   = "test_logits.npy"
	ExternalParamsFile = "params.json"
)

// ExternalFiles returns the paths of the train and test logits and of the
// optional params.json of the external teacher (size, seed) under dir.
func ExternalFiles(dir, size string, seed int) (train, test, params string) {
	sd := filepath.Join(dir, size, "seed-"+strconv.Itoa(seed))
	return filepath.Join(sd, ExternalTrainFile), filepath.Join(sd, ExternalTestFile), filepath.Join(dir, size, ExternalParamsFile)
}

// externalTeacherHash keys an external teacher step: the SHA-256 of its
// files (so that replacing one redoes what depends on it), the split it is
// sliced into (data) and the seed. A missing or unreadable file enters as
// such: the step is then not done, and the teacher stage's check names the
// file before anything runs.
func externalTeacherHash(c *config.Config, size string, seed int) string {
	train, test, params := ExternalFiles(c.Teacher.ExternalDir, size, seed)
	data := dataOf(c.Data)
	data.Normalize = "" // the logits are given: how kdcal scales inputs does not change them
	return runstore.Hash(struct {
		Version int
		Kind    string
		Source  string
		Data    dataKey
		Size    string
		Seed    int
		Train   string
		Test    string
		Params  string
	}{ExternalVersion, runstore.KindTeacher, config.SourceExternal, data, size, seed,
		fileDigest(train), fileDigest(test), fileDigest(params)})
}

// digests caches file SHA-256s by path, size and modification time: a plan
// asks for each teacher's hash once per calibration and student step.
var digests = struct {
	sync.Mutex
	m map[string]digest
}{m: map[string]digest{}}

type digest struct {
	size int64
	mod  time.Time
	sum  string
}

// fileDigest returns "sha256:<hex>" of the file at path, "absent" when there
// is none, or "unreadable: <error>".
func fileDigest(path string) string {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "absent"
	case err != nil:
		return "unreadable: " + err.Error()
	case !fi.Mode().IsRegular():
		return "not a regular file"
	}
	digests.Lock()
	d, ok := digests.m[path]
	digests.Unlock()
	if ok && d.size == fi.Size() && d.mod.Equal(fi.ModTime()) {
		return d.sum
	}
	hexSum, _, err := atomicfile.SHA256(path)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	sum := "sha256:" + hexSum
	digests.Lock()
	digests.m[path] = digest{size: fi.Size(), mod: fi.ModTime(), sum: sum}
	digests.Unlock()
	return sum
}

// externalCost is the cost of importing one external teacher: reading and
// evaluating its logits, about one multiply-add per logit and example.
func externalCost(c *config.Config) float64 {
	return float64(c.Data.Classes())
}
