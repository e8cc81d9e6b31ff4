package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/kdcal/kdcal/"

// training is the training stack: gorgonia, and the packages that train,
// build models, load datasets or run fused kernels. internal/gemm (the
// SGEMM kernel and, in internal/gemm/dgemm, the calibrators' DGEMM) is not
// on it: it is plain numeric code, and its own rule below keeps it free of
// gorgonia, so calibrate can use dgemm and still never reach gorgonia.
var training = []string{"gorgonia.org/", module + "internal/train", module + "internal/model", module + "internal/distill",
	module + "internal/data", module + "internal/fused", module + "internal/optkernel", module + "internal/stage"}

// rules: no package matched by a pattern may depend, by any path of
// imports, on a package with one of the forbidden prefixes. Patterns are
// go list patterns; a row whose pattern matches nothing fails (a package
// was renamed, and its rule would silently check nothing).
var rules = []struct {
	pkgs   string
	forbid []string
	why    string
}{
	{"./internal/cli/...", training, "the commands reach training through the pipeline that main wires in (stage.All)"},
	{"./internal/pipeline/...", append(training, "github.com/spf13/cobra"), "the engine the commands and the stages share"},
	{"./internal/executor/...", append(training, module+"internal/cli", "github.com/spf13/cobra"), "executors run steps, whatever trains them"},
	{"./internal/plan/...", training, "the plan is configuration and hashes; it learns a dataset's shape from config"},
	{"./internal/calibrate/...", training, "calibrators work on logits only"},
	{"./internal/metrics/...", []string{"gorgonia.org/"}, "metrics are plain numeric code"},
	{"./internal/report/...", []string{"gorgonia.org/"}, "the report works on stored artifacts only"},
	{"./internal/stats/...", []string{"gorgonia.org/"}, "statistics are plain numeric code"},
	{"./internal/gemm/...", append(training, module+"internal/blasopt"), "the GEMM kernels are plain numeric code (calibrate uses gemm/dgemm); blasopt plugs them into gorgonia"},
}

// direct: only these packages may import the given package directly.
var direct = []struct {
	imp     string
	allowed []string
}{
	{"github.com/spf13/cobra", []string{module + "internal/cli"}},
	{"github.com/spf13/viper", []string{module + "internal/config"}},
}

// goList runs `go list` in the module root with args.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	cmd := exec.Command(gobin, append([]string{"list"}, args...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list %v: %v\n%s", args, err, msg)
	}
	return strings.Fields(strings.TrimSpace(string(out)))
}

// tagSets are the build variants: the pure-Go build and the OpenBLAS one.
var tagSets = []string{"", "openblas"}

// forbidden reports whether dep is bad: below a prefix that ends in "/"
// (a module or tree), else that package or one below it.
func forbidden(dep, bad string) bool {
	if strings.HasSuffix(bad, "/") {
		return strings.HasPrefix(dep, bad)
	}
	return dep == bad || strings.HasPrefix(dep, bad+"/")
}

// TestTransitiveImports checks each rule on every package it names, in
// both build variants, over the package's full dependency set (go list's
// .Deps: every package reachable by imports).
func TestTransitiveImports(t *testing.T) {
	for _, tags := range tagSets {
		for _, r := range rules {
			t.Run(strings.TrimPrefix(r.pkgs, "./")+"/tags="+tags, func(t *testing.T) {
				lines := goList(t, "-tags", tags, "-f", "{{.ImportPath}}|{{join .Deps \"|\"}}", r.pkgs)
				if len(lines) == 0 {
					t.Fatalf("%s matches no package", r.pkgs)
				}
				for _, line := range lines {
					f := strings.Split(line, "|")
					for _, dep := range f[1:] {
						for _, bad := range r.forbid {
							if forbidden(dep, bad) {
								t.Errorf("%s depends on %s (%s)", f[0], dep, r.why)
							}
						}
					}
				}
			})
		}
	}
}

func TestDirectImports(t *testing.T) {
	for _, tags := range tagSets {
		lines := goList(t, "-tags", tags, "-f", "{{.ImportPath}}|{{join .Imports \"|\"}}", "./...")
		for _, line := range lines {
			f := strings.Split(line, "|")
			for _, imp := range f[1:] {
				for _, d := range direct {
					if imp != d.imp {
						continue
					}
					ok := false
					for _, a := range d.allowed {
						ok = ok || f[0] == a
					}
					if !ok {
						t.Errorf("tags=%q: %s imports %s (only %v may)", tags, f[0], imp, d.allowed)
					}
				}
			}
		}
	}
}
