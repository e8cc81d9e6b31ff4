package runstore

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kdcal/kdcal/internal/atomicfile"
)

// ConfigsDir holds every resolved configuration the store was written with,
// one file per configuration hash: configs/<hash>.yaml. A file is written
// once, when its configuration is first used, and never replaced, so
// running the store with other settings loses no earlier configuration.
const ConfigsDir = "configs"

// configHeader starts each configs/<hash>.yaml: hash, first use, command.
const configHeader = "# kdcal configuration "

// ConfigEntry is one configuration recorded in the store.
type ConfigEntry struct {
	Hash      string    // Hash of the resolved configuration; "" for an imported file kdcal could not read
	Path      string    // configs/<hash>.yaml
	FirstUsed time.Time // when a command first wrote into the store with it
	Note      string    // how it was first used: the command line, or where it was imported from
}

// ConfigPath returns the file of a configuration hash.
func (s *Store) ConfigPath(hash string) string {
	return filepath.Join(s.Root, ConfigsDir, hash+".yaml")
}

// RecordConfig keeps a resolved configuration (its YAML) under its hash,
// unless the store already holds it; note says how it was first used.
// It returns the file's path.
func (s *Store) RecordConfig(hash string, yaml []byte, when time.Time, note string) (string, error) {
	p := s.ConfigPath(hash)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	head := fmt.Sprintf("%s%s, first used %s: %s\n", configHeader, hash, when.UTC().Format(time.RFC3339Nano), oneLine(note))
	if err := atomicfile.Write(p, append([]byte(head), yaml...)); err != nil {
		return "", err
	}
	return p, nil
}

// Configs lists the configurations recorded in the store, oldest first
// (none for a store from before ConfigsDir; it only has config.yaml).
func (s *Store) Configs() ([]ConfigEntry, error) {
	entries, err := os.ReadDir(filepath.Join(s.Root, ConfigsDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []ConfigEntry
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		p := filepath.Join(s.Root, ConfigsDir, e.Name())
		c := ConfigEntry{Hash: strings.TrimSuffix(e.Name(), ".yaml"), Path: p}
		if first, err := firstLine(p); err == nil {
			c.FirstUsed, c.Note = parseConfigHeader(first)
		}
		if c.FirstUsed.IsZero() {
			c.Hash = "" // not written by RecordConfig
			if fi, err := e.Info(); err == nil {
				c.FirstUsed = fi.ModTime().UTC()
			}
		}
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].FirstUsed.Before(out[j].FirstUsed) })
	return out, nil
}

// parseConfigHeader reads "# kdcal configuration <hash>, first used <time>: <note>".
func parseConfigHeader(line string) (time.Time, string) {
	rest, ok := strings.CutPrefix(line, configHeader)
	if !ok {
		return time.Time{}, ""
	}
	_, rest, ok = strings.Cut(rest, ", first used ")
	if !ok {
		return time.Time{}, ""
	}
	ts, note, _ := strings.Cut(rest, ": ")
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, ""
	}
	return t, note
}

func firstLine(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if sc.Scan() {
		return sc.Text(), nil
	}
	return "", sc.Err()
}

func oneLine(s string) string {
	return string(bytes.ReplaceAll([]byte(s), []byte("\n"), []byte(" ")))
}
