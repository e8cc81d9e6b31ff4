package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/kdcal/kdcal/configs"
	"github.com/kdcal/kdcal/internal/spec"
)

// EnvPrefix prefixes every environment variable kdcal reads as configuration.
const EnvPrefix = "KDCAL_"

// EnvConfigFile names a config file when --config is not given.
const EnvConfigFile = "KDCAL_CONFIG"

// Source says where configuration comes from, beyond the built-in defaults.
type Source struct {
	// File is a YAML config file; empty means defaults only.
	File string
	// Env holds "NAME=value" pairs, normally os.Environ(). Only names with
	// EnvPrefix are considered; an unknown one is an error.
	Env []string
	// Set holds key=value overrides from flags (highest precedence). Values
	// are parsed as YAML, so "[2, 4]", "2,4" and "0.5" all work.
	Set map[string]string
	// SetOrigin names the flag behind each Set key, for error messages;
	// missing entries read "--set".
	SetOrigin map[string]string
}

// Error is a configuration problem: an unknown key, a value that cannot be
// decoded, or a value out of range. Source names the file, environment
// variable or flag it came from.
type Error struct {
	Source  string // e.g. "configs/quick.yaml", "environment variable KDCAL_SEEDZ", "flag --set"
	Key     string // dotted key, e.g. "teacher.train.lr"
	Msg     string // what is wrong and what to do
	Suggest string // nearest valid key, for unknown keys
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Source != "" {
		b.WriteString(e.Source)
		b.WriteString(": ")
	}
	if e.Key != "" {
		fmt.Fprintf(&b, "%s: ", e.Key)
	}
	b.WriteString(e.Msg)
	if e.Suggest != "" {
		fmt.Fprintf(&b, " (did you mean %q?)", e.Suggest)
	}
	return b.String()
}

// Load resolves defaults < file < environment < flags into a validated Config.
// Every error it returns wraps one or more *Error. Each source's values are
// converted to the types of their keys before they are layered (see
// decode.go), so a value of the wrong type is an error naming its source.
func Load(src Source) (*Config, error) {
	var body []byte
	if src.File != "" {
		b, err := os.ReadFile(src.File)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, &Error{Source: src.File, Msg: "config file not found (presets live in configs/, e.g. --config configs/quick.yaml)"}
			}
			return nil, &Error{Source: src.File, Msg: strings.TrimPrefix(err.Error(), "read "+src.File+": ")}
		}
		body = b
	}
	return load(src, body)
}

