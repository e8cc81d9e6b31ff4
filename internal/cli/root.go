// Package cli is kdcal's command tree (cobra). Each command is an Options
// struct, a NewCmdX(g, runF) constructor that only fills the options from
// flags, and an xRun function that does the work; tests pass a capturing
// runF to check flag parsing without running anything.
//
// The package imports no training, model, data-loading or gorgonia code:
// what only those know reaches it through the *pipeline.Pipeline that
// cmd/kdcal/main.go passes to Main (stage.All()): the stages that run
// steps, and a Catalog of model sizes and datasets. Steps run through an
// executor (internal/executor/...): in this process, as one process per
// step, or as Slurm job arrays.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kdcal/kdcal/internal/pipeline"
	"github.com/kdcal/kdcal/internal/version"
)

// StopGrace is how long a command may take to stop cleanly after SIGINT
// or SIGTERM before Main exits with ExitInterrupted anyway.
const StopGrace = time.Second

// Main runs kdcal with args (without the program name) and the study's
// pipeline (stage.All()), and returns the process exit code.
//
// SIGINT and SIGTERM cancel the command's context: training stops at the
// next batch, `kdcal run` signals its step processes. A command that has
// not returned StopGrace after the signal (reading a dataset, a long
// evaluation) is ended with ExitInterrupted: the store is built to survive
// kill -9 at any point (steps publish by rename, locks die with their
// process, a rerun resumes), so nothing finished is lost. A second signal
// after the first ends kdcal at once (the default action).
func Main(args []string, p *pipeline.Pipeline) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go exitAfterStop(ctx, stop, StopGrace, os.Stderr, os.Exit)
	return Run(ctx, p, args, os.Stdout, os.Stderr, os.Environ())
}

// exitAfterStop waits for ctx to be cancelled by a signal, restores the
// signals' default action (so that a second Ctrl-C kills at once), and
// calls exit(ExitInterrupted) if the command is still running grace later
// and holds no exitHold.
func exitAfterStop(ctx context.Context, stop func(), grace time.Duration, errw io.Writer, exit func(int)) {
	<-ctx.Done()
	stop()
	time.Sleep(grace)
	exitHold.wait()
	fmt.Fprintf(errw, "kdcal: interrupted; stopped after %s without waiting for the running step (finished steps are kept, a rerun resumes the rest)\n", grace)
	exit(ExitInterrupted)
}

// exitHold delays the stop watchdog while a cleanup that must not be cut
// short runs (the Slurm executor cancelling its jobs), for at most maxHold.
var exitHold holds

const maxHold = time.Minute

type holds struct {
	mu sync.Mutex
	n  int
	c  chan struct{} // closed when n drops to 0
}

// hold registers a cleanup; the returned function ends it.
func (h *holds) hold() func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		h.c = make(chan struct{})
	}
	h.n++
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.n--; h.n == 0 {
				close(h.c)
			}
		})
	}
}

// holdOnCancel holds the stop watchdog from ctx's cancellation until the
// returned function is called.
func holdOnCancel(ctx context.Context) (end func()) {
	ended, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		select {
		case <-ctx.Done():
			release := exitHold.hold()
			<-ended
			release()
		case <-ended:
		}
	}()
	return func() { close(ended); <-finished }
}

// wait returns when no cleanup is registered, or after maxHold.
func (h *holds) wait() {
	h.mu.Lock()
	c := h.c
	n := h.n
	h.mu.Unlock()
	if n == 0 {
		return
	}
	select {
	case <-c:
	case <-time.After(maxHold):
	}
}

// Run executes one kdcal command line with the pipeline p, the given
// streams and environment, and returns its exit code; errors are printed
// to errw.
func Run(ctx context.Context, p *pipeline.Pipeline, args []string, out, errw io.Writer, env []string) int {
	g := NewGlobals(out, errw, env)
	g.Pipe = p
	root := NewRootCmd(g)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil && strings.HasPrefix(err.Error(), "unknown command") {
		err = &UsageError{Err: err} // cobra's own argument errors are usage errors too
	}
	if err != nil && ctx.Err() != nil && !errors.Is(err, context.Canceled) {
		err = fmt.Errorf("%w: %w", context.Canceled, err)
	}
	code := ExitCode(err, g.isDataError)
	if err != nil {
		msg := err.Error()
		if code == ExitInterrupted {
			msg = "interrupted; finished steps are kept and a rerun resumes the rest"
		}
		fmt.Fprintf(g.Err, "kdcal: %s\n", indentJoined(msg))
		var ue *UsageError
		if errors.As(err, &ue) {
			fmt.Fprintf(g.Err, "Run '%s --help' for usage.\n", g.commandPath)
		}
	}
	return code
}

// indentJoined indents the continuation lines of errors.Join output.
func indentJoined(msg string) string {
	return strings.ReplaceAll(msg, "\n", "\n  ")
}

