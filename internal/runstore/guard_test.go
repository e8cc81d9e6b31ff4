package runstore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// userFiles makes dir hold files kdcal did not write and returns a check
// that they are still there, unchanged.
func userFiles(t *testing.T, dir string) func() {
	t.Helper()
	files := map[string]string{"thesis.tex": "\\chapter{Results}", "data/notes.md": "keep me"}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		t.Helper()
		for name, body := range files {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil || string(b) != body {
				t.Errorf("user file %s was changed or removed: %q, %v", name, b, err)
			}
		}
	}
}

func wantForeign(t *testing.T, err error, want string) {
	t.Helper()
	var fe *ForeignError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want a *ForeignError saying %q", err, want)
	}
}

// TestOpen pins which directories Open accepts as a store (and marks) and
// which it refuses without writing anything.
func TestOpen(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, p string) func() // makes p; returns a check run after Open
		wantErr string
	}{
		{"absent", func(*testing.T, string) func() { return nil }, ""},
		{"empty", func(t *testing.T, p string) func() { os.Mkdir(p, 0o755); return nil }, ""},
		{"store with marker", func(t *testing.T, p string) func() {
			os.MkdirAll(p, 0o755)
			os.WriteFile(filepath.Join(p, MarkerFile), []byte("{}"), 0o644)
			return nil
		}, ""},
		{"store before the marker (config.yaml)", func(t *testing.T, p string) func() {
			os.MkdirAll(p, 0o755)
			os.WriteFile(filepath.Join(p, "config.yaml"), []byte(legacyConfigHeader+" (defaults < file)\nname: x\n"), 0o644)
			return nil
		}, ""},
		{"store before the marker (teacher steps)", func(t *testing.T, p string) func() {
			os.MkdirAll(filepath.Join(p, "teachers", "tiny", "seed-0"), 0o755)
			os.WriteFile(filepath.Join(p, "teachers", "tiny", "seed-0", ManifestFile), []byte("{}"), 0o644)
			return nil
		}, ""},
		{"folder of user files", func(t *testing.T, p string) func() {
			os.Mkdir(p, 0o755)
			return userFiles(t, p)
		}, "is not a kdcal experiment directory: it holds 2 entries (data, thesis.tex)"},
		{"user config.yaml", func(t *testing.T, p string) func() {
			os.Mkdir(p, 0o755)
			os.WriteFile(filepath.Join(p, "config.yaml"), []byte("name: mine\n"), 0o644)
			return nil
		}, "is not a kdcal experiment directory"},
		{"regular file", func(t *testing.T, p string) func() {
			os.WriteFile(p, []byte("x"), 0o644)
			return nil
		}, "is a file, not an experiment directory"},
		{"symlink loop", func(t *testing.T, p string) func() {
			os.Symlink(p, p)
			return nil
		}, "is a symbolic link loop"},
		{"dangling symlink", func(t *testing.T, p string) func() {
			os.Symlink(filepath.Join(filepath.Dir(p), "gone"), p)
			return nil
		}, "is a symbolic link to a missing target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "exp")
			check := tt.setup(t, p)
			s, err := Open(p)
			if tt.wantErr != "" {
				wantForeign(t, err, tt.wantErr)
				if _, err := os.Stat(filepath.Join(p, MarkerFile)); err == nil {
					t.Error("a refused directory got a marker")
				}
			} else if err != nil {
				t.Fatal(err)
			} else if _, err := os.Stat(filepath.Join(s.Root, MarkerFile)); err != nil {
				t.Errorf("no marker in the store: %v", err)
			}
			if check != nil {
				check()
			}
		})
	}
}

