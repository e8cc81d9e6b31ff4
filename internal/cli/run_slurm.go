package cli

import (
	"context"
	"fmt"

	"github.com/kdcal/kdcal/internal/executor"
	"github.com/kdcal/kdcal/internal/pipeline"
	"github.com/kdcal/kdcal/internal/plan"
)

// runSlurm submits the steps that are not done yet as one Slurm job array
// per stage (several past the cluster's MaxArraySize), chained with afterok
// dependencies, each task running `kdcal step <key>` against the shared
// experiment directory, then waits for them. Resubmitting skips finished
// steps.
func runSlurm(ctx context.Context, g *Globals, env *pipeline.Env, steps []plan.Step, args []string, done func(string) bool) error {
	todo := 0
	for _, s := range steps {
		if !done(s.Key) {
			todo++
		}
	}
	if todo == 0 {
		fmt.Fprintf(g.Err, "kdcal run: all %d steps are done\n", len(steps))
		return nil
	}
	ex, err := newSlurm(g, env, args, "kdcal run")
	if err != nil {
		return err
	}
	// On Ctrl-C, Wait scancels the jobs: the stop watchdog waits for that
	// (the jobs would otherwise run on without anyone waiting for them).
	defer holdOnCancel(ctx)()
	res, err := ex.Execute(ctx, steps, executor.Options{Done: done, Progress: g.Err})
	if err != nil {
		return err
	}
	printSummary(g.Err, "kdcal run", res)
	return res.Err()
}
