package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/executor"
	"github.com/kdcal/kdcal/internal/npyfile"
	"github.com/kdcal/kdcal/internal/runstore"
)

// Exit codes, documented in the root command's help. This is the only place
// errors become codes.
const (
	ExitOK          = 0
	ExitFailure     = 1   // a step failed (e.g. training diverged), or an unexpected error
	ExitUsage       = 2   // bad command line: unknown flag, bad flag value, wrong arguments, a path kdcal will not write into
	ExitConfig      = 3   // bad configuration: unknown key, out-of-range value, unreadable file
	ExitData        = 4   // bad or missing input data: dataset files, .npy logits or labels
	ExitMissing     = 5   // a prerequisite step has not been run or is damaged (e.g. distill before train-teachers)
	ExitBusy        = 6   // another kdcal process is running the same step (kdcal run: steps were left busy)
	ExitInterrupted = 130 // interrupted (Ctrl-C / SIGTERM); finished steps are kept, running ones resume
)

const exitCodeHelp = `Exit status:
  0    success
  1    a step failed (e.g. training diverged) or an unexpected error
  2    usage error (unknown flag, bad flag value, wrong arguments; an output or
       experiment path holding files kdcal did not write)
  3    configuration error (unknown key, out-of-range value)
  4    data error (missing or corrupt dataset, bad .npy logits or labels, a
       corrupt model file;
       kdcal data info found a broken dataset)
  5    missing or damaged prerequisite (e.g. distill before train-teachers)
  6    another kdcal process is running the same step (kdcal run: steps were
       left to it, everything else ran)
  130  interrupted (finished steps are kept; rerun to resume)`

// UsageError marks a command-line mistake; the command's usage is printed.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// usageErrorf returns a *UsageError.
func usageErrorf(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// stepExitError is a step that failed in a process of its own: its message
// is the step process's, and it keeps that process's exit status when it
// names a kind of error (configuration, data, missing prerequisite).
type stepExitError struct {
	code int
	err  error
}

func (e *stepExitError) Error() string { return e.err.Error() }
func (e *stepExitError) Unwrap() error { return e.err }

// ExitCode maps an error to the documented exit status; isData (nil: none)
// recognises the data errors of the packages behind the pipeline (a
// dataset file, a model file), which this package does not import.
func ExitCode(err error, isData func(error) bool) int {
	var (
		usage   *UsageError
		cfg     *config.Error
		npyErr  *npyfile.Error
		missing *runstore.MissingError
		foreign *runstore.ForeignError
		child   *stepExitError
		broken  *brokenDataError
	)
	if isData == nil {
		isData = func(error) bool { return false }
	}
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.As(err, &usage), errors.As(err, &foreign):
		return ExitUsage
	case errors.As(err, &cfg):
		return ExitConfig
	case isData(err), errors.As(err, &npyErr), errors.As(err, &broken):
		return ExitData
	case errors.As(err, &missing):
		return ExitMissing
	case errors.Is(err, runstore.ErrBusy), errors.Is(err, executor.ErrBusy):
		return ExitBusy
	case errors.As(err, &child) && (child.code == ExitConfig || child.code == ExitData || child.code == ExitMissing):
		return child.code
	default:
		return ExitFailure
	}
}
