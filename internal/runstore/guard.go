package runstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/version"
)

// MarkerFile marks a directory as a kdcal experiment store. Open writes it
// into every store it creates (and into older stores it recognises), so
// that a directory of someone else's files is never taken for a store.
const MarkerFile = "kdcal-store.json"

// legacyConfigHeader starts the config.yaml every kdcal version has written
// into its stores; a directory with it is a store from before MarkerFile.
const legacyConfigHeader = "# resolved kdcal configuration"

// marker is the content of MarkerFile.
type marker struct {
	Format  int       `json:"format"` // layout version of the store, 1
	Created time.Time `json:"created"`
	Version string    `json:"kdcal_version"`
}

// ForeignError says kdcal refuses to write into or replace a path because
// it did not make what is there (or would destroy the store): a usage error.
type ForeignError struct {
	Path string // the offending path
	Msg  string // what is there and why kdcal will not touch it
	Hint string // what to do
}

func (e *ForeignError) Error() string {
	s := e.Path + ": " + e.Msg
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return s
}

// Open returns the store at root for writing. root must be absent (it is
// created), an empty directory, or a kdcal store; a regular file, a
// symbolic-link loop or a non-empty directory without MarkerFile is a
// *ForeignError, and nothing is written. A new store, or one from before
// MarkerFile, gets its marker.
func Open(root string) (*Store, error) {
	exists, err := CheckStoreDir(root)
	if err != nil {
		return nil, err
	}
	if !exists {
		if err := os.MkdirAll(root, 0o755); err != nil {
			return nil, fmt.Errorf("create experiment directory %s: %w", root, err)
		}
	}
	s := &Store{Root: root}
	if _, err := os.Stat(filepath.Join(root, MarkerFile)); errors.Is(err, os.ErrNotExist) {
		m := marker{Format: 1, Created: time.Now().UTC(), Version: version.Get().Version}
		if err := atomicfile.WriteJSON(filepath.Join(root, MarkerFile), m); err != nil {
			return nil, fmt.Errorf("experiment store %s: %w", root, err)
		}
	}
	return s, nil
}

// CheckStoreDir checks, without writing anything, that root can be used as
// an experiment store: absent (exists is false), an empty directory, or a
// kdcal store (MarkerFile, or an older store's config.yaml or teacher
// steps). Anything else is a *ForeignError naming root.
func CheckStoreDir(root string) (exists bool, err error) {
	fi, err := os.Stat(root)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if lfi, lerr := os.Lstat(root); lerr == nil && lfi.Mode()&os.ModeSymlink != 0 {
			return false, &ForeignError{Path: root, Msg: "is a symbolic link to a missing target",
				Hint: "fix or remove the link, or pass --experiment another directory"}
		}
		return false, nil
	case err != nil:
		return false, pathError(root, err)
	case !fi.IsDir():
		return false, &ForeignError{Path: root, Msg: "is a file, not an experiment directory",
			Hint: "pass --experiment a directory (new, empty, or an existing kdcal experiment)"}
	}
	if IsStore(root) {
		return true, nil
	}
	names, err := dirNames(root)
	if err != nil {
		return true, pathError(root, err)
	}
	if len(names) > 0 {
		return true, &ForeignError{Path: root,
			Msg: fmt.Sprintf("is not a kdcal experiment directory: it holds %s and no %s, so kdcal will not write its steps into it",
				listNames(names), MarkerFile),
			Hint: "pass --experiment a new or empty directory, or an existing experiment"}
	}
	return true, nil
}

// IsStore reports whether dir is a kdcal experiment store: it holds
// MarkerFile, or (stores from before the marker) a config.yaml written by
// kdcal or finished teacher steps.
func IsStore(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, MarkerFile)); err == nil {
		return true
	}
	if f, err := os.Open(filepath.Join(dir, "config.yaml")); err == nil {
		head := make([]byte, len(legacyConfigHeader))
		_, rerr := io.ReadFull(f, head)
		f.Close()
		if rerr == nil && string(head) == legacyConfigHeader {
			return true
		}
	}
	m, _ := filepath.Glob(filepath.Join(dir, "teachers", "*", "seed-*", ManifestFile))
	return len(m) > 0
}

