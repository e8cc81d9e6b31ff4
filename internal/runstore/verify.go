package runstore

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kdcal/kdcal/internal/atomicfile"
)

// Output is one file a step published, as recorded in its manifest.
type Output struct {
	Name   string `json:"name"`   // path inside the step directory, with forward slashes
	Size   int64  `json:"size"`   // bytes
	SHA256 string `json:"sha256"` // hex
}

// listOutputs records every regular file under dir except manifest.json,
// in lexical order, with its size and SHA-256.
func listOutputs(dir string) ([]Output, error) {
	var outs []Output
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == ManifestFile {
			return nil
		}
		sum, size, err := atomicfile.SHA256(p)
		if err != nil {
			return err
		}
		outs = append(outs, Output{Name: filepath.ToSlash(rel), Size: size, SHA256: sum})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list outputs of %s: %w", dir, err)
	}
	return outs, nil
}

// checkOutputs compares the files of the step directory dir with the
// outputs its manifest records: every file must exist with its recorded
// size and, when full, its SHA-256. It returns "" when they match, or what
// is wrong, naming the first damaged file and how many others are.
func checkOutputs(dir string, outs []Output, full bool) string {
	var first string
	bad := 0
	for _, o := range outs {
		p := filepath.Join(dir, filepath.FromSlash(o.Name))
		why := ""
		fi, err := os.Stat(p)
		switch {
		case err != nil && os.IsNotExist(err):
			why = o.Name + " is missing"
		case err != nil:
			why = o.Name + ": " + err.Error()
		case !fi.Mode().IsRegular():
			why = o.Name + " is not a regular file"
		case fi.Size() != o.Size:
			why = fmt.Sprintf("%s has %d bytes, the manifest records %d", o.Name, fi.Size(), o.Size)
		case full:
			sum, _, err := atomicfile.SHA256(p)
			if err != nil {
				why = o.Name + ": " + err.Error()
			} else if sum != o.SHA256 {
				why = o.Name + ": its SHA-256 differs from the manifest's (the file changed after the step finished)"
			}
		}
		if why != "" {
			if bad == 0 {
				first = why
			}
			bad++
		}
	}
	switch bad {
	case 0:
		return ""
	case 1:
		return first
	default:
		return fmt.Sprintf("%s (and %d more damaged files)", first, bad-1)
	}
}
