// Package inprocess runs a study's steps one after another in this process,
// in dependency order, the costliest ready step first (executor.Pool with
// one worker).
//
// It is what the stage commands (train-teachers, calibrate, distill) use
// with one worker or one step to run: the step's own output (the training
// progress bar, its log lines, its error) reaches the terminal as it is,
// with no process per step to start, and the view prints one line per
// finished step with the overall [k/N] and ETA. One worker, because two
// gorgonia trainings in one process run about half as fast as in two
// (shared heap and GC; see the gorgonia notes); parallel work belongs to
// the local executor's processes.
package inprocess

import (
	"context"

	"github.com/kdcal/kdcal/internal/executor"
	"github.com/kdcal/kdcal/internal/plan"
)

// New returns an executor that runs each step by calling run. An error
// wrapping executor.ErrBusy makes the step busy.
func New(run func(ctx context.Context, s plan.Step) error) executor.Executor {
	return executor.Pool{Workers: 1, Run: run, Inline: true}
}
