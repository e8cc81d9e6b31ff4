package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/pipeline"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/runstore"
)

// Override sets one config key from a dedicated flag (e.g. --seeds sets seeds).
type Override struct {
	Key   string // dotted config key
	Value string // YAML value
	Flag  string // the flag it came from, for error messages
}

// LoadConfig resolves defaults < --config < environment < flags (the
// command's own overrides, then --set) into a validated Config.
func (g *Globals) LoadConfig(overrides ...Override) (*config.Config, error) {
	src := config.Source{File: g.ConfigFile, Env: g.Env, Set: map[string]string{}, SetOrigin: map[string]string{}}
	for _, o := range overrides {
		src.Set[o.Key] = o.Value
		src.SetOrigin[o.Key] = "flag --" + o.Flag
	}
	for _, kv := range g.Set {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usageErrorf("--set %q: use --set key=value, e.g. --set kd.temperature=[2,4]", kv)
		}
		src.Set[strings.TrimSpace(k)] = v
		src.SetOrigin[strings.TrimSpace(k)] = "flag --set " + strings.TrimSpace(k)
	}
	return config.Load(src)
}

// ExperimentDir returns --experiment, or <experiments_dir>/<name>.
func (g *Globals) ExperimentDir(cfg *config.Config) string {
	if g.Experiment != "" {
		return g.Experiment
	}
	return filepath.Join(cfg.ExperimentsDir, cfg.Name)
}

// OpenStore opens the experiment directory of cfg for writing and records
// the resolved configuration: configs/<hash>.yaml keeps every configuration
// the store was written with (none is overwritten), config.yaml is the
// latest. A path that is not a kdcal store (a file, a directory of other
// files, a symbolic-link loop) is a *runstore.ForeignError and nothing is
// written. It returns the store and the file of the configuration.
func (g *Globals) OpenStore(cfg *config.Config) (*runstore.Store, string, error) {
	st, err := runstore.Open(g.ExperimentDir(cfg))
	if err != nil {
		return nil, "", err
	}
	path, err := recordConfig(st, cfg)
	if err != nil {
		return nil, "", err
	}
	return st, path, nil
}

// recordConfig keeps cfg in the store's configuration history and makes it
// the store's config.yaml (written only when it changes). A config.yaml
// from before the history is imported first, so that it is not lost.
func recordConfig(st *runstore.Store, cfg *config.Config) (string, error) {
	b, err := ResolvedYAML(cfg)
	if err != nil {
		return "", err
	}
	latest := filepath.Join(st.Root, "config.yaml")
	if err := importLegacyConfig(st, latest); err != nil {
		return "", err
	}
	path, err := st.RecordConfig(runstore.Hash(cfg), b, time.Now(), strings.Join(os.Args, " "))
	if err != nil {
		return "", err
	}
	if old, err := os.ReadFile(latest); err == nil && bytes.Equal(old, b) {
		return path, nil
	}
	return path, atomicfile.Write(latest, b)
}

// importLegacyConfig copies the config.yaml of a store from before
// runstore.ConfigsDir into the history, under its hash when this kdcal can
// read it and under "unreadable-<sha256>" otherwise.
func importLegacyConfig(st *runstore.Store, latest string) error {
	if _, err := os.Stat(filepath.Join(st.Root, runstore.ConfigsDir)); err == nil {
		return nil
	}
	b, err := os.ReadFile(latest)
	if err != nil {
		return nil // a new store: nothing to import
	}
	when := time.Now()
	if fi, err := os.Stat(latest); err == nil {
		when = fi.ModTime()
	}
	note := "imported from config.yaml (written before kdcal kept a configuration history)"
	hash := ""
	if cfg, err := config.Load(config.Source{File: latest}); err == nil {
		hash = runstore.Hash(cfg)
	} else {
		sum := sha256.Sum256(b)
		hash = "unreadable-" + hex.EncodeToString(sum[:8])
		note += "; this kdcal cannot load it: " + err.Error()
	}
	_, err = st.RecordConfig(hash, b, when, note)
	return err
}

// ResolvedYAML renders a resolved configuration as YAML.
func ResolvedYAML(cfg *config.Config) ([]byte, error) { return pipeline.ResolvedYAML(cfg) }

// NewEnv loads the configuration (with overrides), opens the store for
// writing (recording the configuration) and builds the plan.
func (g *Globals) NewEnv(overrides ...Override) (*pipeline.Env, error) {
	cfg, err := g.LoadConfig(overrides...)
	if err != nil {
		return nil, err
	}
	store, path, err := g.OpenStore(cfg)
	if err != nil {
		return nil, err
	}
	return g.env(cfg, store, path), nil
}

// NewReadEnv is NewEnv for commands that only read the store (run
// --dry-run): it checks the experiment directory as a real run would, but
// creates and writes nothing, so it works on a read-only store.
func (g *Globals) NewReadEnv(overrides ...Override) (*pipeline.Env, error) {
	cfg, err := g.LoadConfig(overrides...)
	if err != nil {
		return nil, err
	}
	root := g.ExperimentDir(cfg)
	if _, err := runstore.CheckStoreDir(root); err != nil {
		return nil, err
	}
	return g.env(cfg, &runstore.Store{Root: root}, ""), nil
}

func (g *Globals) env(cfg *config.Config, store *runstore.Store, configFile string) *pipeline.Env {
	return &pipeline.Env{Cfg: cfg, Store: store, Plan: plan.Build(cfg), ConfigFile: configFile, Log: g.Log, Progress: g.Err,
		ConfigFlag: g.ConfigFile, ExperimentFlag: g.Experiment}
}

// intList renders ints as a YAML flow list.
func intList(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprint(x)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// stringList renders strings as a YAML flow list.
func stringList(xs []string) string {
	return "[" + strings.Join(xs, ", ") + "]"
}
