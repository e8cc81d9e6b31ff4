package cli

import (
	"context"

	"github.com/kdcal/kdcal/internal/plan"
)

// runSlurm submits the plan to Slurm (see internal/executor/slurm).
func runSlurm(ctx context.Context, env *StepEnv, steps []plan.Step, childArgs []string) error {
	return &NotYetError{What: "the Slurm executor (kdcal run --executor slurm)"}
}
