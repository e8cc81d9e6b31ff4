package slurm

import (
	"strconv"
	"strings"
)

// queueRow is one line of `squeue --noheader --array --format=%F|%K|%T|%r`:
// array job id, array task id ("N/A" for a plain job), state, reason.
type queueRow struct {
	JobID, TaskID, State, Reason string
}

// terminal lists the job states that are final (squeue can show them
// briefly; they do not count as queued).
var terminal = map[string]bool{
	"COMPLETED": true, "FAILED": true, "CANCELLED": true, "TIMEOUT": true, "OUT_OF_MEMORY": true,
	"NODE_FAIL": true, "BOOT_FAIL": true, "DEADLINE": true, "PREEMPTED": true, "SPECIAL_EXIT": true,
	"REVOKED": true,
}

func (r queueRow) running() bool {
	switch r.State {
	case "RUNNING", "COMPLETING", "CONFIGURING", "SIGNALING", "STAGE_OUT":
		return true
	}
	return false
}

// parseSqueue reads squeue's output; malformed lines are skipped.
func parseSqueue(out string) []queueRow {
	var rows []queueRow
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(strings.TrimSpace(line), "|")
		if len(f) != 4 || f[0] == "" {
			continue
		}
		rows = append(rows, queueRow{JobID: f[0], TaskID: f[1], State: f[2], Reason: f[3]})
	}
	return rows
}

// activeJobs returns the distinct job ids that have a task in a non-final state.
func activeJobs(rows []queueRow) []string {
	var ids []string
	seen := map[string]bool{}
	for _, r := range rows {
		if terminal[r.State] || seen[r.JobID] {
			continue
		}
		seen[r.JobID] = true
		ids = append(ids, r.JobID)
	}
	return ids
}

// ctlTask is scontrol's record of one array task.
type ctlTask struct {
	State  string // JobState, e.g. COMPLETED, FAILED, CANCELLED, TIMEOUT
	Reason string // Reason, e.g. NonZeroExitCode, DependencyNeverSatisfied, None
	Exit   int    // exit status (first half of ExitCode=3:0)
	Signal int    // terminating signal (second half)
}

func (c ctlTask) describe() string {
	s := "Slurm state " + c.State
	if c.Reason != "" && c.Reason != "None" {
		s += " (" + c.Reason + ")"
	}
	if c.Signal != 0 {
		s += ", killed by signal " + strconv.Itoa(c.Signal)
	}
	return s
}

// parseScontrol reads `scontrol --oneliner show job <array job id>`: one line
// per array task record, where a record may cover several tasks (e.g. the
// never-started rest of an array: ArrayTaskId=1-3). It returns the record of
// each array index below n.
func parseScontrol(out string, n int) map[int]ctlTask {
	tasks := map[int]ctlTask{}
	for _, line := range strings.Split(out, "\n") {
		kv := fields(line)
		ids, ok := kv["ArrayTaskId"]
		if !ok {
			continue
		}
		c := ctlTask{State: kv["JobState"], Reason: kv["Reason"]}
		if e, sig, ok := strings.Cut(kv["ExitCode"], ":"); ok {
			c.Exit, _ = strconv.Atoi(e)
			c.Signal, _ = strconv.Atoi(sig)
		}
		for _, i := range expandIndices(ids, n) {
			tasks[i] = c
		}
	}
	return tasks
}

// fields splits a oneliner record into its Key=Value pairs (first occurrence
// wins; words without '=' are ignored).
func fields(line string) map[string]string {
	kv := map[string]string{}
	for _, w := range strings.Fields(line) {
		k, v, ok := strings.Cut(w, "=")
		if _, dup := kv[k]; ok && !dup {
			kv[k] = v
		}
	}
	return kv
}

// expandIndices expands a Slurm array index expression such as "0-2,5,7-11:2%4"
// (ranges, optional step after ':', optional throttle after '%'), keeping the
// indices in [0, n).
func expandIndices(spec string, n int) []int {
	spec, _, _ = strings.Cut(spec, "%")
	var out []int
	for _, part := range strings.Split(spec, ",") {
		part, stepStr, hasStep := strings.Cut(part, ":")
		step := 1
		if hasStep {
			if n, err := strconv.Atoi(stepStr); err == nil && n > 0 {
				step = n
			}
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				continue
			}
		}
		for i := max(a, 0); i <= min(b, n-1); i += step {
			out = append(out, i)
		}
	}
	return out
}
