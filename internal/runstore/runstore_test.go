package runstore

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gofrs/flock"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/version"
)

func begin(t *testing.T, s *Store, key, hash string) *Step {
	t.Helper()
	st, err := s.Begin(Manifest{Key: key, Kind: KindTeacher, ConfigHash: hash})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestCommitPublishesAtOnce(t *testing.T) {
	s, _ := Open(t.TempDir())
	key := TeacherKey("large", 0)
	st := begin(t, s, key, "h1")
	if err := os.WriteFile(st.Path("a.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Dir(key)); !os.IsNotExist(err) {
		t.Fatal("final directory exists before Commit")
	}
	if s.Done(key, "") {
		t.Fatal("Done before Commit")
	}
	st.SetParam("formula", "ce")
	if err := st.Commit(); err != nil {
		t.Fatal(err)
	}
	if !s.Done(key, "h1") || s.Done(key, "other") {
		t.Fatal("Done does not follow the committed hash")
	}
	m, _ := s.Manifest(key)
	if m.Status != StatusDone || m.Params["formula"] != "ce" || m.Finished == nil || m.GoVersion == "" ||
		m.Backend != version.Get().Backend || m.GEMM != version.Get().GEMM || m.Revision == "" || m.RevSource == "" {
		t.Errorf("manifest %+v", m)
	}
	if _, err := os.Stat(s.Dir(key) + ".partial"); !os.IsNotExist(err) {
		t.Error("work directory left behind")
	}
	// A rerun replaces the old result.
	st = begin(t, s, key, "h2")
	os.WriteFile(st.Path("b.txt"), []byte("y"), 0o644)
	if err := st.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Path(key, "a.txt")); !os.IsNotExist(err) || !s.Done(key, "h2") {
		t.Error("rerun did not replace the old result")
	}
	matches, _ := filepath.Glob(s.Dir(key) + ".old-*")
	if len(matches) != 0 {
		t.Errorf("left %v", matches)
	}
}

func TestFailPublishesNothing(t *testing.T) {
	s, _ := Open(t.TempDir())
	key := TeacherKey("small", 1)
	st := begin(t, s, key, "h")
	err := st.Fail(errors.New("loss became NaN"))
	if err == nil || s.Done(key, "") {
		t.Fatal("failed step looks finished")
	}
	var m Manifest
	b, _ := os.ReadFile(filepath.Join(s.Dir(key)+".partial", "manifest.json"))
	if !strings.Contains(string(b), `"status": "failed"`) || !strings.Contains(string(b), "loss became NaN") {
		t.Errorf("work manifest: %s %v", b, m)
	}
}

func TestBusyAndResume(t *testing.T) {
	s, _ := Open(t.TempDir())
	key := TeacherKey("tiny", 0)
	st := begin(t, s, key, "h")
	if _, err := s.Begin(Manifest{Key: key, ConfigHash: "h"}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Begin: %v, want ErrBusy", err)
	}
	os.WriteFile(st.Path("checkpoint"), []byte("epoch 3"), 0o644)
	st.Release() // interrupted

	st = begin(t, s, key, "h") // same hash: the checkpoint is kept for resume
	if b, err := os.ReadFile(st.Path("checkpoint")); err != nil || string(b) != "epoch 3" {
		t.Errorf("checkpoint not kept: %q %v", b, err)
	}
	st.Release()
	st = begin(t, s, key, "other") // other config: stale partial work is wiped
	if _, err := os.Stat(st.Path("checkpoint")); !os.IsNotExist(err) {
		t.Error("stale checkpoint kept across a config change")
	}
	st.Release()
}

// TestLockFreedWhenHolderIsKilled starts a process that holds a step's lock,
// kills it with SIGKILL, and checks that the lock is free again: no stale lock.
func TestLockFreedWhenHolderIsKilled(t *testing.T) {
	if os.Getenv("RUNSTORE_HOLD_LOCK") != "" {
		lk := flock.New(os.Getenv("RUNSTORE_HOLD_LOCK"))
		if ok, err := lk.TryLock(); !ok || err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("locked\n")
		time.Sleep(time.Minute)
		return
	}
	s, _ := Open(t.TempDir())
	key := TeacherKey("large", 2)
	os.MkdirAll(filepath.Dir(s.Dir(key)), 0o755)
	cmd := exec.Command(os.Args[0], "-test.run=TestLockFreedWhenHolderIsKilled")
	cmd.Env = append(os.Environ(), "RUNSTORE_HOLD_LOCK="+s.Dir(key)+".lock")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := out.Read(buf); err != nil || string(buf) != "locked\n" {
		t.Fatalf("holder did not lock: %q %v", buf, err)
	}
	if _, err := s.Begin(Manifest{Key: key}); !errors.Is(err, ErrBusy) {
		t.Fatalf("Begin while another process holds the lock: %v", err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	st, err := s.Begin(Manifest{Key: key})
	if err != nil {
		t.Fatalf("lock not recovered after kill -9: %v", err)
	}
	st.Release()
}

func TestKeysAndHash(t *testing.T) {
	if got := SettingName(4, 0.9, 20); got != "tau4-kdw0.9-ep20" {
		t.Errorf("SettingName = %q", got)
	}
	if got := StudentKey("tau4-kdw0.9-ep20", "raw", "large", 1); got != "students/tau4-kdw0.9-ep20/raw/large/seed-1" {
		t.Errorf("StudentKey = %q", got)
	}
	if got := ScratchKey(20, 0); got != "students/scratch-ep20/seed-0" {
		t.Errorf("ScratchKey = %q", got)
	}
	a := Hash(map[string]int{"a": 1, "b": 2})
	if a != Hash(map[string]int{"b": 2, "a": 1}) || a == Hash(map[string]int{"a": 1, "b": 3}) || len(a) != 16 {
		t.Errorf("Hash not stable/sensitive: %s", a)
	}
}

func TestState(t *testing.T) {
	s, _ := Open(t.TempDir())
	commit := func(key, hash string) {
		st := begin(t, s, key, hash)
		if err := st.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	commit("done", "h")
	commit("stale", "old")
	begin(t, s, "failed", "h").Fail(errors.New("loss became NaN"))
	begin(t, s, "partial", "h").Release()
	os.MkdirAll(s.Dir("invalid"), 0o755)
	tests := []struct {
		key    string
		want   State
		reason string
	}{
		{"done", StateDone, ""},
		{"stale", StateStale, "finished with config_hash old, the configuration expects h"},
		{"failed", StateFailed, "last run failed: loss became NaN"},
		{"partial", StatePartial, "not finished: still running, or interrupted"},
		{"invalid", StateInvalid, "manifest.json is missing"},
		{"missing", StateMissing, "not run yet"},
	}
	for _, tt := range tests {
		got, reason := s.State(tt.key, "h")
		if got != tt.want || !strings.Contains(reason, tt.reason) {
			t.Errorf("State(%s) = %s, %q; want %s, %q", tt.key, got, reason, tt.want, tt.reason)
		}
	}
}

// TestOutputsAndDamage: Commit records every output's size and SHA-256;
// Inspect finds a deleted, truncated or altered file (the last only with a
// full check), treats a manifest without outputs as done but unverified,
// and a rerun replaces a damaged step.
func TestOutputsAndDamage(t *testing.T) {
	s, _ := Open(t.TempDir())
	key := TeacherKey("tiny", 0)
	st := begin(t, s, key, "h")
	os.WriteFile(st.Path("logits_val.npy"), []byte("0123456789"), 0o644)
	os.MkdirAll(st.Path("figures"), 0o755)
	os.WriteFile(st.Path("figures/a.svg"), []byte("<svg/>"), 0o644)
	if err := st.Commit(); err != nil {
		t.Fatal(err)
	}
	m, _ := s.Manifest(key)
	want := []Output{
		{Name: "figures/a.svg", Size: 6, SHA256: "d4dc56669143034f31aa309635d4113d9ad76a02b1739da22c965ed2049be9e6"},
		{Name: "logits_val.npy", Size: 10, SHA256: "84d89877f0d4041efb6bf91a16f0248f2fd573e6af05c19f96bedb9f882f7882"},
	}
	if !slices.Equal(m.Outputs, want) { // hashes from sha256sum
		t.Fatalf("outputs %+v, want %+v", m.Outputs, want)
	}
	val := s.Path(key, "logits_val.npy")
	tests := []struct {
		name   string
		damage func()
		full   bool
		want   State
		reason string
	}{
		{"intact", func() {}, true, StateDone, ""},
		{"byte changed, size check", func() { os.WriteFile(val, []byte("0123456780"), 0o644) }, false, StateDone, ""},
		{"byte changed, full check", func() {}, true, StateDamaged, "logits_val.npy: its SHA-256 differs from the manifest's"},
		{"truncated", func() { os.WriteFile(val, []byte("01234"), 0o644) }, false, StateDamaged, "logits_val.npy has 5 bytes, the manifest records 10"},
		{"deleted", func() { os.Remove(val) }, false, StateDamaged, "logits_val.npy is missing"},
		{"two deleted", func() { os.Remove(s.Path(key, "figures/a.svg")) }, false, StateDamaged, "figures/a.svg is missing (and 1 more damaged files)"},
	}
	for _, tt := range tests {
		tt.damage()
		in := s.Inspect(key, "h", tt.full)
		if in.State != tt.want || !strings.Contains(in.Reason, tt.reason) || in.Unverified {
			t.Errorf("%s: %+v, want %s %q", tt.name, in, tt.want, tt.reason)
		}
	}
	if s.Done(key, "h") {
		t.Error("Done(damaged) = true")
	}
	st = begin(t, s, key, "h") // a rerun replaces the damaged step
	os.WriteFile(st.Path("logits_val.npy"), []byte("fresh"), 0o644)
	if err := st.Commit(); err != nil {
		t.Fatal(err)
	}
	if in := s.Inspect(key, "h", true); in.State != StateDone {
		t.Errorf("after the rerun: %+v", in)
	}

	// A step finished before outputs were recorded: done, unverified, never damaged.
	m, _ = s.Manifest(key)
	m.Outputs = nil
	atomicfile.WriteJSON(s.Path(key, ManifestFile), m)
	os.Remove(s.Path(key, "logits_val.npy"))
	if in := s.Inspect(key, "h", true); in.State != StateDone || !in.Unverified {
		t.Errorf("manifest without outputs: %+v, want done and unverified", in)
	}
}

// TestConfigHistory: each configuration is kept once under its hash with
// the time and command of its first use; Configs lists them oldest first.
func TestConfigHistory(t *testing.T) {
	s, _ := Open(t.TempDir())
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p1, err := s.RecordConfig("aaaa", []byte("name: a\n"), t0, "kdcal run --config a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s.RecordConfig("bbbb", []byte("name: b\n"), t0.Add(time.Hour), "kdcal run --config b.yaml")
	if _, err := s.RecordConfig("aaaa", []byte("name: changed\n"), t0.Add(2*time.Hour), "again"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p1)
	if string(b) != "# kdcal configuration aaaa, first used 2026-01-02T03:04:05Z: kdcal run --config a.yaml\nname: a\n" {
		t.Errorf("configs/aaaa.yaml = %q (a recorded configuration must never be rewritten)", b)
	}
	got, err := s.Configs()
	if err != nil || len(got) != 2 || got[0].Hash != "aaaa" || got[1].Hash != "bbbb" || !got[0].FirstUsed.Equal(t0) ||
		got[1].Note != "kdcal run --config b.yaml" {
		t.Errorf("Configs() = %+v, %v", got, err)
	}
}
