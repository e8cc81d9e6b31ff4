package executortest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kdcal/kdcal/internal/executor"
	"github.com/kdcal/kdcal/internal/plan"
)

// Behaviour is what a step of a scenario does when it runs.
type Behaviour string

// The behaviours of a scenario's steps.
const (
	OK   Behaviour = "ok"   // waits Delay, succeeds
	Fail Behaviour = "fail" // waits Delay, fails (exit status 1)
	Busy Behaviour = "busy" // another process "holds" it: ErrBusy in process, BusyExitCode as a process
	Hang Behaviour = "hang" // runs until cancelled (ctx, or SIGTERM/SIGINT for a process)
)

// BusyExitCode is the exit status of a Busy step run as a process: the
// executor under test must be configured to read it as busy (kdcal's
// ExitBusy, 6).
const BusyExitCode = 6

// scenario is the content of <Dir>/scenario.json.
type scenario struct {
	Behaviours map[string]Behaviour `json:"behaviours"` // by step key; OK when absent
	DelayMS    int                  `json:"delay_ms"`
}

// Harness is one test's scenario and the record of what its steps did. The
// executor under test runs a step either by calling Run (in this process)
// or by running the command StepArgs names (a process, a Slurm task), which
// the test binary's TestMain hands to Main.
type Harness struct {
	Dir string // scenario.json and events.log; must be visible to the processes that run the steps
}

// NewHarness writes a scenario into dir: each step behaves as behaviours
// says (OK when absent), an OK or failing step taking delay.
func NewHarness(dir string, behaviours map[string]Behaviour, delay time.Duration) (*Harness, error) {
	b, err := json.Marshal(scenario{Behaviours: behaviours, DelayMS: int(delay / time.Millisecond)})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "scenario.json"), b, 0o644); err != nil {
		return nil, err
	}
	return &Harness{Dir: dir}, nil
}

// Run runs step s in this process as the scenario says: an in-process
// executor's step function.
func (h *Harness) Run(ctx context.Context, s plan.Step) error {
	_, err := perform(ctx, h.Dir, s.Key)
	return err
}

// StepArgs returns the arguments that make the test binary run step key:
// "step", key, "--harness", Dir. (local.Subprocess puts "step <key>" first
// itself and needs only the rest: StepArgs(key)[2:].)
func (h *Harness) StepArgs(key string) []string {
	return []string{"step", key, "--harness", h.Dir}
}

// Main runs a step as a process: args are what follows "step" in StepArgs.
// It returns the exit status (0, 1, BusyExitCode, or 130 when stopped by a
// signal). Call it from TestMain:
//
//	func TestMain(m *testing.M) {
//		if len(os.Args) > 1 && os.Args[1] == "step" {
//			os.Exit(executortest.Main(os.Args[2:]))
//		}
//		os.Exit(m.Run())
//	}
func Main(args []string) int {
	if len(args) != 3 || args[1] != "--harness" {
		fmt.Fprintf(os.Stderr, "executortest: want step KEY --harness DIR, got %q\n", args)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	code, err := perform(ctx, args[2], args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "kdcal: %v\n", err)
	}
	return code
}

// perform does what the scenario in dir says step key does, recording its
// start and its end ("end" after success or failure, "stop" when
// cancelled) in events.log.
func perform(ctx context.Context, dir, key string) (int, error) {
	var sc scenario
	b, err := os.ReadFile(filepath.Join(dir, "scenario.json"))
	if err == nil {
		err = json.Unmarshal(b, &sc)
	}
	if err != nil {
		return 2, fmt.Errorf("executortest: scenario: %w", err)
	}
	record(dir, "start", key)
	behaviour := sc.Behaviours[key]
	delay := time.Duration(sc.DelayMS) * time.Millisecond
	if behaviour == Hang {
		delay = time.Hour
	}
	select {
	case <-ctx.Done():
		record(dir, "stop", key)
		return 130, ctx.Err()
	case <-time.After(delay):
	}
	record(dir, "end", key)
	switch behaviour {
	case Fail:
		return 1, fmt.Errorf("%s: boom (a failing step of the scenario)", key)
	case Busy:
		return BusyExitCode, fmt.Errorf("%s: %w", key, executor.ErrBusy)
	}
	return 0, nil
}

// record appends "<what> <key> <unix ns>" to events.log (one write, so
// lines of concurrent steps do not mix).
func record(dir, what, key string) {
	f, err := os.OpenFile(filepath.Join(dir, "events.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s %d\n", what, key, time.Now().UnixNano())
}

// Event is one line of events.log: a step's start, end (it succeeded or
// failed) or stop (it was cancelled).
type Event struct {
	What, Key string // What is start, end or stop
	At        time.Time
}

// Events reads what the steps did, in the order they wrote it.
func (h *Harness) Events() ([]Event, error) {
	f, err := os.Open(filepath.Join(h.Dir, "events.log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Fields(sc.Text())
		if len(parts) != 3 {
			return nil, fmt.Errorf("events.log: bad line %q", sc.Text())
		}
		ns, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("events.log: bad line %q", sc.Text())
		}
		out = append(out, Event{What: parts[0], Key: parts[1], At: time.Unix(0, ns)})
	}
	return out, sc.Err()
}
