package slurm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// State is the final state of a task.
type State string

const (
	Completed State = "COMPLETED" // the command exited 0
	Failed    State = "FAILED"    // non-zero exit, or killed by Slurm (time limit, memory, node failure): see Reason
	Cancelled State = "CANCELLED" // started, then cancelled (scancel, Ctrl-C)
	NotRun    State = "NOT_RUN"   // never started: an earlier stage failed, or cancelled while pending
)

// Result is the outcome of one task.
type Result struct {
	Stage    string
	Index    int    // array index within the stage
	Key      string // Task.Key
	JobID    string // <array job id>_<index>
	State    State
	ExitCode int    // exit status of the command; -1 when it did not run to the end
	Reason   string // why the task did not complete (empty for Completed)
	LogPath  string // stdout+stderr of the task (absent when it never started)
}

func (r Result) String() string {
	s := fmt.Sprintf("stage %s task %d (%s, job %s): %s", r.Stage, r.Index, r.Key, r.JobID, r.State)
	if r.ExitCode > 0 {
		s += fmt.Sprintf(", exit code %d", r.ExitCode)
	}
	if r.Reason != "" {
		s += ": " + r.Reason
	}
	if r.State != NotRun {
		s += "; log: " + r.LogPath
	}
	return s
}

// TasksError is returned by Wait when some tasks did not complete. Results
// are returned alongside it.
type TasksError struct {
	Total  int
	Failed []Result // Failed and Cancelled tasks
	NotRun []Result
}

func (e *TasksError) Error() string {
	const maxListed = 20
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d slurm tasks did not complete", len(e.Failed)+len(e.NotRun), e.Total)
	for i, r := range e.Failed {
		if i == maxListed {
			fmt.Fprintf(&b, "\n  ... and %d more (see tasks.json and the logs directory)", len(e.Failed)-maxListed)
			break
		}
		b.WriteString("\n  " + r.String())
	}
	if n := len(e.NotRun); n > 0 {
		fmt.Fprintf(&b, "\n  %d task(s) did not run: %s", n, e.NotRun[0].Reason)
	}
	return b.String()
}

// StageProgress counts a stage's tasks by state while the jobs run.
type StageProgress struct {
	Name      string
	JobID     string
	Total     int
	Pending   int
	Running   int
	Completed int // exited 0
	Failed    int // exited non-zero
}

// Progress is a snapshot of a submission, passed to Wait's callback whenever
// it changes.
type Progress struct {
	Stages []StageProgress
}

func (p Progress) String() string {
	parts := make([]string, len(p.Stages))
	for i, s := range p.Stages {
		parts[i] = fmt.Sprintf("%s %d/%d done", s.Name, s.Completed+s.Failed, s.Total)
		if s.Running > 0 {
			parts[i] += fmt.Sprintf(", %d running", s.Running)
		}
		if s.Failed > 0 {
			parts[i] += fmt.Sprintf(", %d failed", s.Failed)
		}
	}
	return strings.Join(parts, "; ")
}

// Wait polls squeue every run.slurm.poll until every job of the submission
// has left the queue, calling progress (when not nil) whenever the counts
// change, and returns one Result per task in stage and index order. Jobs
// whose dependency can never be satisfied are scancelled. The error is a
// *TasksError when some task did not complete. When ctx is cancelled, Wait
// cancels the jobs, waits briefly for them to leave the queue, and returns
// the results with an error wrapping ctx.Err().
func (s *Submission) Wait(ctx context.Context, progress func(Progress)) ([]Result, error) {
	if len(s.Stages) == 0 {
		return nil, nil
	}
	err := s.poll(ctx, progress)
	if ctx.Err() != nil {
		cerr := s.Cancel()
		dctx, stop := context.WithTimeout(context.Background(), 30*time.Second)
		defer stop()
		_ = s.poll(dctx, nil) // best effort: let the jobs leave the queue
		res := s.collect(dctx)
		return res, errors.Join(fmt.Errorf("slurm jobs %s cancelled: %w", strings.Join(s.JobIDs(), ","), ctx.Err()), cerr)
	}
	if err != nil {
		return nil, err
	}
	res := s.collect(ctx)
	return res, tasksError(res)
}

