package local

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kdcal/kdcal/internal/executor"
	"github.com/kdcal/kdcal/internal/executor/executortest"
)

// TestMain lets the test binary run a step of the conformance suite as the
// child process Subprocess starts: `<test binary> step KEY --harness DIR`.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "step" {
		os.Exit(executortest.Main(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// TestConformance runs the executor suite against real step processes.
func TestConformance(t *testing.T) {
	executortest.Suite{
		New: func(t *testing.T, h *executortest.Harness, workers int) executor.Executor {
			sub := &Subprocess{Exe: os.Args[0], Args: h.StepArgs("")[2:], LogDir: filepath.Join(h.Dir, "logs"),
				BusyExitCode: executortest.BusyExitCode}
			return New(sub, workers)
		},
		Schedules: true,
		Parallel:  true,
	}.Run(t)
}
