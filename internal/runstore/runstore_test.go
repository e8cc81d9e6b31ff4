package runstore

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gofrs/flock"

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
