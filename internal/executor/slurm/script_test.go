package slurm

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kdcal/kdcal/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// nasty holds arguments that break naive quoting.
var nasty = []string{
	"", "plain", "two words", "it's", `"double"`, `back\slash`, "$HOME", "$(touch pwned)",
	"`touch pwned`", "a;b", "a|b", "a&b", "*", "?", "~", "!x", "tab\there", "new\nline",
	"'", "''", `'\''`, "--flag=value", "ünïcödé", "#comment", "{a,b}", "[x]", "%a", "a=b",
}

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"/usr/bin/kdcal", "/usr/bin/kdcal"},
		{"--config=a.yaml", "--config=a.yaml"},
		{"", "''"},
		{"two words", "'two words'"},
		{"it's", `'it'\''s'`},
		{"$HOME", "'$HOME'"},
		{"~", "'~'"},
	}
	for _, tt := range tests {
		if got := Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestQuoteRoundTrip checks with a real bash that every quoted word expands
// back to exactly the original bytes (and runs nothing).
func TestQuoteRoundTrip(t *testing.T) {
	bash := requireBash(t)
	dir := t.TempDir()
	script := "printf '%s\\0' " + QuoteArgs(nasty)
	cmd := exec.Command(bash, "-c", script)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bash: %v", err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if diff := cmp.Diff(nasty, got); diff != "" {
		t.Errorf("round trip through bash (-want +got):\n%s", diff)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("quoted words executed something: %v", entries)
	}
}

func TestQuotePanicsOnNUL(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Quote(\"a\\x00b\") did not panic")
		}
	}()
	Quote("a\x00b")
}

func goldenSpec() scriptSpec {
	return scriptSpec{
		JobName: "kdcal-teachers",
		Stage:   "teachers",
		Dir:     "/shared/exp/quick/slurm/20260101-120000-123",
		Slurm: config.Slurm{
			Partition: "cpu", Time: "02:00:00", Mem: "4G", CPUsPerTask: 2,
			Extra: []string{"--qos=short", "--comment=kd calibration"}, Poll: "2s",
		},
		Env: []string{"KDCAL_LOG=info", "GREETING=it's a test"},
		Tasks: []Task{
			{Key: "teacher/small/seed0", Args: []string{"/opt/kdcal/bin/kdcal", "step", "--config", "/shared/exp/quick/config.yaml", "teacher/small/seed0"}},
			{Key: "teacher/large/seed0", Args: []string{"/opt/kdcal/bin/kdcal", "step", "--note", "it's $HOME", "teacher/large/seed0"}},
		},
	}
}

func TestScriptGolden(t *testing.T) {
	got := goldenSpec().script()
	path := filepath.Join("testdata", "teachers.sh.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("script differs from %s (-want +got); rerun with -update if intended:\n%s", path, diff)
	}
}

// TestScriptDefaults checks that options left empty are left to the cluster.
func TestScriptDefaults(t *testing.T) {
	sp := goldenSpec()
	sp.Slurm = config.Slurm{}
	sp.Env = nil
	got := sp.script()
	for _, absent := range []string{"--partition", "--time", "--mem", "--cpus-per-task", "--qos"} {
		if strings.Contains(got, absent) {
			t.Errorf("script with empty options contains %s:\n%s", absent, got)
		}
	}
	for _, present := range []string{"#SBATCH --array=0-1\n", "OPENBLAS_NUM_THREADS=1 ", "#SBATCH --kill-on-invalid-dep=yes\n"} {
		if !strings.Contains(got, present) {
			t.Errorf("script lacks %q:\n%s", present, got)
		}
	}
}

func TestSbatchArgs(t *testing.T) {
	sp := goldenSpec()
	want := []string{
		"--parsable", "--output=/shared/exp/quick/slurm/20260101-120000-123/logs/teachers_%a.log",
		"--dependency=afterok:41", "--qos=short", "--comment=kd calibration",
		"/shared/exp/quick/slurm/20260101-120000-123/scripts/teachers.sh",
	}
	if diff := cmp.Diff(want, sp.sbatchArgs("41")); diff != "" {
		t.Errorf("sbatchArgs (-want +got):\n%s", diff)
	}
	if got := sp.sbatchArgs(""); slicesContainPrefix(got, "--dependency") {
		t.Errorf("sbatchArgs(\"\") has a dependency: %q", got)
	}
}

