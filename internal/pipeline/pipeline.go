// Package pipeline is the study's engine: the Stage interface the stages
// implement (internal/stage), the Env a step runs in, and the middleware
// every step goes through — skip a step done with the same hash, check its
// prerequisites, log and time it, and publish its outputs under the step's
// lock — composed in the manner of goreleaser's
// skip.Maybe(pipe, logging.Log(…, errhandler.Handle(pipe.Run))):
//
//	Skip(p.Require(Log(Publish(stage))))
//
// It is also the interface through which internal/cli asks for what only
// the training stack knows (Catalog: model sizes, datasets), so that the
// command package imports no training, model or data-loading code:
// cmd/kdcal/main.go passes stage.All(), a *Pipeline, to cli.Main.
package pipeline

import (
	"context"
	"time"

	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/runstore"
)

// Stage is one stage of the pipeline (teachers, calibration, students,
// report): it makes the plan's steps of its name.
type Stage interface {
	// Name is the plan stage whose steps it makes (plan.StageTeachers, …).
	Name() string
	// Command is the kdcal command that makes step s, e.g. "kdcal
	// train-teachers --sizes large --seeds 0", for the hints of missing
	// prerequisites.
	Command(s plan.Step) string
	// Prepare reads what step s needs (dataset, teacher logits, a fitted
	// calibrator) before the step is locked, so that a missing or bad input
	// marks nothing failed, and returns the work that writes its outputs.
	// A nil Job means Prepare did the step and published it itself (the
	// report, which report.Write publishes with the hash of what it used).
	Prepare(ctx context.Context, env *Env, s plan.Step) (Job, error)
}

// Job is one prepared step.
type Job interface {
	// Manifest is what runstore.Store.Begin records for the step: key,
	// kind, configuration hash, inputs, seed.
	Manifest() runstore.Manifest
	// Write writes the step's outputs into st's work directory (and its
	// manifest parameters with st.SetParam); Publish then commits them. An
	// interrupted Write (ctx cancelled) leaves the work directory for a
	// resume.
	Write(ctx context.Context, st *runstore.Step) error
}

// Committer is a Job that reports once its step is published (a summary
// log line with the step's metrics).
type Committer interface {
	Committed(env *Env)
}

// StepFunc runs one step; the middleware wraps one in another.
type StepFunc func(ctx context.Context, env *Env, s plan.Step) error

// Pipeline is the study's stages, in plan order, and the Catalog of what
// the commands ask of models and datasets.
type Pipeline struct {
	stages  []Stage
	catalog Catalog
}

// New returns the pipeline of the given stages (at most one per plan stage).
func New(catalog Catalog, stages ...Stage) *Pipeline {
	return &Pipeline{stages: stages, catalog: catalog}
}

// Catalog returns what the commands ask of models and datasets.
func (p *Pipeline) Catalog() Catalog { return p.catalog }

// Stages returns the stages in plan order.
func (p *Pipeline) Stages() []Stage { return append([]Stage(nil), p.stages...) }

// Stage returns the stage that makes the steps of plan stage name.
func (p *Pipeline) Stage(name string) (Stage, bool) {
	for _, st := range p.stages {
		if st.Name() == name {
			return st, true
		}
	}
	return nil, false
}

// RunStep runs one step of the plan through the middleware: skipped when
// done with its hash and intact (unless env.Force), its prerequisites
// checked, logged and timed, and published by its stage under its lock.
// `kdcal step`, and the stage commands' in-process executor, run steps
// this way.
func (p *Pipeline) RunStep(ctx context.Context, env *Env, s plan.Step) error {
	st, ok := p.Stage(s.Stage)
	if !ok {
		return &NotYetError{What: "the " + s.Stage + " stage"}
	}
	return Skip(p.Require(Log(Publish(st))))(ctx, env, s)
}

// Skip skips a step that is done with its hash and intact outputs, unless
// env.Force; a damaged step (an output missing or changed) is redone.
func Skip(next StepFunc) StepFunc {
	return func(ctx context.Context, env *Env, s plan.Step) error {
		if !env.Force {
			switch in := env.Store.Inspect(s.Key, s.Hash, env.Store.Verify); in.State {
			case runstore.StateDone:
				env.Log.Info("skip: already done (use --force to redo it)", "step", s.Key)
				return nil
			case runstore.StateDamaged:
				env.Log.Warn("redo: damaged", "step", s.Key, "reason", in.Reason)
			}
		}
		return next(ctx, env, s)
	}
}

// Require fails a step whose prerequisites are not done, current and
// intact (RequireDeps) before it runs.
func (p *Pipeline) Require(next StepFunc) StepFunc {
	return func(ctx context.Context, env *Env, s plan.Step) error {
		if err := p.RequireDeps(env, s); err != nil {
			return err
		}
		return next(ctx, env, s)
	}
}

// Log logs a step's start and, when it succeeds, its end with the time taken.
func Log(next StepFunc) StepFunc {
	return func(ctx context.Context, env *Env, s plan.Step) error {
		t0 := time.Now()
		env.Log.Info("start", "step", s.Key)
		if err := next(ctx, env, s); err != nil {
			return err
		}
		env.Log.Info("done", "step", s.Key, "seconds", time.Since(t0).Round(time.Millisecond).Seconds())
		return nil
	}
}

// Publish runs a stage's step: Prepare (before the lock), then Begin (the
// step's lock and work directory), the Job's Write, and Commit, which
// publishes the outputs by a rename. A failed Write marks the step failed
// and publishes nothing; an interrupted one releases the lock and keeps the
// work directory, from which a rerun resumes.
func Publish(st Stage) StepFunc {
	return func(ctx context.Context, env *Env, s plan.Step) error {
		job, err := st.Prepare(ctx, env, s)
		if err != nil || job == nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		out, err := env.Store.Begin(job.Manifest())
		if err != nil {
			return err
		}
		if err := job.Write(ctx, out); err != nil {
			if ctx.Err() != nil {
				out.Release()
				return err
			}
			return out.Fail(err)
		}
		if err := out.Commit(); err != nil {
			return err
		}
		if c, ok := job.(Committer); ok {
			c.Committed(env)
		}
		return nil
	}
}

// NotYetError says a step's stage is not part of this kdcal build.
type NotYetError struct{ What string }

func (e *NotYetError) Error() string {
	return e.What + " is not implemented yet in this kdcal build"
}
