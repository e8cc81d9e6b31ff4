package slurm

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

var (
	nameRe   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	envKeyRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// wordRe matches values that sbatch reads unchanged from an #SBATCH line.
	wordRe = regexp.MustCompile(`^[^\s"'\\#]+$`)
)

// validate checks the options and the plan before anything is written or
// submitted. Config problems name the run.slurm key; plan problems are
// programming errors of the caller but are returned, not panicked, because
// task arguments can come from user input (paths).
func validate(opts Options, stages []Stage) error {
	if err := validateSlurm(opts); err != nil {
		return err
	}
	if countTasks(stages) > 0 && opts.Dir == "" {
		return fmt.Errorf("slurm: Options.Dir is empty: the executor needs a directory shared with the compute nodes")
	}
	if opts.JobName != "" && !nameRe.MatchString(opts.JobName) {
		return fmt.Errorf("slurm: job name %q: use letters, digits, '.', '_' and '-'", opts.JobName)
	}
	for _, kv := range opts.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !envKeyRe.MatchString(k) {
			return fmt.Errorf("slurm: environment entry %q: want KEY=VALUE with KEY a shell variable name", kv)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return fmt.Errorf("slurm: environment variable %s contains a NUL byte", k)
		}
	}
	seen := map[string]bool{}
	for _, st := range stages {
		if !nameRe.MatchString(st.Name) {
			return fmt.Errorf("slurm: stage name %q: use letters, digits, '.', '_' and '-' (it names files and jobs)", st.Name)
		}
		if seen[st.Name] {
			return fmt.Errorf("slurm: stage %q appears twice", st.Name)
		}
		seen[st.Name] = true
		if err := validateTasks(st); err != nil {
			return err
		}
	}
	return nil
}

func validateTasks(st Stage) error {
	keys := map[string]bool{}
	for i, t := range st.Tasks {
		if len(t.Args) == 0 || t.Args[0] == "" {
			return fmt.Errorf("slurm: stage %q task %d (%q) has no command", st.Name, i, t.Key)
		}
		if keys[t.Key] {
			return fmt.Errorf("slurm: stage %q has two tasks with key %q", st.Name, t.Key)
		}
		keys[t.Key] = true
		for _, s := range append([]string{t.Key}, t.Args...) {
			if strings.IndexByte(s, 0) >= 0 {
				return fmt.Errorf("slurm: stage %q task %q: an argument contains a NUL byte", st.Name, t.Key)
			}
		}
	}
	return nil
}

// validateSlurm checks the run.slurm section for what this package needs:
// values written on #SBATCH lines must be single words, and the poll
// interval must parse. (config.Validate checks the rest.)
func validateSlurm(opts Options) error {
	s := opts.Slurm
	for _, f := range []struct{ key, val string }{
		{"run.slurm.partition", s.Partition},
		{"run.slurm.time", s.Time},
		{"run.slurm.mem", s.Mem},
	} {
		if f.val != "" && !wordRe.MatchString(f.val) {
			return fmt.Errorf("%s = %q: must be one word without spaces, quotes, '#' or backslashes (it goes on an #SBATCH line)", f.key, f.val)
		}
	}
	if s.CPUsPerTask < 0 {
		return fmt.Errorf("run.slurm.cpus_per_task = %d: must be at least 1 (0 = cluster default)", s.CPUsPerTask)
	}
	for i, e := range s.Extra {
		if i == 0 && !strings.HasPrefix(e, "-") {
			return fmt.Errorf("run.slurm.extra[0] = %q: extra holds sbatch options, one argument per entry, e.g. [\"--qos=short\"] or [\"-A\", \"myaccount\"]", e)
		}
		if strings.IndexByte(e, 0) >= 0 {
			return fmt.Errorf("run.slurm.extra[%d] contains a NUL byte", i)
		}
	}
	if s.Poll != "" {
		if d, err := time.ParseDuration(s.Poll); err != nil || d <= 0 {
			return fmt.Errorf("run.slurm.poll = %q: must be a positive Go duration, e.g. 2s", s.Poll)
		}
	}
	return nil
}
