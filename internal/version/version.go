// Package version reports what kdcal binary is running: its version, the git
// revision it was built from, the Go toolchain, the BLAS backend and the
// GEMM kernel.
package version

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// Set at link time by the Makefile:
//
//	-ldflags "-X github.com/kdcal/kdcal/internal/version.version=... -X ...revision=..."
var (
	version  = "0.1.0-dev"
	revision = ""
)

// Backend names the BLAS implementation gorgonia uses: "pure-go" (Go code
// only) unless a build with the openblas tag replaces it with "openblas".
var Backend = "pure-go"

// GEMM names the float32 matrix-multiply kernel behind that BLAS:
// "gonum" (gonum's Sgemm, gorgonia's default), "avx2-fma-6x16"
// (internal/gemm) or "openblas". internal/blasopt sets it with Backend.
var GEMM = "gonum"

// Unknown is the revision recorded when no source knows it.
const Unknown = "unknown"

// Info describes the running binary.
type Info struct {
	Version        string `json:"version"`
	Revision       string `json:"git_revision"`        // commit hash, or "unknown"
	RevisionSource string `json:"git_revision_source"` // where Revision came from, or why it is unknown
	GoVersion      string `json:"go_version"`
	Backend        string `json:"backend"`
	GEMM           string `json:"gemm"`
	OS             string `json:"os"`
	Arch           string `json:"arch"`
}

// Get returns the running binary's Info.
func Get() Info {
	rev, src := Revision()
	return Info{Version: version, Revision: rev, RevisionSource: src, GoVersion: runtime.Version(),
		Backend: Backend, GEMM: GEMM, OS: runtime.GOOS, Arch: runtime.GOARCH}
}

// Version returns kdcal's version string.
func Version() string { return version }

// BLAS returns the one-line description of the linear-algebra backend that
// kdcal prints at the start of the commands that train, e.g.
// "BLAS pure-go, GEMM avx2-fma-6x16" or "BLAS openblas (cgo), GEMM openblas".
func BLAS() string {
	b := Backend
	if b == "openblas" {
		b += " (cgo)"
	}
	return fmt.Sprintf("BLAS %s, GEMM %s", b, GEMM)
}

var revOnce struct {
	sync.Once
	rev, src string
}

// Revision returns the git revision of the running binary and its source,
// in order of trust: the Makefile's linker flag, the VCS stamp Go embeds
// (go build in a checkout without -buildvcs=false), or, asked once per
// process, `git rev-parse HEAD` in the kdcal checkout holding the binary
// or else the working directory (the checkout's HEAD at run time, which may
// be newer than the build). When none answers it returns "unknown" and
// the reason.
func Revision() (rev, source string) {
	revOnce.Do(func() {
		revOnce.rev, revOnce.src = resolveRevision(revision, buildInfoRevision, candidateDirs())
	})
	return revOnce.rev, revOnce.src
}

// resolveRevision is Revision with its inputs explicit (for tests).
func resolveRevision(linked string, stamp func() (string, bool), dirs []string) (rev, source string) {
	if linked != "" {
		return linked, "linker flag (make build)"
	}
	if r, modified := stamp(); r != "" {
		if modified {
			return r, "Go VCS stamp (working tree modified)"
		}
		return r, "Go VCS stamp"
	}
	var tried []string
	for _, d := range dirs {
		r, top, err := gitHead(d)
		if err == nil {
			return r, "git rev-parse HEAD at run time in " + top
		}
		tried = append(tried, fmt.Sprintf("%s: %v", d, err))
	}
	return Unknown, "built without the linker flag of make build and without a VCS stamp (-buildvcs=false), " +
		"and no kdcal git checkout found (" + strings.Join(tried, "; ") + ")"
}

// buildInfoRevision returns the vcs.revision and vcs.modified settings of
// the build, when Go embedded them.
func buildInfoRevision() (rev string, modified bool) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "", false
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	return rev, modified
}

// candidateDirs: the directory of the executable (go build ./cmd/kdcal in
// the checkout), then the working directory (go run, go test).
func candidateDirs() []string {
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		if p, err := filepath.EvalSymlinks(exe); err == nil {
			exe = p
		}
		dirs = append(dirs, filepath.Dir(exe))
	}
	if wd, err := os.Getwd(); err == nil {
		dirs = append(dirs, wd)
	}
	return dirs
}

const modulePath = "github.com/kdcal/kdcal"

// gitHead returns HEAD and the top directory of the git work tree holding
// dir, if that tree is a kdcal checkout (its go.mod declares modulePath).
// git gets two seconds.
func gitHead(dir string) (rev, top string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "HEAD", "--show-toplevel").Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return "", "", errors.New("not in a git work tree")
	}
	if err != nil {
		return "", "", err
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return "", "", fmt.Errorf("unexpected git output %q", out)
	}
	mod, err := os.ReadFile(filepath.Join(f[1], "go.mod"))
	if err != nil || !declaresModule(mod) {
		return "", "", fmt.Errorf("%s is not a kdcal checkout", f[1])
	}
	return f[0], f[1], nil
}

// declaresModule reports whether go.mod text declares modulePath.
func declaresModule(mod []byte) bool {
	for line := range bytes.Lines(mod) {
		if f := strings.Fields(string(line)); len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == modulePath {
			return true
		}
	}
	return false
}
