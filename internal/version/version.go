// Package version reports what kdcal binary is running: its version, the git
// revision it was built from, the Go toolchain and the BLAS backend.
package version

import (
	"runtime"
	"runtime/debug"
)

// Set at link time by the Makefile:
//
//	-ldflags "-X github.com/kdcal/kdcal/internal/version.version=... -X ...revision=..."
var (
	version  = "0.1.0-dev"
	revision = ""
)

// Backend names the BLAS implementation gorgonia uses: "pure-go" (gonum's Go
// BLAS) unless a build with the openblas tag replaces it.
var Backend = "pure-go"

// Info describes the running binary.
type Info struct {
	Version   string `json:"version"`
	Revision  string `json:"git_revision,omitempty"`
	GoVersion string `json:"go_version"`
	Backend   string `json:"backend"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

// Get returns the running binary's Info. The revision falls back to the VCS
// stamp Go embeds when building from a git checkout with -buildvcs.
func Get() Info {
	rev := revision
	if rev == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					rev = s.Value
				}
			}
		}
	}
	return Info{Version: version, Revision: rev, GoVersion: runtime.Version(), Backend: Backend, OS: runtime.GOOS, Arch: runtime.GOARCH}
}