func tasksError(res []Result) error {
	e := &TasksError{Total: len(res)}
	for _, r := range res {
		switch r.State {
		case Completed:
		case NotRun:
			e.NotRun = append(e.NotRun, r)
		default:
			e.Failed = append(e.Failed, r)
		}
	}
	if len(e.Failed)+len(e.NotRun) == 0 {
		return nil
	}
	return e
}

// poll returns when no job of the submission is in the queue any more, when
// ctx is done, or when squeue has failed for squeueGiveUp.
func (s *Submission) poll(ctx context.Context, progress func(Progress)) error {
	active := s.JobIDs()
	var last Progress
	var failingSince time.Time
	for len(active) > 0 {
		rows, err := s.squeue(ctx, active)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			if time.Since(failingSince) > squeueGiveUp {
				return fmt.Errorf("squeue has failed for %v, giving up (the jobs %s may still run: "+
					"check with squeue, cancel with scancel %s): %w",
					squeueGiveUp, strings.Join(active, ","), strings.Join(active, " "), err)
			}
		default:
			failingSince = time.Time{}
			s.cancelNeverSatisfied(ctx, rows)
			active = activeJobs(rows)
			if p := s.progress(rows); progress != nil && !slices.Equal(p.Stages, last.Stages) {
				progress(p)
				last = p
			}
			if len(active) == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.interval):
		}
	}
	return nil
}

// cancelNeverSatisfied scancels jobs that wait for a dependency that can
// never be satisfied. The scripts ask Slurm to do this itself
// (--kill-on-invalid-dep=yes); this covers clusters and submissions where
// that did not happen.
func (s *Submission) cancelNeverSatisfied(ctx context.Context, rows []queueRow) {
	for _, r := range rows {
		if r.Reason != "DependencyNeverSatisfied" {
			continue
		}
		s.mu.Lock()
		done := s.neverDeps[r.JobID]
		s.neverDeps[r.JobID] = true
		s.mu.Unlock()
		if !done {
			_, _ = run(ctx, s.bin.scancel, r.JobID) // a failure shows up again at the next poll
		}
	}
}

// squeue lists the array tasks of the given jobs that are still in the queue.
func (s *Submission) squeue(ctx context.Context, ids []string) ([]queueRow, error) {
	out, err := run(ctx, s.bin.squeue, "--noheader", "--array", "--jobs="+strings.Join(ids, ","),
		"--format=%F|%K|%T|%r")
	if err != nil {
		// squeue fails this way when every listed job has been purged.
		if strings.Contains(err.Error(), "Invalid job id specified") {
			return nil, nil
		}
		return nil, err
	}
	return parseSqueue(out), nil
}

// progress counts tasks: Completed/Failed from the status files, Running
// from squeue (tasks without a status file yet), the rest pending.
func (s *Submission) progress(rows []queueRow) Progress {
	running := map[string]bool{} // "<job id>_<index>"
	for _, r := range rows {
		if r.running() {
			running[r.JobID+"_"+r.TaskID] = true
		}
	}
	var p Progress
	for _, st := range s.Stages {
		sp := StageProgress{Name: st.Name, JobID: st.JobID, Total: len(st.Tasks)}
		for i := range st.Tasks {
			rc, ok := readRC(st.spec.statusBase(i) + ".rc")
			switch {
			case ok && rc == 0:
				sp.Completed++
			case ok:
				sp.Failed++
			case running[fmt.Sprintf("%s_%d", st.JobID, i)]:
				sp.Running++
			}
		}
		sp.Pending = sp.Total - sp.Running - sp.Completed - sp.Failed
		p.Stages = append(p.Stages, sp)
	}
	return p
}

