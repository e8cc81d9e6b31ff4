package slurm

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/kdcal/kdcal/internal/config"
)

// Quote returns s as one bash word that expands to exactly s: unchanged when
// it consists only of characters the shell never interprets
// ([A-Za-z0-9_@%+=:,./-], the set of Python's shlex.quote), otherwise inside
// single quotes, where each single quote closes the quoting, is escaped with a
// backslash and reopens it:
//
//	a b   →  'a b'
//	it's  →  'it'\''s'
//
// Bash strings cannot hold NUL: Quote panics on it (Submit rejects such
// arguments first).
func Quote(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		panic("slurm: Quote: string contains NUL")
	}
	if s != "" && !unsafeShell.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var unsafeShell = regexp.MustCompile(`[^A-Za-z0-9_@%+=:,./-]`)

// QuoteArgs quotes each argument with Quote and joins them with spaces.
func QuoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

// scriptSpec is everything a stage's array script depends on.
type scriptSpec struct {
	JobName string       // full Slurm job name, e.g. kdcal-teachers
	Stage   string       // stage name, used in log and status file names
	Dir     string       // submission directory (absolute)
	Slurm   config.Slurm // partition, time, mem, cpus_per_task
	Env     []string     // KEY=VALUE exported after the thread variables
	Tasks   []Task
}

func (sp scriptSpec) logPattern() string {
	return filepath.Join(sp.Dir, "logs", sp.Stage+"_%a.log")
}

func (sp scriptSpec) logPath(i int) string {
	return filepath.Join(sp.Dir, "logs", fmt.Sprintf("%s_%d.log", sp.Stage, i))
}

func (sp scriptSpec) statusBase(i int) string {
	return filepath.Join(sp.Dir, "status", fmt.Sprintf("%s_%d", sp.Stage, i))
}

func (sp scriptSpec) scriptPath() string {
	return filepath.Join(sp.Dir, "scripts", sp.Stage+".sh")
}

// directives returns the #SBATCH options of the script. Their values were
// checked by validateSlurm to be single words, so sbatch's own parsing of
// #SBATCH lines cannot split them. Paths and the free-form extra options go on
// the sbatch command line instead (see sbatchArgs), where no quoting is needed.
func (sp scriptSpec) directives() []string {
	d := []string{
		"--job-name=" + sp.JobName,
		fmt.Sprintf("--array=0-%d", len(sp.Tasks)-1),
	}
	s := sp.Slurm
	if s.Partition != "" {
		d = append(d, "--partition="+s.Partition)
	}
	if s.Time != "" {
		d = append(d, "--time="+s.Time)
	}
	if s.Mem != "" {
		d = append(d, "--mem="+s.Mem)
	}
	if s.CPUsPerTask > 0 {
		d = append(d, "--cpus-per-task="+strconv.Itoa(s.CPUsPerTask))
	}
	if killInvalidDep {
		// Cancel this array as soon as its dependency can never be satisfied
		// (a task of the previous stage failed) instead of leaving it pending.
		d = append(d, "--kill-on-invalid-dep=yes")
	}
	return d
}

// killInvalidDep is false only in the test of Wait's own handling of
// DependencyNeverSatisfied. (A --kill-on-invalid-dep=no in run.slurm.extra
// does not override the directive: Slurm 22.05 then sets both flags and kills.)
var killInvalidDep = true

// sbatchArgs returns the sbatch arguments of a stage: --parsable, the output
// pattern, the dependency (when dep is not empty), the configured extra
// options, and the script path last.
func (sp scriptSpec) sbatchArgs(dep string) []string {
	args := []string{"--parsable", "--output=" + sp.logPattern()}
	if dep != "" {
		args = append(args, "--dependency=afterok:"+dep)
	}
	args = append(args, sp.Slurm.Extra...)
	return append(args, sp.scriptPath())
}

// threads is the value of OPENBLAS_NUM_THREADS and OMP_NUM_THREADS in a task.
func (sp scriptSpec) threads() int {
	return max(sp.Slurm.CPUsPerTask, 1)
}

// commentSafe keeps s on one comment line: a newline inside a quoted
// argument would otherwise end the comment and turn the rest into code.
func commentSafe(s string) string {
	return strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(s)
}

// script renders the bash array job script of a stage.
func (sp scriptSpec) script() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("#!/bin/bash")
	w("# kdcal: stage %s, %d task(s), one per array index (keys and commands in ../tasks.json).", sp.Stage, len(sp.Tasks))
	w("# Submitted as (plus --dependency=afterok:<the job ids of the previous stage's arrays>):")
	w("#   sbatch %s", commentSafe(QuoteArgs(sp.sbatchArgs(""))))
	w("# Rerun task i alone: the same command with --array=i before the script path.")
	for _, d := range sp.directives() {
		w("#SBATCH %s", d)
	}
	w("")
	w("set -u")
	w("export OPENBLAS_NUM_THREADS=%d OMP_NUM_THREADS=%d", sp.threads(), sp.threads())
	for _, kv := range sp.Env {
		k, v, _ := strings.Cut(kv, "=")
		w("export %s=%s", k, Quote(v))
	}
	w("i=${SLURM_ARRAY_TASK_ID:?this script runs as a Slurm array task (sbatch --array)}")
	w("status=%s_$i", Quote(filepath.Join(sp.Dir, "status", sp.Stage)))
	w("case $i in")
	for i, t := range sp.Tasks {
		w("%d) key=%s", i, Quote(t.Key))
		w("   cmd=(%s) ;;", QuoteArgs(t.Args))
	}
	w(`*) echo "kdcal: no task $i in stage %s" >&2; exit 2 ;;`, sp.Stage)
	w("esac")
	w(`: >"$status.started"`)
	w(`echo "kdcal: task $i ($key) of job ${SLURM_ARRAY_JOB_ID:-?}_$i on $(hostname) at $(date -Is)"`)
	w(`"${cmd[@]}"`)
	w("rc=$?")
	w(`echo "kdcal: task $i ($key) exited with status $rc at $(date -Is)"`)
	w(`printf '%%d\n' "$rc" >"$status.rc.tmp" && mv -f "$status.rc.tmp" "$status.rc"`)
	w(`exit "$rc"`)
	return b.String()
}
