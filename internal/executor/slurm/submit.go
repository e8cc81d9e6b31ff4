package slurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/config"
)

// Task is one array task: it runs Args[0] with arguments Args[1:] on a
// compute node. Args[0] should be an absolute path valid there (e.g. the kdcal
// binary on a shared filesystem).
type Task struct {
	Key  string   // identifies the task in results, logs and tasks.json (e.g. a runstore step key)
	Args []string // command and arguments, passed to the task verbatim (shell-quoted in the script)
}

// Stage is a set of independent tasks submitted as one job array. Stages
// run in order: a stage starts only after every task of the previous
// non-empty stage exited 0.
type Stage struct {
	Name  string // unique; letters, digits, '.', '_' and '-' (it names files and the job)
	Tasks []Task // may be empty: the stage is then skipped
}

// Options configures a submission.
type Options struct {
	Slurm   config.Slurm // run.slurm: partition, time, mem, cpus_per_task, extra, poll
	Dir     string       // shared directory; each submission writes into a new subdirectory of it
	Env     []string     // KEY=VALUE pairs exported in every task (after the thread variables)
	JobName string       // job name prefix, default "kdcal": jobs are named <JobName>-<stage>
	// MaxArraySize is the cluster's MaxArraySize (array indices must be
	// below it); 0 asks `scontrol show config`, and uses Slurm's default
	// (1001) when that does not say. A stage with more tasks is submitted as
	// several arrays, <stage>.1, <stage>.2, ….
	MaxArraySize int
}

// DefaultMaxArraySize is Slurm's default MaxArraySize.
const DefaultMaxArraySize = 1001

// DefaultPoll is the squeue polling interval when Options.Slurm.Poll is empty.
const DefaultPoll = 2 * time.Second

// Timeouts of the Slurm client commands.
const (
	commandTimeout = 60 * time.Second
	// squeueGiveUp is how long squeue may fail in a row (slurmctld restarting,
	// network trouble) before Wait gives up.
	squeueGiveUp = 2 * time.Minute
)

// SubmittedStage is one job array: a stage, or a part of a stage with more
// tasks than the cluster's MaxArraySize.
type SubmittedStage struct {
	Name   string // the array's name: the stage's, or <stage>.<part> (from 1) when the stage is split
	Stage  string // the stage it belongs to
	JobID  string // array job id, as printed by sbatch --parsable
	Script string // path of the array job script
	Tasks  []Task
	spec   scriptSpec
	deps   []string // job ids it depends on (afterok): every array of the previous non-empty stage
}

// Submission is a plan submitted to Slurm. Wait collects its results; Cancel
// removes its jobs from the queue.
type Submission struct {
	Dir    string           // this submission's directory (under Options.Dir)
	Stages []SubmittedStage // the non-empty stages, in order

	bin      commands
	interval time.Duration // squeue polling interval

	mu        sync.Mutex
	cancelled bool            // Cancel was called
	neverDeps map[string]bool // job ids scancelled because their dependency can never be satisfied
}

// commands holds the resolved paths of the Slurm client commands.
type commands struct {
	sbatch, squeue, scancel, scontrol string
}

// ErrNoClient is wrapped by the error Submit returns when a Slurm client
// command is not on PATH.
var ErrNoClient = errors.New("slurm client not found")

func lookCommands() (commands, error) {
	var c commands
	for _, x := range []struct {
		name string
		dst  *string
	}{{"sbatch", &c.sbatch}, {"squeue", &c.squeue}, {"scancel", &c.scancel}, {"scontrol", &c.scontrol}} {
		p, err := exec.LookPath(x.name)
		if err != nil {
			return c, fmt.Errorf("%s not found on PATH: the slurm executor needs a Slurm client "+
				"(sbatch, squeue, scancel, scontrol; Debian/Ubuntu package slurm-client) on a machine "+
				"that can submit to the cluster, such as a login node; otherwise use --executor local: %w",
				x.name, ErrNoClient)
		}
		*x.dst = p
	}
	return c, nil
}