// NewRootCmd builds the whole command tree.
func NewRootCmd(g *Globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "kdcal",
		Short: "Knowledge-distillation calibration studies: teachers, calibration, students, report",
		Long: `kdcal runs knowledge-distillation calibration studies: does a bigger teacher make a
better student, and does calibrating the teacher change the answer?

It trains teachers of several sizes, calibrates each on a held-out validation split,
distills each (raw and calibrated) into one fixed student next to a scratch baseline,
and reports per-size tables, statistics and plots. Every stage reads and writes one
experiment directory (--experiment, default <experiments_dir>/<name>).

Configuration: built-in defaults (configs/default.yaml) < --config FILE <
KDCAL_* environment variables (KDCAL_DATA_DIR sets data.dir) < flags and --set key=value.
Unknown keys are errors.

` + exitCodeHelp,
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       version.Version(),
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			announceBLAS(g, cmd)
			return g.setup(cmd)
		},
	}
	root.SetVersionTemplate(`{{kdcalVersion}}`) // -v/--version print what `kdcal version` prints
	cobra.AddTemplateFunc("kdcalVersion", versionText)
	root.SetOut(g.Out)
	root.SetErr(g.Err)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &UsageError{Err: err} })
	g.addPersistentFlags(root)

	root.AddGroup(&cobra.Group{ID: "study", Title: "Study commands:"}, &cobra.Group{ID: "setup", Title: "Setup commands:"})
	for _, c := range []*cobra.Command{
		NewCmdTrainTeachers(g, nil),
		NewCmdCalibrate(g, nil),
		NewCmdDistill(g, nil),
		NewCmdReport(g, nil),
		NewCmdRun(g, nil),
	} {
		c.GroupID = "study"
		root.AddCommand(c)
	}
	root.AddCommand(NewCmdStep(g))
	for _, c := range []*cobra.Command{NewCmdData(g), NewCmdConfig(g), NewCmdVersion(g)} {
		c.GroupID = "setup"
		root.AddCommand(c)
	}
	root.SetCompletionCommandGroupID("setup")
	registerCompletions(g, root)
	return root
}

// Globals carries what every command shares: output streams, environment,
// the persistent flags, and the loaded configuration.
type Globals struct {
	Out, Err io.Writer
	Env      []string

	ConfigFile string   // --config
	Experiment string   // --experiment
	LogLevel   string   // --log-level
	Set        []string // --set key=value

	Log         *slog.Logger
	commandPath string

	// Pipe is the study's pipeline: its stages and the catalog of models
	// and datasets (stage.All(), from main).
	Pipe *pipeline.Pipeline
}

// isDataError reports a data error of the packages behind the pipeline.
func (g *Globals) isDataError(err error) bool {
	return g.Pipe != nil && g.Pipe.Catalog() != nil && g.Pipe.Catalog().IsDataError(err)
}

// catalog returns the pipeline's catalog, or an error when kdcal was built
// without one (a test's Globals).
func (g *Globals) catalog() (pipeline.Catalog, error) {
	if g.Pipe == nil || g.Pipe.Catalog() == nil {
		return nil, errors.New("this kdcal has no model and dataset catalog (internal/cli called without stage.All())")
	}
	return g.Pipe.Catalog(), nil
}

// NewGlobals returns Globals writing to out and errw.
func NewGlobals(out, errw io.Writer, env []string) *Globals {
	return &Globals{Out: out, Err: errw, Env: env, Log: slog.New(slog.NewTextHandler(errw, nil)), commandPath: "kdcal"}
}

func (g *Globals) addPersistentFlags(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVarP(&g.ConfigFile, "config", "c", "", "config file (YAML), e.g. configs/quick.yaml (default: built-in defaults, or $KDCAL_CONFIG)")
	f.StringVarP(&g.Experiment, "experiment", "e", "", "experiment directory (default: <experiments_dir>/<name> from the config)")
	f.StringVar(&g.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringArrayVar(&g.Set, "set", nil, "override a config key, e.g. --set kd.temperature=[2,4] (repeatable)")
}

func (g *Globals) setup(cmd *cobra.Command) error {
	g.commandPath = cmd.CommandPath()
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.LogLevel)); err != nil {
		return usageErrorf("--log-level %q: use debug, info, warn or error", g.LogLevel)
	}
	g.Log = slog.New(slog.NewTextHandler(g.Err, &slog.HandlerOptions{Level: lvl}))
	if g.ConfigFile == "" {
		for _, kv := range g.Env {
			if v, ok := strings.CutPrefix(kv, "KDCAL_CONFIG="); ok {
				g.ConfigFile = v
			}
		}
	}
	return nil
}

// groupRunE makes a command that only groups subcommands print its help when
// called alone and reject unknown subcommands as usage errors.
func groupRunE(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return cmd.Help()
}
