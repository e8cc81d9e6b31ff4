package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kdcal/kdcal/internal/npyfile"
	"github.com/kdcal/kdcal/internal/pipeline"
)

// TestDataSplit: `kdcal data split` writes exactly the indices and labels
// a teacher step trains and calibrates on (compared with a trained
// teacher's files of the same config), never replaces them without
// --force, and refuses an --out that is a file.
func TestDataSplit(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "study.yaml"), []byte(externalStudy(dir, "split", "")))
	if code, _, stderr := run(t, dir, nil, "train-teachers", "--config", "study.yaml"); code != 0 {
		t.Fatalf("train-teachers: exit %d\n%s", code, stderr)
	}
	code, stdout, stderr := run(t, dir, nil, "data", "split", "--config", "study.yaml", "--out", "split", "--json")
	if code != 0 {
		t.Fatalf("data split: exit %d\n%s", code, stderr)
	}
	var info pipeline.SplitInfo
	if err := json.Unmarshal([]byte(stdout), &info); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	if info.Official != 600 || info.Train != 300 || info.Val != 60 || info.Test != 200 || info.TrainLimit != 300 {
		t.Errorf("split.json sizes: %+v, want 600 official, 300 train, 60 val, 200 test", info)
	}
	teacher := filepath.Join(dir, "exp", "split", "teachers", "small", "seed-0")
	for _, name := range []string{"index_train.npy", "labels_train.npy", "index_val.npy", "labels_val.npy"} {
		got, err := npyfile.ReadInts(filepath.Join(dir, "split", name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := npyfile.ReadInts(filepath.Join(teacher, name))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s differs from the teacher step's (%d rows, teacher %d)", name, len(got), len(want))
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "split", "split.json"))
	if err != nil || !bytes.Contains(b, []byte(`"official_train": 600`)) {
		t.Errorf("split.json: %v\n%s", err, b)
	}

	// Existing files are refused without --force, and left as they were.
	before, _ := os.ReadFile(filepath.Join(dir, "split", "index_val.npy"))
	code, _, stderr = run(t, dir, nil, "data", "split", "--config", "study.yaml", "--out", "split", "--set", "data.split_seed=5")
	if code != ExitUsage || !strings.Contains(stderr, "already exists; use --force") {
		t.Errorf("second split without --force: exit %d, stderr %q", code, stderr)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "split", "index_val.npy"))
	if !bytes.Equal(before, after) {
		t.Error("a refused split changed index_val.npy")
	}
	if code, _, stderr = run(t, dir, nil, "data", "split", "--config", "study.yaml", "--out", "split", "--set", "data.split_seed=5", "--force"); code != 0 {
		t.Errorf("--force: exit %d\n%s", code, stderr)
	}
	if after, _ = os.ReadFile(filepath.Join(dir, "split", "index_val.npy")); bytes.Equal(before, after) {
		t.Error("another split_seed with --force left index_val.npy unchanged")
	}
	code, _, stderr = run(t, dir, nil, "data", "split", "--config", "study.yaml", "--out", "study.yaml")
	if code != ExitUsage || !strings.Contains(stderr, "is a file, not a directory") {
		t.Errorf("--out a file: exit %d, stderr %q", code, stderr)
	}
	// A directory or a link where a split file goes is never replaced, not
	// even with --force, and nothing is written next to it.
	for _, odd := range []struct{ name, make string }{{"index_val.npy", "dir"}, {"split.json", "symlink"}} {
		out := filepath.Join(dir, "odd-"+odd.make)
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(out, odd.name)
		if odd.make == "dir" {
			err = os.Mkdir(p, 0o755)
		} else {
			err = os.Symlink(filepath.Join(dir, "study.yaml"), p)
		}
		if err != nil {
			t.Fatal(err)
		}
		code, _, stderr = run(t, dir, nil, "data", "split", "--config", "study.yaml", "--out", out, "--force")
		if code != ExitUsage || !strings.Contains(stderr, odd.name+": exists as a "+map[string]string{"dir": "directory", "symlink": "symbolic link"}[odd.make]+", not a regular file") {
			t.Errorf("%s as a %s, --force: exit %d, stderr %q", odd.name, odd.make, code, stderr)
		}
		if entries, _ := os.ReadDir(out); len(entries) != 1 {
			t.Errorf("%s as a %s: the refused split wrote %d entries next to it", odd.name, odd.make, len(entries)-1)
		}
	}
	if code, _, stderr = run(t, dir, nil, "data", "split", "--config", "study.yaml"); code != ExitUsage || !strings.Contains(stderr, "out") {
		t.Errorf("no --out: exit %d, stderr %q", code, stderr)
	}
}
