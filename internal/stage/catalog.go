package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/spec"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/data"
	"github.com/kdcal/kdcal/internal/model"
	"github.com/kdcal/kdcal/internal/pipeline"
	"github.com/kdcal/kdcal/internal/runstore"
)

// Catalog answers what the commands ask of models and datasets
// (pipeline.Catalog).
type Catalog struct{}

var _ pipeline.Catalog = Catalog{}

// IsDataError implements pipeline.Catalog: a dataset error (*data.Error)
// or a corrupt model file (*model.FileError).
func (Catalog) IsDataError(err error) bool {
	var (
		de *data.Error
		me *model.FileError
	)
	return errors.As(err, &de) || errors.As(err, &me)
}

// ListSizes prints the teacher size table of the configured family and the
// student, with parameter counts for the configured dataset's input shape.
func (Catalog) ListSizes(w io.Writer, cfg *config.Config) error {
	if cfg.Teacher.Source == config.SourceExternal {
		return listExternalSizes(w, cfg) // external.go
	}
	sh, err := data.Shape(cfg.Data)
	if err != nil {
		return err
	}
	c, h, wd, classes := sh.C, sh.H, sh.W, sh.Classes
	fmt.Fprintf(w, "Teacher sizes, family %s, input %d×%d×%d, %d classes (%s); * = in teacher.sizes\n",
		cfg.Teacher.Family, c, h, wd, classes, cfg.Data.Dataset)
	selected := map[string]bool{}
	for _, s := range cfg.Teacher.Sizes {
		selected[s] = true
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  SIZE\t    PARAMS\tARCHITECTURE")
	table := cfg.Teacher.Table()
	lo, hi := 0, 0
	for _, name := range sizeOrder(table) {
		a, err := model.NewArch(cfg.Teacher.Family, table[name], c, h, wd, classes)
		if err != nil {
			return &config.Error{Key: "teacher." + cfg.Teacher.Family + "." + name, Msg: err.Error()}
		}
		mark := " "
		if selected[name] {
			mark = "*"
		}
		n := a.NumParams()
		if lo == 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
		fmt.Fprintf(tw, "%s %s\t%10s\t%s\n", mark, name, thousands(n), a)
	}
	sa, err := model.NewArch(cfg.Student.Family, cfg.Student.Model, c, h, wd, classes)
	if err != nil {
		return &config.Error{Key: "student.model", Msg: err.Error()}
	}
	fmt.Fprintf(tw, "  student\t%10s\t%s\n", thousands(sa.NumParams()), sa)
	if err := tw.Flush(); err != nil {
		return err
	}
	if lo > 0 {
		fmt.Fprintf(w, "The teacher sizes span %.0f× in parameter count.\n", float64(hi)/float64(lo))
	}
	return nil
}

// sizeOrder lists size names for display: the conventional names in
// increasing size (tiny … xlarge), then any others alphabetically.
func sizeOrder(table map[string]config.ModelSpec) []string {
	conventional := []string{"tiny", "small", "medium", "large", "xlarge"}
	var out []string
	for _, n := range conventional {
		if _, ok := table[n]; ok {
			out = append(out, n)
		}
	}
	for _, n := range config.SortedNames(table) {
		if !slices.Contains(conventional, n) {
			out = append(out, n)
		}
	}
	return out
}

// thousands formats n with thousands separators, e.g. 1,682,954.
func thousands(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// DatasetSources implements pipeline.Catalog.
func (Catalog) DatasetSources() string {
	return `MNIST comes from the Go module ` + data.GoMNISTModule + `@` + data.GoMNISTVersion + `
(via the Go module proxy); Fashion-MNIST from Debian's ` + data.FashionMNISTPackage + ` package,
installed with apt-get when running as root (otherwise the command to run is printed).`
}

// Fetchable implements pipeline.Catalog.
func (Catalog) Fetchable() []string { return slices.Clone(data.Fetchable) }

// FetchDataset implements pipeline.Catalog: checkFetchTarget, then data.Fetch.
func (Catalog) FetchDataset(ctx context.Context, dir, dataset string, log io.Writer) error {
	if err := checkFetchTarget(dir, dataset); err != nil {
		return err
	}
	return data.Fetch(ctx, dir, dataset, log)
}

// InspectDataset implements pipeline.Catalog (data.Inspect).
func (Catalog) InspectDataset(dir, dataset string) spec.DatasetInfo {
	return data.Inspect(dir, dataset)
}

// checkFetchTarget refuses to fetch a dataset where fetching would replace
// something kdcal did not put there: data.dir or data.dir/<dataset> being
// a file, or a file of the dataset's name whose SHA-256 differs from the
// packaged one (data.Fetch would overwrite it). As git will not overwrite
// an untracked file, the user moves it away first.
func checkFetchTarget(dir, dataset string) error {
	for _, p := range []string{dir, filepath.Join(dir, dataset)} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return &runstore.ForeignError{Path: p, Msg: "is a file, not a directory, so " + dataset + " cannot be fetched into it",
				Hint: "set data.dir (or KDCAL_DATA_DIR) to a directory, or move the file away"}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(data.KnownSHA256[dataset])) {
		want := data.KnownSHA256[dataset][name]
		p := filepath.Join(dir, dataset, name)
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		if !fi.Mode().IsRegular() {
			return &runstore.ForeignError{Path: p, Msg: "exists and is not a regular file; kdcal data fetch will not replace it",
				Hint: "move it away and run kdcal data fetch again"}
		}
		if got, _, err := atomicfile.SHA256(p); err == nil && got != want {
			return &runstore.ForeignError{Path: p, Msg: "exists and differs from the packaged file (sha256 " + got[:16] + "…, packaged " + want[:16] +
				"…); kdcal data fetch will not overwrite a file it did not write", Hint: "move it away and run kdcal data fetch again"}
		}
	}
	return nil
}
