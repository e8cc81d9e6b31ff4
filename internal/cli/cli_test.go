package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kdcal/kdcal/internal/model"
	"github.com/kdcal/kdcal/internal/npyfile"
	"github.com/kdcal/kdcal/internal/stage"
	"github.com/kdcal/kdcal/internal/version"
)

// run executes kdcal in dir with env and returns exit code, stdout, stderr.
func run(t *testing.T, dir string, env []string, args ...string) (int, string, string) {
	t.Helper()
	if dir != "" {
		wd, _ := os.Getwd()
		if err := os.Chdir(dir); err != nil {
			t.Fatal(err)
		}
		defer os.Chdir(wd)
	}
	var out, errw bytes.Buffer
	code := Run(context.Background(), stage.All(), args, &out, &errw, env)
	return code, out.String(), errw.String()
}

// TestExitCodes pins the documented exit code of each error kind.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "typo.yaml"), []byte("teacher:\n  sizez: [small]\n"), 0o644)
	tests := []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"unknown flag", nil, []string{"train-teachers", "--sizse", "x"}, ExitUsage, "unknown flag: --sizse"},
		{"unknown command", nil, []string{"trian"}, ExitUsage, `unknown command "trian"`},
		{"bad log level", nil, []string{"--log-level", "loud", "version"}, ExitUsage, "--log-level"},
		{"bad --set", nil, []string{"config", "show", "--set", "novalue"}, ExitUsage, "use --set key=value"},
		{"config typo in file", nil, []string{"config", "show", "--config", "typo.yaml"}, ExitConfig,
			`typo.yaml:2: teacher.sizez: unknown key (did you mean "teacher.sizes"?)`},
		{"config typo in env", []string{"KDCAL_TEACHER_SIZEZ=x"}, []string{"config", "show"}, ExitConfig, "KDCAL_TEACHER_SIZES"},
		{"config out of range", nil, []string{"config", "show", "--set", "teacher.train.lr=0"}, ExitConfig, "teacher.train.lr: 0 must be > 0"},
		{"missing dataset", nil, []string{"data", "fetch", "--dataset", "cifar10", "--set", "data.dir=nodata"}, ExitData, "cifar10: cannot be fetched here"},
		{"bad dataset name", nil, []string{"data", "fetch", "--dataset", "imagenet"}, ExitUsage, `--dataset "imagenet"`},
		{"run --json without --dry-run", nil, []string{"run", "--json"}, ExitUsage, "--json and --rates-from go with --dry-run"},
		{"--rates-from a foreign dir", nil, []string{"run", "--dry-run", "--rates-from", "typo.yaml"}, ExitUsage, "--rates-from"},
		{"--list-sizes --json", nil, []string{"train-teachers", "--list-sizes", "--json"}, ExitUsage, "no --json form"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, dir, tt.env, tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.wantCode, tt.wantErr)
			}
		})
	}
}

func TestConfigShowResolves(t *testing.T) {
	code, out, stderr := run(t, "", []string{"KDCAL_DATA_DIR=/x"}, "config", "show", "--set", "seeds=[4,5]")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"dir: /x", "- 4\n    - 5", "family: cnn"} {
		if !strings.Contains(out, want) {
			t.Errorf("config show lacks %q:\n%s", want, out)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "", nil, "version", "--json")
	for _, key := range []string{`"backend"`, `"gemm"`, `"go_version"`, `"git_revision"`, `"git_revision_source"`} {
		if code != 0 || !strings.Contains(out, key) {
			t.Errorf("exit %d, no %s: %s", code, key, out)
		}
	}
	// kdcal version, --version and -v print the same text.
	_, want, _ := run(t, "", nil, "version")
	if !strings.HasPrefix(want, "kdcal ") || !strings.Contains(want, "GEMM ") || !strings.Contains(want, "\nrevision ") {
		t.Fatalf("kdcal version: %q", want)
	}
	for _, flag := range []string{"--version", "-v"} {
		if code, got, _ := run(t, "", nil, flag); code != 0 || got != want {
			t.Errorf("kdcal %s: exit %d, %q; want %q", flag, code, got, want)
		}
	}
}

// The commands that train or calibrate name the BLAS backend and GEMM
// kernel on stderr first; the others do not.
func TestAnnounceBLAS(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"train-teachers", "--list-sizes"}, true},
		{[]string{"run", "--dry-run", "--experiment", t.TempDir()}, true},
		{[]string{"config", "show"}, false},
	} {
		_, _, stderr := run(t, "", nil, tc.args...)
		if got := strings.HasPrefix(stderr, "kdcal: BLAS "); got != tc.want || tc.want && !strings.Contains(stderr, ", GEMM ") {
			t.Errorf("%v: stderr %q, want the BLAS line: %v", tc.args, stderr, tc.want)
		}
	}
	// gonum's slow GEMM comes with a hint.
	defer func(g string) { version.GEMM = g }(version.GEMM)
	version.GEMM = "gonum"
	_, _, stderr := run(t, "", nil, "train-teachers", "--list-sizes")
	if !strings.Contains(stderr, "GEMM gonum\n") || !strings.Contains(stderr, "slower") {
		t.Errorf("with gonum's GEMM, stderr %q has no hint", stderr)
	}
}

// TestExitCodeOfErrorKinds pins the exit code of error kinds that no command
// line above produces on demand, wrapped as the commands wrap them.
func TestExitCodeOfErrorKinds(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"broken model file", fmt.Errorf("resume: %w", &model.FileError{Path: "m.safetensors", Msg: "header length 2^40 is larger than the file"}), ExitData},
		{"bad npy", fmt.Errorf("x: %w", &npyfile.Error{Path: "a.npy", Msg: "truncated"}), ExitData},
		{"cancelled", fmt.Errorf("train: %w", context.Canceled), ExitInterrupted},
		{"other", errors.New("boom"), ExitFailure},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err, stage.Catalog{}.IsDataError); got != tt.want {
			t.Errorf("%s: exit %d, want %d", tt.name, got, tt.want)
		}
	}
}
