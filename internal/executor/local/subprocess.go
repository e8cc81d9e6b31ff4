package local

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kdcal/kdcal/internal/plan"
)

// Subprocess runs each step as `<Exe> step <key> <Args...>` in its own
// process: a crash or an OpenBLAS thread pool stays inside one step, and
// steps use separate heaps (two processes train about 2× faster than two
// goroutines; gorgonia-notes §9). The child is killed if this process dies
// (Linux PR_SET_PDEATHSIG), and on cancellation gets SIGTERM, then SIGKILL
// after Grace; its own checkpoints make either safe.
type Subprocess struct {
	Exe    string   // kdcal binary
	Args   []string // arguments after the key, e.g. --config F --experiment D
	Env    []string // environment (OPENBLAS_NUM_THREADS is set from BLASThreads)
	LogDir string   // each step's stdout+stderr go to LogDir/<key with / → __>.log
	// BLASThreads per step (OPENBLAS_NUM_THREADS, GOMAXPROCS stays default).
	BLASThreads int
	// Grace between SIGTERM and SIGKILL on cancellation.
	Grace time.Duration
}

// LogPath returns the log file of a step.
func (p *Subprocess) LogPath(key string) string {
	return filepath.Join(p.LogDir, strings.ReplaceAll(key, "/", "__")+".log")
}

// Run implements Runner.
func (p *Subprocess) Run(ctx context.Context, s plan.Step) error {
	if err := os.MkdirAll(p.LogDir, 0o755); err != nil {
		return err
	}
	logPath := p.LogPath(s.Key)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== %s %s\n", time.Now().UTC().Format(time.RFC3339), s.Key)
	cmd := exec.Command(p.Exe, append([]string{"step", s.Key}, p.Args...)...)
	threads := max(p.BLASThreads, 1)
	cmd.Env = append(append([]string{}, p.Env...), fmt.Sprintf("OPENBLAS_NUM_THREADS=%d", threads))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Exe, err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err = <-waitErr:
	case <-ctx.Done():
		cmd.Process.Signal(syscall.SIGTERM)
		grace := p.Grace
		if grace <= 0 {
			grace = 30 * time.Second
		}
		select {
		case err = <-waitErr:
		case <-time.After(grace):
			cmd.Process.Kill()
			err = <-waitErr
		}
		return fmt.Errorf("%w (log: %s)", ctx.Err(), logPath)
	}
	if err != nil {
		return fmt.Errorf("%v; last lines of %s:\n%s", err, logPath, tail(logPath, 8))
	}
	return nil
}

// tail returns the last n lines of a file, indented.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "  (log unreadable: " + err.Error() + ")"
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + string(bytes.Join(lines, []byte("\n  ")))
}
