package stage

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/data"
	"github.com/kdcal/kdcal/internal/npyfile"
	"github.com/kdcal/kdcal/internal/pipeline"
	"github.com/kdcal/kdcal/internal/runstore"
)

// splitJSON is the description ExportSplit writes next to the arrays.
const splitJSON = "split.json"

// ExportSplit implements pipeline.Catalog: it loads cfg's dataset as a
// teacher step does (data.Load: val_fraction, split_seed, train_limit),
// checks that no file it writes exists (unless force), and writes
// index_<split>.npy and labels_<split>.npy (int64, official order) for the
// train and validation splits, then split.json, each atomically.
func (Catalog) ExportSplit(cfg *config.Config, dir string, force bool) (pipeline.SplitInfo, error) {
	names := []string{runstore.IndexFile(runstore.SplitTrain), runstore.LabelsFile(runstore.SplitTrain),
		runstore.IndexFile(runstore.SplitVal), runstore.LabelsFile(runstore.SplitVal), splitJSON}
	if err := checkSplitTarget(dir, names, force); err != nil {
		return pipeline.SplitInfo{}, err
	}
	s, err := data.Load(cfg.Data)
	if err != nil {
		return pipeline.SplitInfo{}, err
	}
	info := pipeline.SplitInfo{Dataset: s.Dataset, Official: s.Official, ValFraction: cfg.Data.ValFraction,
		SplitSeed: cfg.Data.SplitSeed, TrainLimit: cfg.Data.TrainLimit, Train: s.Train.N, Val: s.Val.N, Test: s.Test.N,
		Normalize: s.Normalize, Mean: s.Mean, Std: s.Std, Files: names}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return info, err
	}
	for i, d := range []*data.Dataset{s.Train, s.Val} {
		if err := npyfile.WriteInt64(filepath.Join(dir, names[2*i]), d.Index); err != nil {
			return info, err
		}
		if err := npyfile.WriteInt64(filepath.Join(dir, names[2*i+1]), d.Y); err != nil {
			return info, err
		}
	}
	return info, atomicfile.WriteJSON(filepath.Join(dir, splitJSON), info)
}

// checkSplitTarget refuses a dir that is a file, any of the names
// ExportSplit writes that exists as something other than a regular file,
// and, unless force, any that exists at all — all before anything is
// written.
func checkSplitTarget(dir string, names []string, force bool) error {
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return &runstore.ForeignError{Path: dir, Msg: "is a file, not a directory", Hint: "give --out a directory"}
	}
	for _, n := range names {
		p := filepath.Join(dir, n)
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return err
		case !fi.Mode().IsRegular():
			// Not a file a previous split wrote: never replaced, even with
			// --force (and refusing here, before anything is written, is
			// what keeps a failed export from leaving half a split).
			what := "something other than a file"
			switch {
			case fi.IsDir():
				what = "a directory"
			case fi.Mode()&fs.ModeSymlink != 0:
				what = "a symbolic link"
			}
			return &runstore.ForeignError{Path: p, Msg: "exists as " + what + ", not a regular file, so it is not replaced",
				Hint: "move it away, or choose another --out"}
		case !force:
			return &runstore.ForeignError{Path: p, Msg: "already exists",
				Hint: "use --force to replace the split's files, or choose another --out"}
		}
	}
	return nil
}
