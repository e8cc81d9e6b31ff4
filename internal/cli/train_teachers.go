package cli

import (
	"github.com/spf13/cobra"
)

// TrainTeachersOptions are the inputs of `kdcal train-teachers`.
type TrainTeachersOptions struct {
	G         *Globals
	Sizes     []string // subset of teacher.sizes (default: all)
	Seeds     []int    // subset of seeds (default: all)
	ListSizes bool     // print the size table and exit
}

// NewCmdTrainTeachers builds `kdcal train-teachers`.
func NewCmdTrainTeachers(g *Globals, runF func(*TrainTeachersOptions) error) *cobra.Command {
	opts := &TrainTeachersOptions{G: g}
	cmd := &cobra.Command{
		Use:   "train-teachers",
		Short: "Train every (size, seed) teacher and store checkpoints and logits",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return &NotYetError{What: "train-teachers (the training engine, issue #3)"}
		},
	}
	cmd.Flags().StringSliceVar(&opts.Sizes, "sizes", nil, "teacher sizes to train, e.g. small,large (default: teacher.sizes)")
	cmd.Flags().IntSliceVar(&opts.Seeds, "seeds", nil, "seeds to train, e.g. 0,1,2 (default: seeds)")
	cmd.Flags().BoolVar(&opts.ListSizes, "list-sizes", false, "print each size with its parameter count and exit")
	return cmd
}
