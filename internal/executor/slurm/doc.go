// Package slurm runs a staged plan of commands as Slurm job arrays.
//
// A plan is a list of stages; each stage is a list of tasks (one command
// each) that may run in parallel. Submit turns every non-empty stage into one
// job array (`sbatch --array=0-(n-1)`), chained with
// `--dependency=afterok:<job id of the previous stage>`, so a stage starts
// only when every task of the previous one exited 0. Wait polls `squeue`
// until all arrays have left the queue and reads each task's result from a
// status file written by the task's wrapper script (sacct needs slurmdbd,
// which many clusters and the CI cluster do not offer to users).
//
// When a task fails, Slurm never satisfies the dependency of the next stage:
// the scripts carry --kill-on-invalid-dep=yes, and Wait also scancels any job
// squeue reports as DependencyNeverSatisfied, so later stages end as NotRun
// instead of pending forever.
//
// # Use
//
//	sub, err := slurm.Submit(ctx, slurm.Options{Slurm: cfg.Run.Slurm, Dir: expDir + "/slurm"}, []slurm.Stage{
//		{Name: "teachers", Tasks: []slurm.Task{{Key: key, Args: []string{kdcalBin, "step", key}}}},
//		{Name: "calibrate", Tasks: ...},
//	})
//	if err != nil {
//		return err // e.g. no sbatch on PATH, or sbatch's own rejection message
//	}
//	results, err := sub.Wait(ctx, func(p slurm.Progress) { log.Info("slurm", "progress", p) })
//	// err is a *slurm.TasksError listing failed tasks with exit codes and log
//	// paths; wraps ctx.Err() when ctx was cancelled (the jobs are then scancelled).
//
// Submit returns once every stage is queued; Wait blocks until the jobs have
// left the queue and calls its callback from the polling goroutine.
//
// # Files
//
// Each submission writes into its own directory, Options.Dir/<YYYYMMDD-HHMMSS>-<random>/,
// which must be on a filesystem shared with the compute nodes:
//
//	tasks.json               stages, job ids, and for every array index its key, command, log and status file
//	scripts/<stage>.sh       the array job script (can be resubmitted by hand: see its header)
//	logs/<stage>_<i>.log     stdout+stderr of task i
//	status/<stage>_<i>.started  written when task i starts
//	status/<stage>_<i>.rc       its exit status, written atomically (tmp + mv) when it ends
//
// A task killed by Slurm (time limit, memory, scancel) writes no .rc file;
// its state then comes from `scontrol show job`, which remembers finished
// jobs for MinJobAge seconds (300 by default).
//
// # Environment of a task
//
// sbatch exports the submitting environment (its default --export=ALL). The
// script then exports OPENBLAS_NUM_THREADS and OMP_NUM_THREADS (=
// cpus_per_task, or 1) and finally Options.Env, which can override both. The
// working directory is the one Submit was called from (Slurm's default).
//
// The package needs the Slurm client commands sbatch, squeue, scancel and
// scontrol on PATH; the tests start a real single-node cluster with
// scripts/slurm-ci.sh.
package slurm