// TestOpenOutput pins the directories a step may be published into from
// outside the store (kdcal report --out): absent, empty or a previous
// output of the same kind; never the store, its ancestors, a file or a
// folder of other files.
func TestOpenOutput(t *testing.T) {
	base := t.TempDir()
	store := filepath.Join(base, "studies", "exp")
	s, err := Open(store)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := s.Begin(Manifest{Key: TeacherKey("tiny", 0), Kind: KindTeacher, ConfigHash: "h"})
	if err := st.Commit(); err != nil {
		t.Fatal(err)
	}
	prev := filepath.Join(base, "prev")
	out, key, err := OpenOutput(prev, KindReport, store)
	if err != nil {
		t.Fatal(err)
	}
	st, _ = out.Begin(Manifest{Key: key, Kind: KindReport, ConfigHash: "r"})
	if err := st.Commit(); err != nil {
		t.Fatal(err)
	}
	// Nothing of kdcal's is left next to the output: only prev itself.
	if names, _ := dirNames(base); strings.Join(names, ",") != "prev,studies" {
		t.Errorf("after publishing %s, %s holds %v, want [prev studies] (no prev.lock, no prev.partial)", prev, base, names)
	}
	os.Mkdir(filepath.Join(base, "empty"), 0o755)
	os.Mkdir(filepath.Join(base, "mine"), 0o755)
	userFiles(t, filepath.Join(base, "mine"))
	os.WriteFile(filepath.Join(base, "file.txt"), []byte("x"), 0o644)
	os.Symlink(store, filepath.Join(base, "link-to-store"))
	os.Symlink(filepath.Join(base, "empty"), filepath.Join(base, "link-to-empty"))

	tests := []struct {
		name, dir string
		wantRoot  string // where the output lands (links resolved)
		wantErr   string
	}{
		{"absent", filepath.Join(base, "new", "report"), filepath.Join(base, "new", "report"), ""},
		{"empty", filepath.Join(base, "empty"), filepath.Join(base, "empty"), ""},
		{"previous report", prev, prev, ""},
		{"link to an empty directory", filepath.Join(base, "link-to-empty"), filepath.Join(base, "empty"), ""},
		{"user files", filepath.Join(base, "mine"), "", "is not empty and not a previous kdcal report: it holds 2 entries (data, thesis.tex)"},
		{"regular file", filepath.Join(base, "file.txt"), "", "is a file, not a directory"},
		{"the store", store, "", "is the experiment directory"},
		{"the store via ..", filepath.Join(store, "teachers", ".."), "", "is the experiment directory"},
		{"a link to the store", filepath.Join(base, "link-to-store"), "", "is the experiment directory"},
		{"the store's parent", filepath.Join(base, "studies"), "", "contains the experiment directory"},
		{"the root", "/", "", "contains the experiment directory"},
		{"a teacher step", s.Dir(TeacherKey("tiny", 0)), "", `holds a kdcal teacher step (manifest.json kind "teacher"), not a report`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, key, err := OpenOutput(tt.dir, KindReport, store)
			if tt.wantErr != "" {
				wantForeign(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want, _ := realPath(filepath.Dir(tt.wantRoot))
			if out.Root != want || key != filepath.Base(tt.wantRoot) {
				t.Errorf("output at %s / %s, want %s / %s", out.Root, key, want, filepath.Base(tt.wantRoot))
			}
		})
	}
}

// TestBeginRefusesForeignDirs: a step directory (or its work directory)
// holding files kdcal did not write is neither wiped nor replaced.
func TestBeginRefusesForeignDirs(t *testing.T) {
	for _, suffix := range []string{"", ".partial"} {
		t.Run("dir"+suffix, func(t *testing.T) {
			s, _ := Open(t.TempDir())
			key := TeacherKey("large", 0)
			os.MkdirAll(s.Dir(key)+suffix, 0o755)
			check := userFiles(t, s.Dir(key)+suffix)
			_, err := s.Begin(Manifest{Key: key, Kind: KindTeacher, ConfigHash: "h"})
			wantForeign(t, err, "no kdcal manifest.json, so kdcal will not replace it")
			check()
			_, err = s.Begin(Manifest{Key: key, Kind: KindTeacher, ConfigHash: "h"})
			wantForeign(t, err, "will not replace it") // not ErrBusy: the refusal released the lock
		})
	}
}
