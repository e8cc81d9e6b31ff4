package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/kdcal/kdcal/configs"
)

// internalText is text of the decoding libraries that must never reach a
// user: every error names a source, a key and what was expected instead.
var internalText = []string{"mapstructure", "expected type", "invalid keys", "cannot unmarshal", "reflect", "'' has", "interface {}"}

func checkLoadError(t *testing.T, err error) {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *config.Error", err, err)
	}
	for _, s := range internalText {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("error holds decoder-internal text %q: %v", s, err)
		}
	}
}

// checkRoundTrip writes a loaded configuration as YAML (as `kdcal config
// show` and the store's config.yaml do) and loads that file: the result must
// be the same configuration.
func checkRoundTrip(t *testing.T, c *Config) {
	t.Helper()
	b, err := yaml.Marshal(c)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	c2, err := load(Source{File: "resolved.yaml"}, b)
	if err != nil {
		t.Fatalf("the resolved configuration does not load back: %v\n%s", err, b)
	}
	if !reflect.DeepEqual(normalise(c), normalise(c2)) {
		t.Fatalf("round trip changed the configuration:\n%+v\n%+v", c, c2)
	}
}

// normalise makes empty and nil lists compare equal.
func normalise(c *Config) *Config {
	b, _ := yaml.Marshal(c)
	var out Config
	yaml.Unmarshal(b, &out)
	return &out
}

// FuzzConfigFile loads arbitrary YAML as a config file: it must never panic,
// every error must be a *config.Error free of library text, and an accepted
// configuration must survive a round trip through its resolved YAML.
func FuzzConfigFile(f *testing.F) {
	entries, _ := configs.FS.ReadDir(".")
	for _, e := range entries {
		if b, err := configs.FS.ReadFile(e.Name()); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"teacher:\n  train:\n    epochs: 2.5\n", "seeds: [1, 1]\n", "kd: 5\n", "", "# only\n",
		"a: &x {b: 1}\nteacher:\n  train:\n    <<: *x\n", "seeds: !!binary aGVsbG8=\n", "name: [\n",
		"teacher: {mlp: {huge: {hidden: [1e3]}}, sizes: [huge], family: mlp}\n", "---\n---\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := load(Source{File: "fuzz.yaml"}, body)
		if err != nil {
			checkLoadError(t, err)
			return
		}
		checkRoundTrip(t, c)
	})
}

// FuzzConfigSet loads one --set key=value (and the same as an environment
// variable) with the same properties as FuzzConfigFile.
func FuzzConfigSet(f *testing.F) {
	for _, kv := range [][2]string{
		{"seeds", "0,1"}, {"teacher.train.epochs", "2.5"}, {"teacher.train.epochs", "true"}, {"kd.temperature", "[1, 4]"},
		{"student.model", "{hidden: [8]}"}, {"data.dir", "a: b"}, {"teacher.mlp.huge", "{hidden: [4]}"}, {"kd", "x"},
		{"run.slurm.extra", "--qos=a,b"}, {"data.val_fraction", ".nan"}, {"name", ""},
	} {
		f.Add(kv[0], kv[1])
	}
	f.Fuzz(func(t *testing.T, key, value string) {
		c, err := Load(Source{Set: map[string]string{key: value}})
		if err != nil {
			checkLoadError(t, err)
		} else {
			checkRoundTrip(t, c)
		}
		if KnownKey(key) && !strings.ContainsAny(key, "*") {
			if _, ok := typeAt(key); ok {
				_, err := Load(Source{Env: []string{EnvName(key) + "=" + value}})
				if err != nil {
					checkLoadError(t, err)
				}
			}
		}
	})
}