// load is Load with the config file's content already read.
func load(src Source, body []byte) (*Config, error) {
	v := viper.New()
	root, err := defaultsNode()
	if err == nil {
		err = mergeNode(v, "built-in defaults (configs/default.yaml)", root)
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if src.File != "" {
		root, err := parseYAML(src.File, body)
		if err != nil {
			return nil, err
		}
		if v, err = replaceStudentModel(v, src.File, root); err != nil {
			return nil, err
		}
		if err := mergeNode(v, src.File, root); err != nil {
			return nil, err
		}
	}
	if err := applyEnv(v, src.Env); err != nil {
		return nil, err
	}
	if err := applySet(v, src); err != nil {
		return nil, err
	}
	var c Config
	if err := v.UnmarshalExact(&c); err != nil {
		// Unreachable: every value was converted to its key's type above.
		return nil, &Error{Source: describeSources(src), Msg: "internal error, please report it: the checked values do not decode: " + err.Error()}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Default returns the built-in defaults as a Config.
func Default() *Config {
	c, err := Load(Source{})
	if err != nil {
		panic("config: built-in defaults do not load: " + err.Error())
	}
	return c
}

// defaultsNode is configs/default.yaml, parsed once.
var defaultsNode = sync.OnceValues(func() (*yaml.Node, error) {
	return parseYAML("built-in defaults (configs/default.yaml)", configs.Default())
})

// parseYAML parses a config file's one YAML document.
func parseYAML(source string, b []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, &Error{Source: source, Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	root := deref(&doc)
	if root.Kind == 0 || isNull(root) {
		return nil, &Error{Source: source, Msg: "the config file is empty (or holds only comments); " +
			"list the keys that differ from the defaults (see configs/quick.yaml), or leave out --config to use the defaults"}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &Error{Source: source, Msg: "holds more than one YAML document (a second '---'); kdcal reads one: merge them"}
	}
	return root, nil
}

// mergeNode checks every key and value of a parsed file against the Config
// tree and merges the result into v.
func mergeNode(v *viper.Viper, source string, root *yaml.Node) error {
	d := &decoder{source: source, lines: true}
	tree, ok := d.value("", typeConfig, root)
	if len(d.errs) > 0 {
		return errors.Join(d.errs...)
	}
	if ok {
		return v.MergeConfigMap(tree.(map[string]any))
	}
	return nil
}

// replaceStudentModel makes a file that changes student.family replace
// student.model whole instead of merging into it: the keys are the new
// family's (a resnet's {depth, width} must not inherit the mlp default's
// conv and hidden). It returns v without the old student.model when the
// file names another family and gives a student.model, else v itself (so a
// file that only changes an mlp's hidden widths keeps the defaults' other
// keys, and its step hashes). Environment variables and --set change
// single keys.
func replaceStudentModel(v *viper.Viper, source string, root *yaml.Node) (*viper.Viper, error) {
	fam := valueAt(root, "student", "family")
	if !hasNodePath(root, "student", "model") || fam == nil || fam.Value == v.GetString("student.family") {
		return v, nil
	}
	all := v.AllSettings()
	if st, ok := all["student"].(map[string]any); ok {
		delete(st, "model")
	}
	nv := viper.New()
	if err := nv.MergeConfigMap(all); err != nil {
		return nil, &Error{Source: source, Key: "student.model", Msg: err.Error()}
	}
	return nv, nil
}

// hasNodePath reports whether the mapping root has the nested keys path.
func hasNodePath(root *yaml.Node, path ...string) bool { return valueAt(root, path...) != nil }

// valueAt returns the node at the nested keys path of the mapping root, or nil.
func valueAt(root *yaml.Node, path ...string) *yaml.Node {
	n := deref(root)
	for _, k := range path {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = deref(n.Content[i+1])
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

func unknownKey(source, path string) *Error {
	return &Error{Source: source, Key: path, Msg: "unknown key", Suggest: Nearest(path)}
}

// applyEnv sets every key named by a KDCAL_ variable in env and reports
// variables that match no key. Text keys take the value verbatim; others
// parse it as YAML, like --set. The variables come from Source.Env rather
// than viper's AutomaticEnv so that the layering is explicit and testable.
func applyEnv(v *viper.Viper, env []string) error {
	var errs []error
	known := map[string]string{}
	for _, k := range LeafKeys() {
		known[EnvName(k)] = k
	}
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) || name == EnvConfigFile {
			continue
		}
		if key, ok := known[name]; ok {
			if err := setValue(v, "environment variable "+name, key, value); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		key := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, EnvPrefix), "_", "."))
		e := &Error{Source: "environment variable " + name, Msg: "matches no configuration key"}
		if s := Nearest(key); s != "" {
			e.Suggest = EnvName(s)
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// setValue converts one environment or flag value for key and sets it.
func setValue(v *viper.Viper, source, key, value string) error {
	t, ok := typeAt(key)
	if !ok {
		return unknownKey(source, key)
	}
	if t == typeString {
		v.Set(key, value)
		return nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(value), &doc); err != nil {
		return &Error{Source: source, Key: key, Msg: fmt.Sprintf("value %q is not valid YAML: %s", value, strings.TrimPrefix(err.Error(), "yaml: "))}
	}
	n := deref(&doc)
	if n.Kind == 0 {
		n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	}
	d := &decoder{source: source, csv: true}
	val, ok := d.value(key, t, n)
	if len(d.errs) > 0 {
		return errors.Join(d.errs...)
	}
	if ok {
		v.Set(key, val)
	}
	return nil
}

// EnvName returns the environment variable that sets a dotted key.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

func applySet(v *viper.Viper, src Source) error {
	keys := make([]string, 0, len(src.Set))
	for k := range src.Set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		origin := src.SetOrigin[k]
		if origin == "" {
			origin = "flag --set"
		}
		key := strings.ToLower(strings.TrimSpace(k))
		if !KnownKey(key) {
			errs = append(errs, unknownKey(origin, key))
			continue
		}
		if err := setValue(v, origin, key, src.Set[k]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func describeSources(src Source) string {
	parts := []string{"defaults"}
	if src.File != "" {
		parts = append(parts, src.File)
	}
	parts = append(parts, "environment", "flags")
	return "config (" + strings.Join(parts, " < ") + ")"
}

// keyTree returns the set of valid dotted keys, with "*" for the keys of a
// map: the Config tree, and for every registered family its size table
// teacher.<family>.* and its spec keys there and under student.model.
func keyTree() []string {
	out := buildKeys(reflect.TypeOf(Config{}), "")
	for _, name := range spec.FamilyNames() {
		f, _ := spec.LookupFamily(name)
		out = append(out, "teacher."+name, "teacher."+name+".*")
		for _, k := range f.Keys() {
			out = append(out, "teacher."+name+".*."+k.Name, "student.model."+k.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func buildKeys(t reflect.Type, prefix string) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := f.Tag.Get("mapstructure")
		if name == "" || name == "-" || strings.HasPrefix(name, ",") {
			continue
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		out = append(out, path)
		ft := f.Type
		switch {
		case ft.Kind() == reflect.Struct:
			out = append(out, buildKeys(ft, path)...)
		case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Struct:
			out = append(out, path+".*")
			out = append(out, buildKeys(ft.Elem(), path+".*")...)
		}
	}
	return out
}

// KnownKey reports whether a dotted key (lowercase) is part of the Config tree.
func KnownKey(key string) bool {
	for _, k := range keyTree() {
		if matchKey(k, key) {
			return true
		}
	}
	return false
}

func matchKey(pattern, key string) bool {
	p, k := strings.Split(pattern, "."), strings.Split(key, ".")
	if len(p) != len(k) {
		return false
	}
	for i := range p {
		if p[i] != "*" && p[i] != k[i] {
			return false
		}
	}
	return true
}

// LeafKeys lists the concrete leaf keys of the defaults (map entries expanded).
func LeafKeys() []string { return slices.Clone(leafKeys()) }

var leafKeys = sync.OnceValue(func() []string {
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(configs.Default())); err != nil {
		panic("config: built-in defaults: " + err.Error())
	}
	keys := v.AllKeys()
	sort.Strings(keys)
	return keys
})

// Nearest returns the valid key closest to key by edit distance, with map
// wildcards filled from key itself, or "" when nothing is reasonably close.
func Nearest(key string) string {
	best, bestD := "", -1
	ks := strings.Split(key, ".")
	for _, pat := range keyTree() {
		ps := strings.Split(pat, ".")
		for i := range ps {
			if ps[i] == "*" && i < len(ks) {
				ps[i] = ks[i]
			}
		}
		cand := strings.Join(ps, ".")
		if strings.Contains(cand, "*") {
			continue
		}
		if d := levenshtein(key, cand); bestD < 0 || d < bestD {
			best, bestD = cand, d
		}
	}
	if bestD < 0 || bestD > max(3, len(key)/2) {
		return ""
	}
	return best
}

// levenshtein is the classic edit distance (insert, delete, substitute = 1).
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
