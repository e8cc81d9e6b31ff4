package cli

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kdcal/kdcal/internal/calibrate"
	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/spec"
)

// Completion of flag values and arguments (`kdcal completion bash|zsh|fish`
// installs a script that calls `kdcal __complete …`).
//
// Values that depend on the study (sizes, settings, seeds, step keys) come
// from the configuration the completed command line would resolve: its
// --config / -c, --set, and the KDCAL_* environment, or the built-in
// defaults when that configuration does not load. Completing never writes
// anything, never opens the store, and never prints an error: a value that
// cannot be computed is simply not offered.

// completer returns the candidates for a flag's value, each "value" or
// "value\tdescription", given the configuration of the command line (nil
// when none could be resolved, not even the defaults).
type completer func(cfg *config.Config) []string

// registerCompletions registers the value completion of every flag of
// cmd and its subcommands that has one, by flag name; a command may
// override a name (cmdCompleters).
func registerCompletions(g *Globals, root *cobra.Command) {
	_ = root.RegisterFlagCompletionFunc("config", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	})
	_ = root.RegisterFlagCompletionFunc("experiment", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return nil, cobra.ShellCompDirectiveFilterDirs
	})
	_ = root.RegisterFlagCompletionFunc("log-level", fixedValues("debug", "info", "warn", "error"))
	for _, c := range allCommands(root) {
		for name, comp := range flagCompleters(c) {
			if c.Flags().Lookup(name) == nil {
				continue
			}
			_ = c.RegisterFlagCompletionFunc(name, valueCompletion(g, comp, isListFlag(c, name)))
		}
	}
	if step := findCommand(root, "step"); step != nil {
		step.ValidArgsFunction = func(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return filterPrefix(stepKeys(completionConfig(g)), toComplete), cobra.ShellCompDirectiveNoFileComp
		}
	}
}

// allCommands returns root and every command below it.
func allCommands(root *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{root}
	for _, c := range root.Commands() {
		out = append(out, allCommands(c)...)
	}
	return out
}

// findCommand returns root's direct subcommand called name.
func findCommand(root *cobra.Command, name string) *cobra.Command {
	for _, c := range root.Commands() {
		if c.Name() == name {
			return c
		}
	}
	return nil
}

// flagCompleters are the value completers of a command's own flags.
func flagCompleters(c *cobra.Command) map[string]completer {
	m := map[string]completer{
		"executor": func(*config.Config) []string {
			return []string{"local\tone kdcal process per step on this machine", "slurm\tone job array per stage"}
		},
		"seeds": seedValues,
	}
	switch c.Name() {
	case "run":
		m["stage"] = func(*config.Config) []string { return slices.Clone(plan.Stages) }
	case "train-teachers":
		m["sizes"] = definedSizes
	case "calibrate":
		m["method"] = func(*config.Config) []string { return methodValues() }
		m["teacher"] = func(cfg *config.Config) []string { return append([]string{"all\tteacher.sizes"}, definedSizes(cfg)...) }
	case "distill":
		m["teacher"] = func(cfg *config.Config) []string {
			return append([]string{"all\tevery size of teacher.sizes"}, configuredSizes(cfg)...)
		}
		m["arm"] = armValues
		m["setting"] = settingValues
	case "fetch":
		m["dataset"] = func(*config.Config) []string { return append(slices.Clone(config.Datasets), "all") }
	}
	return m
}

// isListFlag reports a flag that takes a comma-separated list.
func isListFlag(c *cobra.Command, name string) bool {
	if name == "teacher" && c.Name() == "calibrate" {
		return true // --teacher small,large (a string flag split by calibrate)
	}
	f := c.Flags().Lookup(name)
	return f != nil && strings.HasSuffix(f.Value.Type(), "Slice")
}

