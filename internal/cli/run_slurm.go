package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/kdcal/kdcal/internal/executor/slurm"
	"github.com/kdcal/kdcal/internal/plan"
)

// runSlurm submits the steps that are not done yet as one Slurm job array
// per stage, chained with afterok dependencies, each task running
// `kdcal step <key>` against the shared experiment directory, then waits
// for them. Resubmitting skips finished steps.
func runSlurm(ctx context.Context, env *StepEnv, steps []plan.Step, childArgs []string) error {
	exe, err := executable()
	if err != nil {
		return err
	}
	root, err := filepath.Abs(env.Store.Root)
	if err != nil {
		return err
	}
	args := replaceArg(childArgs, "--experiment", root)
	var stages []slurm.Stage
	todo := 0
	for _, name := range plan.Stages {
		st := slurm.Stage{Name: name}
		for _, s := range steps {
			if s.Stage == name && !stepDone(env, s.Key) {
				st.Tasks = append(st.Tasks, slurm.Task{Key: s.Key, Args: append([]string{exe, "step", s.Key}, args...)})
			}
		}
		todo += len(st.Tasks)
		stages = append(stages, st)
	}
	if todo == 0 {
		fmt.Fprintf(env.G.Err, "kdcal run: all %d steps are done\n", len(steps))
		return nil
	}
	sub, err := slurm.Submit(ctx, slurm.Options{Slurm: env.Cfg.Run.Slurm, Dir: filepath.Join(root, "slurm"),
		Env: []string{fmt.Sprintf("OPENBLAS_NUM_THREADS=%d", env.Cfg.Run.BLASThreads)}, JobName: "kdcal-" + env.Cfg.Name}, stages)
	if err != nil {
		return err
	}
	var ids []string
	for _, s := range sub.Stages {
		ids = append(ids, fmt.Sprintf("%s=%s (%d tasks)", s.Name, s.JobID, len(s.Tasks)))
	}
	fmt.Fprintf(env.G.Err, "kdcal run: submitted %s; files in %s\n", strings.Join(ids, ", "), sub.Dir)
	// On Ctrl-C, Wait scancels the jobs: the stop watchdog waits for that
	// (the jobs would otherwise run on without anyone waiting for them).
	defer holdOnCancel(ctx)()
	last := ""
	_, err = sub.Wait(ctx, func(p slurm.Progress) {
		if line := p.String(); line != last {
			fmt.Fprintln(env.G.Err, "slurm:", line)
			last = line
		}
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.G.Err, "kdcal run: %d slurm tasks completed\n", todo)
	return nil
}

// replaceArg sets the value following flag in args.
func replaceArg(args []string, flag, value string) []string {
	out := append([]string(nil), args...)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == flag {
			out[i+1] = value
		}
	}
	return out
}
