// Package local runs a study's steps on this machine: independent steps in
// parallel (by default one per core), each in its own kdcal process with one
// BLAS thread (Subprocess), in dependency order, with a progress view and an
// estimate of the time left (executor.Pool).
//
// Steps are idempotent and checkpointed (see runstore), so stopping the
// executor at any moment — Ctrl-C or kill -9 — and running it again finishes
// the study with the same results.
package local

import (
	"context"

	"github.com/kdcal/kdcal/internal/executor"
	"github.com/kdcal/kdcal/internal/plan"
)

// ErrBusy is executor.ErrBusy, kept for callers of this package.
var ErrBusy = executor.ErrBusy

// Executor runs each step as a Subprocess, Workers at a time.
type Executor struct {
	Workers int
	Sub     *Subprocess
}

// New returns the local executor: workers processes at a time (< 1: one).
func New(sub *Subprocess, workers int) *Executor { return &Executor{Workers: workers, Sub: sub} }

// Execute implements executor.Executor. Each outcome of a step that ran
// names its attempt's log.
func (e *Executor) Execute(ctx context.Context, steps []plan.Step, opts executor.Options) (executor.Result, error) {
	res, err := executor.Pool{Workers: e.Workers, Run: e.Sub.Run}.Execute(ctx, steps, opts)
	for i, o := range res.Outcomes {
		switch o.Status {
		case executor.Done, executor.Failed, executor.Cancelled:
			res.Outcomes[i].Log = e.Sub.LogPath(o.Key)
		}
	}
	return res, err
}