// valueCompletion turns a completer into a cobra completion function: the
// candidates that extend what is typed, and for a list flag the next item
// after the last comma (items already in the list are not offered again).
func valueCompletion(g *Globals, comp completer, list bool) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		cands := comp(completionConfig(g))
		if !list {
			return filterPrefix(cands, toComplete), cobra.ShellCompDirectiveNoFileComp
		}
		head, last := "", toComplete
		if i := strings.LastIndex(toComplete, ","); i >= 0 {
			head, last = toComplete[:i+1], toComplete[i+1:]
		}
		typed := strings.Split(strings.TrimSuffix(head, ","), ",")
		if slices.Contains(typed, "all") {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, c := range filterPrefix(cands, last) {
			v, _, _ := strings.Cut(c, "\t")
			if slices.Contains(typed, v) || (head != "" && v == "all") {
				continue
			}
			if head != "" {
				// Without the description: cobra's bash script compares a
				// described candidate escaped by printf %q ("raw\,scratch")
				// with the unescaped word ("raw,"), and would offer nothing.
				c = v
			}
			out = append(out, head+c)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// fixedValues completes one of a fixed set of values.
func fixedValues(values ...string) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		return filterPrefix(values, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// filterPrefix keeps the candidates whose value starts with prefix.
func filterPrefix(cands []string, prefix string) []string {
	var out []string
	for _, c := range cands {
		if v, _, _ := strings.Cut(c, "\t"); strings.HasPrefix(v, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// completionConfig resolves the configuration of the command line being
// completed (--config, or $KDCAL_CONFIG; KDCAL_*; --set), falling back to
// the built-in defaults when it does not load, and to nil when not even
// those do. It reads files only.
func completionConfig(g *Globals) *config.Config {
	file := g.ConfigFile
	if file == "" {
		for _, kv := range g.Env {
			if v, ok := strings.CutPrefix(kv, "KDCAL_CONFIG="); ok {
				file = v
			}
		}
	}
	src := config.Source{File: file, Env: g.Env, Set: map[string]string{}}
	for _, kv := range g.Set {
		if k, v, ok := strings.Cut(kv, "="); ok {
			src.Set[strings.TrimSpace(k)] = v
		}
	}
	if cfg, err := config.Load(src); err == nil {
		return cfg
	}
	if cfg, err := config.Load(config.Source{File: file}); err == nil {
		return cfg // the file alone, without a broken KDCAL_* or --set
	}
	if cfg, err := config.Load(config.Source{}); err == nil {
		return cfg
	}
	return nil
}

// definedSizes are the sizes of the teacher family's size table, each with
// its architecture.
func definedSizes(cfg *config.Config) []string {
	if cfg == nil {
		return nil
	}
	table := cfg.Teacher.Table()
	var out []string
	for _, name := range config.SortedNames(table) {
		out = append(out, name+"\t"+cfg.Teacher.Family+" "+specText(table[name]))
	}
	return out
}

// configuredSizes are teacher.sizes.
func configuredSizes(cfg *config.Config) []string {
	if cfg == nil {
		return nil
	}
	var out []string
	for _, name := range cfg.Teacher.Sizes {
		m, _ := cfg.Teacher.Spec(name)
		out = append(out, name+"\t"+cfg.Teacher.Family+" "+specText(m))
	}
	return out
}

// specText describes an architecture in a few words, e.g. "conv 8,16 hidden 64".
// The spec's keys are listed conv and hidden first, then any other
// family's keys by name.
func specText(s config.ModelSpec) string {
	keys := slices.Sorted(maps.Keys(s))
	slices.SortStableFunc(keys, func(a, b string) int { return rank(a) - rank(b) })
	var parts []string
	for _, k := range keys {
		if xs, _ := spec.Ints(s[k]); len(xs) > 0 {
			parts = append(parts, k+" "+joinInts(xs))
		}
	}
	return strings.Join(parts, " ")
}

func rank(key string) int {
	switch key {
	case "conv":
		return 0
	case "hidden":
		return 1
	}
	return 2
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// seedValues are the configured seeds.
func seedValues(cfg *config.Config) []string {
	if cfg == nil {
		return nil
	}
	var out []string
	for _, s := range cfg.Seeds {
		out = append(out, strconv.Itoa(s))
	}
	return out
}

// armValues are all and the arms of kd.arms.
func armValues(cfg *config.Config) []string {
	desc := map[string]string{
		config.ArmRaw:        "from the teacher's stored logits",
		config.ArmCalibrated: "from the logits after the fitted calibrator",
		config.ArmScratch:    "no teacher (cross-entropy only)",
	}
	arms := config.Arms
	if cfg != nil {
		arms = cfg.KD.Arms
	}
	out := []string{"all\tevery arm of kd.arms"}
	for _, a := range arms {
		out = append(out, a+"\t"+desc[a])
	}
	return out
}

// settingValues are all and the KD settings of the configuration.
func settingValues(cfg *config.Config) []string {
	if cfg == nil {
		return nil
	}
	out := []string{"all\tevery KD setting"}
	for _, s := range plan.Settings(cfg) {
		tau := fmt.Sprintf("τ=%g", s.Tau)
		if s.Tau == 0 {
			tau = "no τ"
		}
		out = append(out, fmt.Sprintf("%s\t%s loss, %s, kd_weight %g, %d epochs", s.Name(), s.Loss, tau, s.KDWeight, s.Epochs))
	}
	return out
}

// methodValues are the calibration methods.
func methodValues() []string {
	desc := map[string]string{
		"none":     "identity",
		"temp":     "temperature scaling",
		"vector":   "vector scaling",
		"matrix":   "matrix scaling",
		"hist":     "histogram binning",
		"isotonic": "isotonic regression",
	}
	var out []string
	for _, m := range calibrate.Methods() {
		if d, ok := desc[m]; ok {
			out = append(out, m+"\t"+d)
		} else {
			out = append(out, m)
		}
	}
	return out
}

// stepKeys are the keys of the configuration's plan, for `kdcal step`.
func stepKeys(cfg *config.Config) []string {
	if cfg == nil {
		return nil
	}
	p := plan.Build(cfg)
	out := make([]string, len(p.Steps))
	for i, s := range p.Steps {
		out[i] = s.Key + "\t" + s.String()
	}
	return out
}
