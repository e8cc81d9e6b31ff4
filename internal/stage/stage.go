// Package stage holds the study's four stages, each an implementation of
// pipeline.Stage, and All, the pipeline that cmd/kdcal/main.go passes to
// the command package:
//
//	teachers     train one teacher per (size, seed)              teachers.go
//	calibration  fit one calibrator per (method, size, seed)     calibration.go
//	students     distill (raw, calibrated) or train from scratch students.go
//	report       tables, statistics and figures from the store   report.go
//
// A stage only reads its step's inputs and writes its outputs: skipping
// done steps, checking prerequisites, logging, timing and the step's lock
// (Begin … Commit) are the pipeline's middleware. This package is where
// the training stack (internal/train, model, data, distill) meets the
// pipeline; internal/cli does not import it.
package stage

import (
	"context"
	"errors"
	"io/fs"
	"os"

	"github.com/kdcal/kdcal/internal/blasopt"
	"github.com/kdcal/kdcal/internal/data"
	"github.com/kdcal/kdcal/internal/pipeline"
	"github.com/kdcal/kdcal/internal/runstore"
	"github.com/kdcal/kdcal/internal/train"
)

// All returns the study's pipeline: its stages in plan order and the
// catalog of models and datasets.
func All() *pipeline.Pipeline {
	return pipeline.New(Catalog{},
		// train every (size, seed) teacher, with train/val/test logits
		&Teachers{},
		// fit every (method, size, seed) calibrator on a teacher's validation logits
		Calibration{},
		// distill each teacher, raw and calibrated, into the student; train the scratch twin
		Students{},
		// tables, statistics and figures from whatever the store holds
		Report{},
	)
}

// splits returns the configured dataset's splits, loaded once per Env (an
// in-process run of several training steps reads the dataset once).
func splits(env *pipeline.Env) (*data.Splits, error) {
	v, err := env.Shared("data.splits", func() (any, error) { return data.Load(env.Cfg.Data) })
	if err != nil {
		return nil, err
	}
	return v.(*data.Splits), nil
}

// removeResumeFiles deletes the checkpoint and progress file of a finished
// training step before it is published.
func removeResumeFiles(st *runstore.Step) error {
	for _, f := range []string{train.CheckpointFile, pipeline.ProgressFile} {
		if err := os.Remove(st.Path(f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// runTraining runs a training job with run.blas_threads OpenBLAS threads,
// as the executors' step processes do (they set OPENBLAS_NUM_THREADS): a
// step run in this process — a stage command with one worker or one step —
// then writes the same bytes as under `kdcal run`.
func runTraining(ctx context.Context, env *pipeline.Env, job train.Job) (train.Result, error) {
	blasopt.SetThreads(env.Cfg.Run.BLASThreads)
	return train.Run(ctx, job)
}
