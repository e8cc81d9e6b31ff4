// Package atomicfile writes files so that readers see either the old content
// or the complete new content, never a partial file: data goes to a temp file
// in the destination directory, is fsynced, and is renamed over the target
// (github.com/google/renameio/v2). Parent directories are created.
package atomicfile

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// Write atomically replaces path with data (mode 0644).
func Write(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := renameio.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// WriteJSON atomically writes v as indented JSON with a trailing newline.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return Write(path, append(b, '\n'))
}

// ReadJSON decodes the JSON file at path into v, naming the file on error.
func ReadJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: not valid JSON: %w", path, err)
	}
	return nil
}
