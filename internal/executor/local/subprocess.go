package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kdcal/kdcal/internal/executor"
	"github.com/kdcal/kdcal/internal/plan"
)

// Subprocess runs each step as `<Exe> step <key> <Args...>` in its own
// process: a crash or an OpenBLAS thread pool stays inside one step, and
// steps use separate heaps (two processes train about 2× faster than two
// goroutines; gorgonia-notes §9). The child is killed if this process dies
// (Linux PR_SET_PDEATHSIG), and on cancellation gets SIGTERM, then SIGKILL
// after Grace; its own checkpoints make either safe.
//
// Each attempt at a step writes its own log, LogDir/<flat key>.<UTC
// time>-<pid>.log (flat key: the key with / → __), and LogDir/<flat
// key>.log is a symbolic link to the latest attempt, so two kdcal
// processes never write into one log. An attempt that finds the step busy
// (the child exits with BusyExitCode) leaves no log behind.
type Subprocess struct {
	Exe    string   // kdcal binary
	Args   []string // arguments after the key, e.g. --config F --experiment D
	Env    []string // environment (OPENBLAS_NUM_THREADS is set from BLASThreads)
	LogDir string   // directory of the per-attempt logs
	// BLASThreads per step (OPENBLAS_NUM_THREADS, GOMAXPROCS stays default).
	BLASThreads int
	// Grace between SIGTERM and SIGKILL on cancellation (default 30 s).
	Grace time.Duration
	// BusyExitCode is the child's exit status when another process holds
	// the step's lock; Run then returns an error wrapping executor.ErrBusy. 0: none.
	BusyExitCode int

	mu   sync.Mutex
	logs map[string]string // key → this run's latest attempt log
}

// LogPath returns the log of this run's latest attempt at a step, or the
// link to the latest attempt of any run when this one has none.
func (p *Subprocess) LogPath(key string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l, ok := p.logs[key]; ok {
		return l
	}
	return p.linkPath(key)
}

func (p *Subprocess) linkPath(key string) string {
	return filepath.Join(p.LogDir, flatKey(key)+".log")
}

func flatKey(key string) string { return strings.ReplaceAll(key, "/", "__") }

// ExitError is a step process that exited with a non-zero status.
type ExitError struct {
	Key     string
	Code    int    // its exit status (-1: killed by a signal)
	Log     string // the attempt's log
	Message string // the error the process printed last ("kdcal: …", without the prefix); "" if none
	Err     error  // from os/exec
}

// Error is "<exit status>; last lines of <log>:" and the log's last 8 lines.
func (e *ExitError) Error() string {
	return fmt.Sprintf("%v; last lines of %s:\n%s", e.Err, e.Log, tail(e.Log, 8))
}

func (e *ExitError) Unwrap() error { return e.Err }

// Run runs step s as a child process and waits for it; a non-zero exit is
// an *ExitError, or an error wrapping executor.ErrBusy for BusyExitCode.
func (p *Subprocess) Run(ctx context.Context, s plan.Step) error {
	logf, logPath, prevLink, err := p.openAttemptLog(s.Key)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== %s %s (kdcal run pid %d)\n", time.Now().UTC().Format(time.RFC3339), s.Key, os.Getpid())
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
		code := -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		if p.BusyExitCode != 0 && code == p.BusyExitCode {
			p.dropAttemptLog(s.Key, logPath, prevLink)
			return fmt.Errorf("%s: %w", s.Key, executor.ErrBusy)
		}
		return &ExitError{Key: s.Key, Code: code, Log: logPath, Message: lastMessage(logPath), Err: err}
	}
	return nil
}

// openAttemptLog creates this attempt's log and points the step's link at
// it, returning the link's previous target ("" when there was none). A
// log from before per-attempt logs (a regular file where the link goes) is
// kept under an attempt name of its modification time.
func (p *Subprocess) openAttemptLog(key string) (*os.File, string, string, error) {
	if err := os.MkdirAll(p.LogDir, 0o755); err != nil {
		return nil, "", "", err
	}
	link := p.linkPath(key)
	if fi, err := os.Lstat(link); err == nil && fi.Mode().IsRegular() {
		old := filepath.Join(p.LogDir, flatKey(key)+"."+fi.ModTime().UTC().Format(stampLayout)+"-legacy.log")
		if err := os.Rename(link, old); err != nil {
			return nil, "", "", fmt.Errorf("keep the old log %s: %w", link, err)
		}
		if err := os.Symlink(filepath.Base(old), link); err != nil {
			return nil, "", "", err
		}
	}
	f, name, err := p.createAttempt(key)
	if err != nil {
		return nil, "", "", err
	}
	path := filepath.Join(p.LogDir, name)
	prev, _ := os.Readlink(link)
	if err := replaceLink(name, link); err != nil {
		f.Close()
		return nil, "", "", err
	}
	p.mu.Lock()
	if p.logs == nil {
		p.logs = map[string]string{}
	}
	p.logs[key] = path
	p.mu.Unlock()
	return f, path, prev, nil
}

// createAttempt creates a new log <flat key>.<time>-<pid>[-n].log.
func (p *Subprocess) createAttempt(key string) (*os.File, string, error) {
	base := fmt.Sprintf("%s.%s-%d", flatKey(key), time.Now().UTC().Format(stampLayout), os.Getpid())
	for n := 1; ; n++ {
		name := base + ".log"
		if n > 1 {
			name = fmt.Sprintf("%s-%d.log", base, n)
		}
		f, err := os.OpenFile(filepath.Join(p.LogDir, name), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
		if !errors.Is(err, os.ErrExist) || n == 100 {
			return f, name, err
		}
	}
}

// dropAttemptLog removes the log of an attempt that found the step busy and
// points the link back at the previous attempt, unless another attempt
// has replaced it meanwhile.
func (p *Subprocess) dropAttemptLog(key, path, prev string) {
	link := p.linkPath(key)
	if cur, err := os.Readlink(link); err == nil && cur == filepath.Base(path) {
		if prev != "" {
			replaceLink(prev, link)
		} else {
			os.Remove(link)
		}
	}
	os.Remove(path)
	p.mu.Lock()
	delete(p.logs, key)
	p.mu.Unlock()
}

// stampLayout names attempt logs: UTC time to the millisecond, sortable.
const stampLayout = "20060102T150405.000Z"

// replaceLink atomically makes link a symbolic link to target.
func replaceLink(target, link string) error {
	tmp := fmt.Sprintf("%s.tmp-%d", link, os.Getpid())
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// lastMessage returns the last error kdcal printed into a log: the last line
// starting with "kdcal: " and its indented continuation lines (several
// joined errors), without the prefix; "" when there is none.
func lastMessage(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if msg, ok := strings.CutPrefix(lines[i], "kdcal: "); ok {
			var more []string
			for _, l := range lines[i+1:] {
				if !strings.HasPrefix(l, "  ") {
					break
				}
				more = append(more, strings.TrimPrefix(l, "  "))
			}
			return strings.Join(append([]string{msg}, more...), "\n")
		}
	}
	return ""
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