// Submit writes one array job script per non-empty stage into a new
// subdirectory of opts.Dir and submits the scripts with sbatch, each stage
// depending (afterok) on the previous one. A stage with more tasks than the
// cluster's MaxArraySize becomes several arrays, each of at most that many
// tasks, all depending on every array of the previous stage. If a later
// sbatch fails, the arrays already submitted are cancelled. A plan without
// tasks submits nothing and returns a Submission whose Wait returns at once.
func Submit(ctx context.Context, opts Options, stages []Stage) (*Submission, error) {
	if err := validate(opts, stages); err != nil {
		return nil, err
	}
	if opts.JobName == "" {
		opts.JobName = "kdcal"
	}
	poll := DefaultPoll
	if opts.Slurm.Poll != "" {
		poll, _ = time.ParseDuration(opts.Slurm.Poll) // checked by validate
	}
	s := &Submission{interval: poll, neverDeps: map[string]bool{}}
	if countTasks(stages) == 0 {
		return s, nil
	}
	bin, err := lookCommands()
	if err != nil {
		return nil, err
	}
	s.bin = bin
	if s.Dir, err = makeSubmissionDir(opts.Dir); err != nil {
		return nil, err
	}
	maxArray := opts.MaxArraySize
	if maxArray <= 0 {
		if maxArray, err = s.maxArraySize(ctx); err != nil {
			return nil, err
		}
	}
	var prev []string
	for _, st := range stages {
		if len(st.Tasks) == 0 {
			continue
		}
		var ids []string
		for _, part := range split(st, maxArray) {
			sub, err := s.submitStage(ctx, opts, part, st.Name, prev)
			if err != nil {
				if cerr := s.Cancel(); cerr != nil {
					err = errors.Join(err, cerr)
				}
				return nil, err
			}
			s.Stages = append(s.Stages, sub)
			ids = append(ids, sub.JobID)
			if err := s.writeManifest(); err != nil {
				return nil, errors.Join(err, s.Cancel())
			}
		}
		prev = ids
	}
	return s, nil
}

// split cuts a stage into arrays of at most maxArray tasks (array indices
// 0 … maxArray-1): the stage itself when it fits, else <name>.1, <name>.2, ….
func split(st Stage, maxArray int) []Stage {
	if len(st.Tasks) <= maxArray {
		return []Stage{st}
	}
	var parts []Stage
	for i := 0; i < len(st.Tasks); i += maxArray {
		parts = append(parts, Stage{Name: fmt.Sprintf("%s.%d", st.Name, len(parts)+1), Tasks: st.Tasks[i:min(i+maxArray, len(st.Tasks))]})
	}
	return parts
}

// maxArraySize reads the cluster's MaxArraySize from `scontrol show
// config`, or returns Slurm's default when scontrol does not say.
func (s *Submission) maxArraySize(ctx context.Context) (int, error) {
	out, err := run(ctx, s.bin.scontrol, "show", "config")
	if err != nil {
		return DefaultMaxArraySize, nil
	}
	n, ok := parseMaxArraySize(out)
	switch {
	case !ok:
		return DefaultMaxArraySize, nil
	case n < 1:
		return 0, fmt.Errorf("this Slurm cluster has job arrays disabled (MaxArraySize = %d in `scontrol show config`); the slurm executor submits each stage as a job array: use --executor local", n)
	}
	return n, nil
}

// parseMaxArraySize reads "MaxArraySize = N" from `scontrol show config`.
func parseMaxArraySize(out string) (int, bool) {
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) != "MaxArraySize" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		return n, err == nil
	}
	return 0, false
}

func countTasks(stages []Stage) int {
	n := 0
	for _, st := range stages {
		n += len(st.Tasks)
	}
	return n
}

// makeSubmissionDir creates <dir>/<YYYYMMDD-HHMMSS>-<random>/ with its
// scripts, logs and status subdirectories.
func makeSubmissionDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("slurm directory %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("create slurm directory: %w", err)
	}
	sub, err := os.MkdirTemp(abs, time.Now().Format("20060102-150405-"))
	if err != nil {
		return "", fmt.Errorf("create submission directory: %w", err)
	}
	if err := os.Chmod(sub, 0o755); err != nil {
		return "", err
	}
	for _, d := range []string{"scripts", "logs", "status"} {
		if err := os.Mkdir(filepath.Join(sub, d), 0o755); err != nil {
			return "", fmt.Errorf("create submission directory: %w", err)
		}
	}
	return sub, nil
}

// submitStage writes the script of one array (st, a part of stage) and
// submits it after deps (job ids; none for the first stage).
func (s *Submission) submitStage(ctx context.Context, opts Options, st Stage, stage string, deps []string) (SubmittedStage, error) {
	sp := scriptSpec{
		JobName: opts.JobName + "-" + st.Name,
		Stage:   st.Name,
		Dir:     s.Dir,
		Slurm:   opts.Slurm,
		Env:     opts.Env,
		Tasks:   st.Tasks,
	}
	path := sp.scriptPath()
	if err := atomicfile.Write(path, []byte(sp.script())); err != nil {
		return SubmittedStage{}, err
	}
	if err := os.Chmod(path, 0o755); err != nil {
		return SubmittedStage{}, err
	}
	args := sp.sbatchArgs(strings.Join(deps, ":"))
	out, err := run(ctx, s.bin.sbatch, args...)
	if ce := (*commandError)(nil); errors.As(err, &ce) && ce.Stderr != "" {
		return SubmittedStage{}, fmt.Errorf("sbatch could not submit stage %q: %s\n"+
			"(check run.slurm in the config: partition, time, mem, cpus_per_task, extra; command: %s)", st.Name, ce.Stderr, ce.Cmd)
	}
	if err != nil {
		return SubmittedStage{}, fmt.Errorf("sbatch could not submit stage %q: %w", st.Name, err)
	}
	id, err := parseJobID(out)
	if err != nil {
		return SubmittedStage{}, fmt.Errorf("sbatch stage %q: %w", st.Name, err)
	}
	return SubmittedStage{Name: st.Name, Stage: stage, JobID: id, Script: path, Tasks: st.Tasks, spec: sp, deps: deps}, nil
}