func slicesContainPrefix(s []string, prefix string) bool {
	for _, x := range s {
		if strings.HasPrefix(x, prefix) {
			return true
		}
	}
	return false
}

// TestScriptRuns executes a generated script with bash as Slurm would (with
// SLURM_ARRAY_TASK_ID set) and checks that the task receives exactly its
// arguments and environment, and that the status files are written.
func TestScriptRuns(t *testing.T) {
	bash := requireBash(t)
	dir := t.TempDir()
	for _, d := range []string{"scripts", "logs", "status"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	argsFile := filepath.Join(dir, "args")
	// The task prints its arguments NUL-separated, plus two variables the script sets.
	printer := `printf '%s\0' "$@" >"$0"; printf '%s|%s' "$OPENBLAS_NUM_THREADS" "$GREETING" >"$0.env"`
	sp := scriptSpec{
		JobName: "kdcal-test", Stage: "s", Dir: dir,
		// a newline in an option must not escape the header comment
		Slurm: config.Slurm{CPUsPerTask: 3, Extra: []string{"--comment=x\ntouch pwned"}},
		Env:   []string{"GREETING=it's $HOME"},
		Tasks: []Task{
			{Key: "ok", Args: append([]string{"/bin/sh", "-c", printer, argsFile}, nasty...)},
			{Key: "fails", Args: []string{"/bin/sh", "-c", "echo boom >&2; exit 3"}},
		},
	}
	path := filepath.Join(dir, "scripts", "s.sh")
	if err := os.WriteFile(path, []byte(sp.script()), 0o755); err != nil {
		t.Fatal(err)
	}
	runTask := func(i string) (string, error) {
		cmd := exec.Command(bash, path)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "SLURM_ARRAY_TASK_ID="+i, "SLURM_ARRAY_JOB_ID=7")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}

	if out, err := runTask("0"); err != nil {
		t.Fatalf("task 0: %v\n%s", err, out)
	}
	b, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	if diff := cmp.Diff(nasty, got); diff != "" {
		t.Errorf("task arguments (-want +got):\n%s", diff)
	}
	if env, _ := os.ReadFile(argsFile + ".env"); string(env) != "3|it's $HOME" {
		t.Errorf("task environment = %q, want %q", env, "3|it's $HOME")
	}
	if rc, ok := readRC(sp.statusBase(0) + ".rc"); !ok || rc != 0 {
		t.Errorf("status of task 0 = %d, %v; want 0, true", rc, ok)
	}

	out, err := runTask("1")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("task 1: err = %v, want exit status 3\n%s", err, out)
	}
	if !strings.Contains(out, "boom") || !strings.Contains(out, "exited with status 3") {
		t.Errorf("task 1 output lacks the command's stderr or the exit line:\n%s", out)
	}
	if rc, ok := readRC(sp.statusBase(1) + ".rc"); !ok || rc != 3 {
		t.Errorf("status of task 1 = %d, %v; want 3, true", rc, ok)
	}
	for i := range 2 {
		if _, err := os.Stat(sp.statusBase(i) + ".started"); err != nil {
			t.Errorf("task %d: %v", i, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Error("a newline in run.slurm.extra escaped the script's header comment")
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "status", "*.tmp"))
	if len(leftovers) > 0 {
		t.Errorf("temporary status files left behind: %v", leftovers)
	}

	if out, err := runTask("2"); err == nil || !strings.Contains(out, "no task 2") {
		t.Errorf("task 2 (out of range): err = %v, output %q; want an error naming the index", err, out)
	}
}

func requireBash(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not on PATH: the task scripts are bash scripts")
	}
	return p
}
