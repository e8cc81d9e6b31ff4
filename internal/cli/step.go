package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// NewCmdStep builds the hidden `kdcal step KEY`, which runs exactly one step
// of the plan through the pipeline (skip when done, prerequisites, lock,
// publish); `kdcal run`, the stage commands and the Slurm executor launch
// it per step.
func NewCmdStep(g *Globals) *cobra.Command {
	var verify, force bool
	cmd := &cobra.Command{
		Use:    "step KEY",
		Short:  "Run one step of the study's plan (used by `kdcal run` and the Slurm executor)",
		Hidden: true,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("give exactly one step key, e.g. kdcal step teachers/large/seed-0 (kdcal run --dry-run lists them)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.Pipe == nil {
				return fmt.Errorf("this kdcal has no stages to run steps with (internal/cli called without stage.All())")
			}
			env, err := g.NewEnv()
			if err != nil {
				return err
			}
			env.Store.Verify, env.Force = verify, force
			s, ok := env.Plan.Get(args[0])
			if !ok {
				return usageErrorf("%q is not a step of this study's plan; `kdcal run --dry-run` lists them", args[0])
			}
			return g.Pipe.RunStep(cmd.Context(), env, s)
		},
	}
	cmd.Flags().BoolVar(&verify, "verify", false, "check the SHA-256 of a finished step's outputs before skipping it")
	cmd.Flags().BoolVar(&force, "force", false, "redo the step even when it is done (the stage commands' --force)")
	return cmd
}

// executable returns the path of the running kdcal binary.
func executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("cannot find the kdcal binary to start steps: %w", err)
	}
	return exe, nil
}
