package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/runstore"
)

// Env is what a step runs in: the resolved configuration, the store, the
// plan, and how to log.
type Env struct {
	Cfg   *config.Config
	Store *runstore.Store
	Plan  *plan.Plan
	// ConfigFile is the store's copy of the resolved configuration
	// (configs/<hash>.yaml), which step processes are started with; empty
	// for a read-only Env.
	ConfigFile string
	// Force redoes steps that are already done (--force).
	Force bool
	Log   *slog.Logger
	// Progress is where training draws its progress bar (stderr).
	Progress io.Writer
	// ConfigFlag and ExperimentFlag are the --config and --experiment of
	// this invocation, repeated in hints so that they run as printed.
	ConfigFlag, ExperimentFlag string

	mu     sync.Mutex
	shared map[string]any
}

// Shared returns the value kept under key, calling load the first time: what
// several steps of one process read (the dataset's splits) is loaded once.
func (e *Env) Shared(key string, load func() (any, error)) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if v, ok := e.shared[key]; ok {
		return v, nil
	}
	v, err := load()
	if err != nil {
		return nil, err
	}
	if e.shared == nil {
		e.shared = map[string]any{}
	}
	e.shared[key] = v
	return v, nil
}

// ResolvedYAML renders a resolved configuration as YAML, as the store keeps
// it and `kdcal config show` prints it.
func ResolvedYAML(cfg *config.Config) ([]byte, error) {
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	return append([]byte("# resolved kdcal configuration (defaults < file < environment < flags)\n"), b...), nil
}

// IndentJSON is v as indented JSON with a trailing newline and "<", ">",
// "&" left as they are (a fit criterion reads "|Δ log T| < 1e-10"): the
// form of metrics.json and of every --json output.
func IndentJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
