package version

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func noStamp() (string, bool) { return "", false }

// TestRevisionSources pins the order of trust of the revision sources and
// the "unknown" record with its reason.
func TestRevisionSources(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	wd, _ := os.Getwd()
	head, err := exec.Command("git", "-C", wd, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not run from a git checkout: %v", err)
	}
	notGit := t.TempDir()
	otherRepo := t.TempDir() // a git checkout of another module
	os.WriteFile(filepath.Join(otherRepo, "go.mod"), []byte("module example.com/other\n"), 0o644)
	for _, args := range [][]string{{"init", "-q"}, {"-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x"}} {
		if out, err := exec.Command("git", append([]string{"-C", otherRepo}, args...)...).CombinedOutput(); err != nil {
			t.Skipf("git %v: %v %s", args, err, out)
		}
	}
	cases := []struct {
		name       string
		linked     string
		stamp      func() (string, bool)
		dirs       []string
		rev, inSrc string
	}{
		{"linker flag first", "abc123", func() (string, bool) { return "def", false }, []string{wd}, "abc123", "linker flag"},
		{"VCS stamp next", "", func() (string, bool) { return "def", true }, []string{wd}, "def", "modified"},
		{"git at run time", "", noStamp, []string{notGit, wd}, strings.TrimSpace(string(head)), "git rev-parse HEAD at run time"},
		{"unknown with reason", "", noStamp, []string{notGit, otherRepo}, Unknown, "not a kdcal checkout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rev, src := resolveRevision(tc.linked, tc.stamp, tc.dirs)
			if rev != tc.rev || !strings.Contains(src, tc.inSrc) {
				t.Fatalf("got %q (%s), want %q (…%s…)", rev, src, tc.rev, tc.inSrc)
			}
		})
	}
}

// Under go test (no linker flag, no VCS stamp in test binaries) in this
// checkout, Get asks git: the revision is never empty.
func TestGetHasRevision(t *testing.T) {
	v := Get()
	if v.Revision == "" || v.RevisionSource == "" {
		t.Fatalf("Get() = %+v: empty revision or source", v)
	}
}

func TestBLASLine(t *testing.T) {
	b0, g0 := Backend, GEMM
	defer func() { Backend, GEMM = b0, g0 }()
	for _, tc := range []struct{ backend, gemm, want string }{
		{"pure-go", "avx2-fma-6x16", "BLAS pure-go, GEMM avx2-fma-6x16"},
		{"openblas", "openblas", "BLAS openblas (cgo), GEMM openblas"},
	} {
		Backend, GEMM = tc.backend, tc.gemm
		if got := BLAS(); got != tc.want {
			t.Errorf("BLAS() = %q, want %q", got, tc.want)
		}
	}
}
