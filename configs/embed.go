// Package configs embeds the configuration presets shipped with kdcal, so that
// the binary needs no files next to it. default.yaml is the single source of
// built-in defaults; the presets hold only their differences from it.
package configs

import "embed"

// FS holds default.yaml and every preset.
//
//go:embed *.yaml
var FS embed.FS

// Default returns the text of default.yaml.
func Default() []byte {
	b, err := FS.ReadFile("default.yaml")
	if err != nil {
		panic("configs: default.yaml not embedded: " + err.Error())
	}
	return b
}
