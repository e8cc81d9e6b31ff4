package cli

import (
	"fmt"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/config"
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

// OpenStore opens the experiment directory of cfg and records the resolved
// configuration in its config.yaml.
func (g *Globals) OpenStore(cfg *config.Config) (*runstore.Store, error) {
	st, err := runstore.Open(g.ExperimentDir(cfg))
	if err != nil {
		return nil, err
	}
	b, err := ResolvedYAML(cfg)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(st.Root, "config.yaml"), b); err != nil {
		return nil, err
	}
	return st, nil
}

// ResolvedYAML renders a resolved configuration as YAML.
func ResolvedYAML(cfg *config.Config) ([]byte, error) {
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	return append([]byte("# resolved kdcal configuration (defaults < file < environment < flags)\n"), b...), nil
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
