package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// completionStudy is a configuration whose values differ from the
// defaults, so that a completion from it is told apart from one from the
// defaults.
const completionStudy = `name: comp
seeds: [7, 8]
teacher:
  sizes: [tiny, large]
kd:
  temperature: [2, 8]
  arms: [raw, scratch]
`

// complete runs `kdcal __complete args…` in dir and returns the values
// offered (descriptions cut off), the directive line and stderr.
func complete(t *testing.T, dir string, env []string, args ...string) ([]string, string, string) {
	t.Helper()
	code, out, stderr := run(t, dir, env, append([]string{"__complete"}, args...)...)
	if code != 0 {
		t.Fatalf("__complete %q: exit %d: %s", args, code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	directive := lines[len(lines)-1]
	var vals []string
	for _, l := range lines[:len(lines)-1] {
		v, _, _ := strings.Cut(l, "\t")
		vals = append(vals, v)
	}
	return vals, directive, stderr
}

// TestCompleteValues pins what each flag's value completion offers, from
// the command line's configuration (--config, KDCAL_CONFIG, KDCAL_*,
// --set) or the defaults.
func TestCompleteValues(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "study.yaml"), []byte(completionStudy), 0o644)
	os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte("teacher:\n  sizez: [x]\n"), 0o644)
	tests := []struct {
		name string
		env  []string
		args []string
		want []string // exactly these values, in this order
	}{
		{"arm default", nil, []string{"distill", "--arm", ""}, []string{"all", "raw", "calibrated", "scratch"}},
		{"arm from config", nil, []string{"--config", "study.yaml", "distill", "--arm", ""}, []string{"all", "raw", "scratch"}},
		{"arm list", nil, []string{"distill", "--arm", "raw,"}, []string{"raw,calibrated", "raw,scratch"}},
		{"arm list prefix", nil, []string{"distill", "--arm", "scratch,c"}, []string{"scratch,calibrated"}},
		{"arm after all", nil, []string{"distill", "--arm", "all,"}, nil},
		{"setting from config", nil, []string{"-c", "study.yaml", "distill", "--setting", ""},
			[]string{"all", "tau2-kdw0.9-ep20", "tau8-kdw0.9-ep20"}},
		{"setting from KDCAL_CONFIG", []string{"KDCAL_CONFIG=study.yaml"}, []string{"distill", "--setting", "tau8"},
			[]string{"tau8-kdw0.9-ep20"}},
		{"setting from KDCAL_ env", []string{"KDCAL_KD_TEMPERATURE=[3]"}, []string{"distill", "--setting", ""},
			[]string{"all", "tau3-kdw0.9-ep20"}},
		{"setting from --set", nil, []string{"--set", "kd.temperature=[5]", "distill", "--setting", ""},
			[]string{"all", "tau5-kdw0.9-ep20"}},
		{"broken config: defaults", nil, []string{"--config", "broken.yaml", "distill", "--setting", ""},
			[]string{"all", "tau4-kdw0.9-ep20"}}, // default kd.temperature: [4]
		{"teacher distill", nil, []string{"--config", "study.yaml", "distill", "--teacher", ""}, []string{"all", "tiny", "large"}},
		{"teacher calibrate: defined sizes", nil, []string{"--config", "study.yaml", "calibrate", "--teacher", "large,"},
			[]string{"large,medium", "large,small", "large,tiny", "large,xlarge"}},
		{"sizes", nil, []string{"train-teachers", "--sizes", "s"}, []string{"small"}},
		{"seeds", nil, []string{"--config", "study.yaml", "train-teachers", "--seeds", ""}, []string{"7", "8"}},
		{"method", nil, []string{"calibrate", "--method", "temp,"},
			[]string{"temp,none", "temp,vector", "temp,matrix", "temp,hist", "temp,isotonic"}},
		{"stage", nil, []string{"run", "--stage", ""}, []string{"teachers", "calibration", "students", "report"}},
		{"stage list", nil, []string{"run", "--stage", "teachers,st"}, []string{"teachers,students"}},
		{"executor run", nil, []string{"run", "--executor", ""}, []string{"local", "slurm"}},
		{"executor distill", nil, []string{"distill", "--executor", "s"}, []string{"slurm"}},
		{"executor train-teachers", nil, []string{"train-teachers", "--executor", ""}, []string{"local", "slurm"}},
		{"log level", nil, []string{"run", "--log-level", "w"}, []string{"warn"}},
		{"dataset", nil, []string{"data", "fetch", "--dataset", "f"}, []string{"fashion-mnist"}},
		{"step key", nil, []string{"--config", "study.yaml", "step", "teachers/large/"},
			[]string{"teachers/large/seed-7", "teachers/large/seed-8"}},
		{"step second arg", nil, []string{"step", "report", ""}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, directive, stderr := complete(t, dir, tt.env, tt.args...)
			if !slices.Equal(got, tt.want) {
				t.Errorf("__complete %q offers %q; want %q", tt.args, got, tt.want)
			}
			if directive != ":4" { // ShellCompDirectiveNoFileComp
				t.Errorf("directive %s; want :4 (no file completion)", directive)
			}
			if strings.Contains(stderr, "kdcal:") {
				t.Errorf("completion printed an error: %s", stderr)
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("completion wrote into %s: %v", dir, entries)
	}
}

// TestCompleteFilesAndDirs: --config completes YAML files, --experiment
// directories.
func TestCompleteFilesAndDirs(t *testing.T) {
	for _, tt := range []struct{ flag, directive string }{{"--config", ":8"}, {"--experiment", ":16"}} {
		code, out, _ := run(t, "", nil, "__complete", tt.flag, "")
		if code != 0 || !strings.HasSuffix(strings.TrimSpace(out), tt.directive) {
			t.Errorf("__complete %s: exit %d, %q; want directive %s", tt.flag, code, out, tt.directive)
		}
	}
}

// shellCase is one command line typed into a real shell, followed by TAB.
type shellCase struct {
	line string
	want []string // each must be offered
	not  []string // none may be
}

var shellCases = []shellCase{
	{line: "kdcal distill --arm ", want: []string{"raw", "calibrated", "scratch"}},
	{line: "kdcal --config study.yaml distill --setting ", want: []string{"tau2-kdw0.9-ep20", "tau8-kdw0.9-ep20"}, not: []string{"tau4-kdw0.9-ep20"}},
	{line: "kdcal run --stage ", want: []string{"teachers", "calibration", "students", "report"}},
	{line: "kdcal calibrate --method ", want: []string{"temp", "isotonic", "matrix"}},
	{line: "kdcal train-teachers --executor ", want: []string{"local", "slurm"}},
	{line: "kdcal distill --arm raw,", want: []string{"raw,calibrated", "raw,scratch"}, not: []string{"raw,raw"}},
}

// TestCompletionShells runs each real shell (when installed) on the script
// of `kdcal completion <shell>` with this test binary as kdcal on PATH,
// types each shellCases line and checks what is offered.
func TestCompletionShells(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	if err := os.Symlink(exe, filepath.Join(bin, "kdcal")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "study.yaml"), []byte(completionStudy), 0o644)
	env := append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, sh := range []struct {
		name  string
		need  string // a file the shell's completion needs
		drive func(t *testing.T, dir, script string, lines []string, env []string) []string
	}{
		{"bash", "/usr/share/bash-completion/bash_completion", driveBash},
		{"zsh", "", driveZsh},
		{"fish", "", driveFish},
	} {
		t.Run(sh.name, func(t *testing.T) {
			if _, err := exec.LookPath(sh.name); err != nil {
				t.Skipf("%s is not installed (scripts/setup.sh installs it)", sh.name)
			}
			if _, err := os.Stat(sh.need); sh.need != "" && err != nil {
				t.Skipf("%s is missing: install bash-completion (scripts/setup.sh does)", sh.need)
			}
			code, script, stderr := run(t, "", nil, "completion", sh.name)
			if code != 0 {
				t.Fatalf("kdcal completion %s: exit %d: %s", sh.name, code, stderr)
			}
			file := filepath.Join(dir, "kdcal."+sh.name)
			if sh.name == "zsh" {
				os.Mkdir(filepath.Join(dir, "zfunc"), 0o755)
				file = filepath.Join(dir, "zfunc", "_kdcal")
			}
			os.WriteFile(file, []byte(script), 0o644)
			var lines []string
			for _, c := range shellCases {
				lines = append(lines, c.line)
			}
			outs := sh.drive(t, dir, file, lines, env)
			for i, c := range shellCases {
				got := outs[i]
				for _, w := range c.want {
					if !offered(got, w) {
						t.Errorf("%s: %q<TAB> does not offer %q; the shell printed:\n%s", sh.name, c.line, w, got)
					}
				}
				for _, n := range c.not {
					if offered(got, n) {
						t.Errorf("%s: %q<TAB> offers %q; the shell printed:\n%s", sh.name, c.line, n, got)
					}
				}
			}
		})
	}
}