// OpenOutput checks a directory that a command is about to publish a step
// of the given kind into (e.g. `kdcal report --out DIR`) and returns the
// store (DIR's parent) and key (DIR's name) to Begin it with. DIR must be
// absent, an empty directory, or a previous output of the same kind
// (recognised by its manifest.json); symbolic links are followed, so the
// output lands where the link points. DIR may be none of protect (the
// experiment store) nor one of their ancestors, since publishing replaces
// DIR. Every refusal is a *ForeignError naming DIR.
func OpenOutput(dir, kind string, protect ...string) (*Store, string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, "", &ForeignError{Path: dir, Msg: err.Error()}
	}
	real, err := realPath(abs)
	if err != nil {
		return nil, "", pathError(dir, err)
	}
	for _, p := range protect {
		rp, err := realPath(p)
		if err != nil {
			continue
		}
		if rp == real || strings.HasPrefix(rp, real+string(filepath.Separator)) || real == string(filepath.Separator) {
			what := "is the experiment directory"
			if rp != real {
				what = "contains the experiment directory " + p
			}
			return nil, "", &ForeignError{Path: dir, Msg: what + "; writing the " + kind + " there would replace the whole study",
				Hint: "choose a new or empty directory outside it, e.g. " + filepath.Join(filepath.Dir(real), kind+"-"+filepath.Base(rp))}
		}
	}
	if err := checkReplaceable(real, kind); err != nil {
		err.Path = dir
		return nil, "", err
	}
	return &Store{Root: filepath.Dir(real), output: true}, filepath.Base(real), nil
}

// checkReplaceable checks that publishing a step of kind at dir replaces
// nothing kdcal did not write: dir is absent, an empty directory, or a
// step directory whose manifest.json has this kind.
func checkReplaceable(dir, kind string) *ForeignError {
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return &ForeignError{Path: dir, Msg: err.Error()}
	case fi.Mode()&os.ModeSymlink != 0:
		return &ForeignError{Path: dir, Msg: "is a symbolic link (to a missing target or a loop)", Hint: "remove the link or choose another directory"}
	case !fi.IsDir():
		return &ForeignError{Path: dir, Msg: "is a file, not a directory; kdcal will not replace it",
			Hint: "give a directory path (it is created), or move the file away"}
	}
	var m Manifest
	merr := atomicfile.ReadJSON(filepath.Join(dir, ManifestFile), &m)
	if merr == nil && m.Kind == kind {
		return nil
	}
	names, err := dirNames(dir)
	if err != nil {
		return &ForeignError{Path: dir, Msg: err.Error()}
	}
	if len(names) == 0 {
		return nil
	}
	what := fmt.Sprintf("holds %s and no kdcal manifest.json", listNames(names))
	if merr == nil {
		what = fmt.Sprintf("holds a kdcal %s step (manifest.json kind %q), not a %s", m.Kind, m.Kind, kind)
	} else if !errors.Is(merr, os.ErrNotExist) {
		what = fmt.Sprintf("holds %s and an unreadable manifest.json (%v)", listNames(names), merr)
	}
	return &ForeignError{Path: dir, Msg: "is not empty and not a previous kdcal " + kind + ": it " + what + ", so kdcal will not replace it",
		Hint: "choose a new or empty directory, or move its contents away yourself"}
}

// realPath resolves symbolic links and ".." in an absolute path; for a path
// that does not exist yet it resolves the longest existing prefix.
func realPath(p string) (string, error) {
	p, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	rest := ""
	for {
		r, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(r, rest), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return "", err
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}

// pathError turns an error about path into a message that names the real
// problem (a symbolic-link loop, a permission) instead of a syscall's text.
func pathError(path string, err error) error {
	switch {
	case errors.Is(err, syscall.ELOOP):
		return &ForeignError{Path: path, Msg: "is a symbolic link loop (too many levels of symbolic links)",
			Hint: "fix or remove the link, or give another directory"}
	case errors.Is(err, syscall.ENOTDIR):
		return &ForeignError{Path: path, Msg: "a parent of this path is a file, not a directory", Hint: "give another path"}
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%s: permission denied: %w", path, err)
	}
	return fmt.Errorf("%s: %w", path, err)
}

// dirNames lists the entries of dir.
func dirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	sort.Strings(names)
	return names, err
}

// listNames renders up to three entry names and a count.
func listNames(names []string) string {
	if len(names) == 1 {
		return "1 entry (" + names[0] + ")"
	}
	shown := names[:min(3, len(names))]
	s := fmt.Sprintf("%d entries (%s", len(names), strings.Join(shown, ", "))
	if len(names) > len(shown) {
		s += ", …"
	}
	return s + ")"
}