// parseJobID reads the output of sbatch --parsable: "<jobid>" or "<jobid>;<cluster>".
func parseJobID(out string) (string, error) {
	id, _, _ := strings.Cut(strings.TrimSpace(out), ";")
	if !jobIDRe.MatchString(id) {
		return "", fmt.Errorf("cannot read a job id from sbatch --parsable output %q", out)
	}
	return id, nil
}

var jobIDRe = regexp.MustCompile(`^[0-9]+$`)

// manifest is the content of tasks.json.
type manifest struct {
	Dir    string          `json:"dir"`
	Stages []manifestStage `json:"stages"`
}

type manifestStage struct {
	Name   string         `json:"name"`
	Stage  string         `json:"stage"`
	JobID  string         `json:"job_id"`
	Script string         `json:"script"`
	Sbatch []string       `json:"sbatch"`
	Tasks  []manifestTask `json:"tasks"`
}

type manifestTask struct {
	Index  int      `json:"index"`
	Key    string   `json:"key"`
	Args   []string `json:"args"`
	Log    string   `json:"log"`
	Status string   `json:"status"`
}

// writeManifest writes tasks.json, the map from array index to task key and
// files, for people and tools inspecting a submission.
func (s *Submission) writeManifest() error {
	m := manifest{Dir: s.Dir}
	for _, st := range s.Stages {
		ms := manifestStage{Name: st.Name, Stage: st.Stage, JobID: st.JobID, Script: st.Script, Sbatch: st.spec.sbatchArgs(strings.Join(st.deps, ":"))}
		for i, t := range st.Tasks {
			ms.Tasks = append(ms.Tasks, manifestTask{
				Index: i, Key: t.Key, Args: t.Args,
				Log: st.spec.logPath(i), Status: st.spec.statusBase(i) + ".rc",
			})
		}
		m.Stages = append(m.Stages, ms)
	}
	return atomicfile.WriteJSON(filepath.Join(s.Dir, "tasks.json"), m)
}

// JobIDs returns the array job ids of the submitted stages, in order.
func (s *Submission) JobIDs() []string {
	ids := make([]string, len(s.Stages))
	for i, st := range s.Stages {
		ids[i] = st.JobID
	}
	return ids
}

// Cancel scancels every job of the submission; it is safe to call more than
// once and after the jobs ended. Wait calls it when its context is cancelled.
func (s *Submission) Cancel() error {
	s.mu.Lock()
	s.cancelled = true
	s.mu.Unlock()
	ids := s.JobIDs()
	if len(ids) == 0 {
		return nil
	}
	ctx, stop := context.WithTimeout(context.Background(), commandTimeout)
	defer stop()
	if _, err := run(ctx, s.bin.scancel, ids...); err != nil {
		return fmt.Errorf("cancel slurm jobs %s (cancel them by hand with: scancel %s): %w",
			strings.Join(ids, ","), strings.Join(ids, " "), err)
	}
	return nil
}

// commandError is a failed Slurm client command.
type commandError struct {
	Cmd    string // command line, shell-quoted
	Err    error
	Stderr string // trimmed; where Slurm explains a rejection
}

func (e *commandError) Error() string {
	if e.Stderr == "" {
		return fmt.Sprintf("%s: %v", e.Cmd, e.Err)
	}
	return fmt.Sprintf("%s: %v: %s", e.Cmd, e.Err, e.Stderr)
}

func (e *commandError) Unwrap() error { return e.Err }

// run executes a Slurm client command and returns its stdout; a failure is a
// *commandError carrying the command's stderr.
func run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, stop := context.WithTimeout(ctx, commandTimeout)
	defer stop()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return stdout.String(), &commandError{Cmd: filepath.Base(name) + " " + QuoteArgs(args), Err: err, Stderr: msg}
	}
	return stdout.String(), nil
}