// collect builds the results from the status files, asking scontrol about
// tasks that left no exit status.
func (s *Submission) collect(ctx context.Context) []Result {
	var res []Result
	earlierFailed := false // a task of an earlier stage (not an earlier array of the same stage) did not complete
	stageStart := 0        // index in res of the first task of the current stage
	for k, st := range s.Stages {
		if k > 0 && st.Stage != s.Stages[k-1].Stage {
			for _, r := range res[stageStart:] {
				earlierFailed = earlierFailed || r.State != Completed
			}
			stageStart = len(res)
		}
		var ctl map[int]ctlTask // loaded on first need
		for i, t := range st.Tasks {
			base := st.spec.statusBase(i)
			r := Result{
				Stage: st.Name, Index: i, Key: t.Key, JobID: fmt.Sprintf("%s_%d", st.JobID, i),
				ExitCode: -1, LogPath: st.spec.logPath(i),
			}
			if rc, ok := readRC(base + ".rc"); ok {
				r.ExitCode = rc
				r.State = Completed
				if rc != 0 {
					r.State, r.Reason = Failed, "the command exited with a non-zero status"
				}
				res = append(res, r)
				continue
			}
			if ctl == nil {
				ctl = s.scontrol(ctx, st.JobID, len(st.Tasks))
			}
			c, known := ctl[i]
			_, err := os.Stat(base + ".started")
			s.mu.Lock()
			why := noStatus{started: err == nil, neverDep: s.neverDeps[st.JobID] || earlierFailed, cancelled: s.cancelled}
			s.mu.Unlock()
			if known {
				why.ctl = &c
			}
			r.State, r.ExitCode, r.Reason = why.classify()
			res = append(res, r)
		}
	}
	return res
}

// readRC reads an exit status file written by the task script.
func readRC(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	rc, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, false
	}
	return rc, true
}

// scontrol returns what slurmctld still knows about the tasks of an array
// job (finished jobs are kept for MinJobAge seconds); nil when nothing.
func (s *Submission) scontrol(ctx context.Context, jobID string, n int) map[int]ctlTask {
	out, err := run(ctx, s.bin.scontrol, "--oneliner", "show", "job", jobID)
	if err != nil {
		return map[int]ctlTask{}
	}
	return parseScontrol(out, n)
}

// noStatus is what is known about a task that wrote no exit status.
type noStatus struct {
	started   bool     // the script created its .started file
	neverDep  bool     // an earlier stage did not complete, or Wait scancelled the job for DependencyNeverSatisfied
	cancelled bool     // Cancel was called
	ctl       *ctlTask // scontrol's record, nil when purged
}

// classify decides the state of a task that wrote no exit status.
func (n noStatus) classify() (State, int, string) {
	const depMsg = "dependency never satisfied: a task of an earlier stage did not complete"
	if c := n.ctl; c != nil {
		switch {
		case c.State == "COMPLETED" && c.Signal == 0:
			// finished, but its status file is not visible (yet) on this host
			if c.Exit == 0 {
				return Completed, 0, ""
			}
			return Failed, c.Exit, "the command exited with a non-zero status"
		case c.State == "CANCELLED" && c.Reason == "DependencyNeverSatisfied":
			return NotRun, -1, depMsg
		case c.State == "CANCELLED" && n.started:
			return Cancelled, -1, "cancelled while running"
		case c.State == "CANCELLED", c.State == "PENDING":
			return NotRun, -1, "cancelled before it started"
		default: // FAILED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, BOOT_FAIL, DEADLINE, PREEMPTED, ...
			exit := -1
			if c.Signal == 0 && c.Exit != 0 {
				exit = c.Exit
			}
			return Failed, exit, c.describe()
		}
	}
	switch {
	case n.started && n.cancelled:
		return Cancelled, -1, "cancelled while running"
	case n.started:
		return Failed, -1, "ended without writing an exit status (killed by Slurm: time limit, memory or scancel?); see the log"
	case n.neverDep:
		return NotRun, -1, depMsg
	case n.cancelled:
		return NotRun, -1, "cancelled before it started"
	default:
		return NotRun, -1, "never started, and Slurm no longer has a record of it"
	}
}
