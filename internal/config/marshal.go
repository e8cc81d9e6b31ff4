package config

import (
	"encoding/json"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/kdcal/kdcal/internal/spec"
)

// The resolved configuration is written as YAML (config.yaml, `kdcal config
// show`) and hashed as JSON (the report's config hash). Teacher and Student
// hold specs as generic maps; these methods write each spec as its family's
// typed HashKey, the size tables in the order of Families (then any other
// family by name), so that both renderings are what they were when each
// family was a Go field (teacher.mlp, teacher.cnn of config.ModelSpec).

// tableNames lists the families of t's size tables: the built-in ones in
// Families order, then the others sorted.
func (t Teacher) tableNames() []string {
	var out []string
	for _, f := range Families {
		if _, ok := t.Tables[f]; ok {
			out = append(out, f)
		}
	}
	var rest []string
	for f := range t.Tables {
		if !slices.Contains(Families, f) {
			rest = append(rest, f)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

func typedTable(family string, table map[string]ModelSpec) map[string]any {
	out := make(map[string]any, len(table))
	for size, s := range table {
		out[size] = spec.HashKey(family, s)
	}
	return out
}

// MarshalJSON writes {"Source", "ExternalDir", "Family", "Sizes", "<FAMILY>": {size: spec}…, "Train"}.
func (t Teacher) MarshalJSON() ([]byte, error) {
	b := []byte(`{"Source":`)
	add := func(key string, v any) error {
		j, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if key != "" {
			b = append(b, ',')
			b = append(b, []byte(`"`+key+`":`)...)
		}
		b = append(b, j...)
		return nil
	}
	if err := add("", t.Source); err != nil {
		return nil, err
	}
	if err := add("ExternalDir", t.ExternalDir); err != nil {
		return nil, err
	}
	if err := add("Family", t.Family); err != nil {
		return nil, err
	}
	if err := add("Sizes", t.Sizes); err != nil {
		return nil, err
	}
	for _, f := range t.tableNames() {
		if err := add(strings.ToUpper(f), typedTable(f, t.Tables[f])); err != nil {
			return nil, err
		}
	}
	if err := add("Train", t.Train); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// MarshalYAML writes source, external_dir, family, sizes, each size table, train.
func (t Teacher) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	add := func(key string, v any) error {
		var val yaml.Node
		if err := val.Encode(v); err != nil {
			return err
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, &val)
		return nil
	}
	if err := add("source", t.Source); err != nil {
		return nil, err
	}
	if err := add("external_dir", t.ExternalDir); err != nil {
		return nil, err
	}
	if err := add("family", t.Family); err != nil {
		return nil, err
	}
	if err := add("sizes", t.Sizes); err != nil {
		return nil, err
	}
	for _, f := range t.tableNames() {
		if err := add(f, typedTable(f, t.Tables[f])); err != nil {
			return nil, err
		}
	}
	if err := add("train", t.Train); err != nil {
		return nil, err
	}
	return n, nil
}

// studentOut is Student with its spec typed by its family.
type studentOut struct {
	Family string `yaml:"family"`
	Model  any    `yaml:"model"`
	Train  Train  `yaml:"train"`
}

func (s Student) typed() studentOut {
	return studentOut{Family: s.Family, Model: spec.HashKey(s.Family, s.Model), Train: s.Train}
}

// MarshalJSON writes {"Family", "Model", "Train"}.
func (s Student) MarshalJSON() ([]byte, error) { return json.Marshal(s.typed()) }

// MarshalYAML writes family, model, train.
func (s Student) MarshalYAML() (any, error) { return s.typed(), nil }

// MarshalJSON writes Train with init left out at its default (he), so that
// step and configuration hashes of recipes that do not set it are what they
// were before the key existed.
func (t Train) MarshalJSON() ([]byte, error) {
	type plain Train
	out := struct {
		plain
		Init string `json:",omitempty"`
	}{plain: plain(t), Init: t.Init}
	if out.Init == InitHe {
		out.Init = ""
	}
	return json.Marshal(out)
}

// MarshalJSON writes Data with normalize left out at its default
// (standardize), for the same reason as Train's.
func (d Data) MarshalJSON() ([]byte, error) {
	type plain Data
	out := struct {
		plain
		Normalize string `json:",omitempty"`
	}{plain: plain(d), Normalize: d.Normalize}
	if out.Normalize == NormalizeStandardize {
		out.Normalize = ""
	}
	return json.Marshal(out)
}