// offered reports value as a whole word of the shell's output.
func offered(out, value string) bool {
	return regexp.MustCompile(`(^|[\s(])` + regexp.QuoteMeta(value) + `($|[\s)])`).MatchString(out)
}

// shellRun runs a shell command in dir and returns its output.
func shellRun(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// bashDriver sets up the words of a command line as bash does before it
// calls a completion function, calls kdcal's and prints COMPREPLY.
const bashDriver = `source /usr/share/bash-completion/bash_completion
source "$1"
COMP_LINE=$2
COMP_POINT=${#COMP_LINE}
read -ra COMP_WORDS <<< "$COMP_LINE"
[[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
__start_kdcal kdcal "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
`

func driveBash(t *testing.T, dir, script string, lines []string, env []string) []string {
	var outs []string
	for _, line := range lines {
		outs = append(outs, shellRun(t, dir, env, "bash", "--norc", "--noprofile", "-c", bashDriver, "bash", script, line))
	}
	return outs
}

func driveFish(t *testing.T, dir, script string, lines []string, env []string) []string {
	var outs []string
	for _, line := range lines {
		outs = append(outs, shellRun(t, dir, append(env, "KDCAL_LINE="+line), "fish", "--no-config", "-c",
			`source $argv[1]; complete -C "$KDCAL_LINE"`, script))
	}
	return outs
}

// zshDriver runs an interactive zsh with compinit in a pseudo-terminal
// (zsh/zpty), types each line and TAB, and prints what the terminal showed
// until the next command: the completion listing, or the line with the one
// match inserted (terminal escapes blanked).
const zshDriver = `setopt extendedglob
zmodload zsh/zpty || exit 3
zpty z zsh -f -i
zpty -w z "PROMPT=; fpath=($1 \$fpath); autoload -U compinit; compinit -u -D; bindkey '^I' complete-word"
# Mark each start of the line editor: keys typed before it would reach the
# terminal's line discipline, where TAB is a plain character.
zpty -w z 'zle-line-init() { print -rn -- "@@ZLE""@@" }; zle -N zle-line-init'
for line in "${@[2,-1]}"; do
  zpty -r z junk '*@@ZLE@@*'
  zpty -n -w z "$line"$'\t'
  # After the completion (zsh reads input in order): clear the line, print a mark.
  zpty -w z $'\C-u'"print -r -- @@DONE\"\"@@"
  zpty -r z out '*@@DONE@@*'
  print -r -- "${out//$'\e'\[[0-9;?]#[A-Za-z]/ }"
  print -r -- @@NEXT@@
done
zpty -d z
`

func driveZsh(t *testing.T, dir, script string, lines []string, env []string) []string {
	out := shellRun(t, dir, env, "zsh", append([]string{"-f", "-c", zshDriver, "zsh", filepath.Dir(script)}, lines...)...)
	outs := strings.Split(out, "@@NEXT@@\n")
	if len(outs) != len(lines)+1 {
		t.Fatalf("zsh printed %d completions for %d lines:\n%s", len(outs)-1, len(lines), out)
	}
	return outs[:len(lines)]
}
