package pipeline

import (
	"context"
	"io"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/spec"
)

// Catalog is what the commands ask of models and datasets, which only the
// training stack knows (internal/model, internal/data); stage.All provides
// it.
type Catalog interface {
	// ListSizes prints the teacher size table of cfg's family and the
	// student, with parameter counts for the dataset's input shape
	// (`kdcal train-teachers --list-sizes`).
	ListSizes(w io.Writer, cfg *config.Config) error
	// DatasetSources says where `kdcal data fetch` gets datasets from (help text).
	DatasetSources() string
	// Fetchable lists the datasets `kdcal data fetch` can install.
	Fetchable() []string
	// FetchDataset installs dataset into dir/<dataset>/, progress to log; it
	// refuses (a *runstore.ForeignError) to replace what it did not write.
	FetchDataset(ctx context.Context, dir, dataset string, log io.Writer) error
	// InspectDataset describes the dataset under dir and whether it loads.
	InspectDataset(dir, dataset string) spec.DatasetInfo
	// ExportSplit writes the official indices and labels of cfg's train and
	// validation splits, and split.json, into dir (`kdcal data split`); it
	// refuses (a *runstore.ForeignError) to replace a file unless force.
	ExportSplit(cfg *config.Config, dir string, force bool) (SplitInfo, error)
	// IsDataError reports an error of bad or missing input data from the
	// packages behind the catalog and the stages (a dataset file, a model
	// file): exit status 4.
	IsDataError(err error) bool
}

// SplitInfo is split.json of `kdcal data split`: the data.* settings that
// made the split, its sizes and the normalisation statistics, so that a
// teacher trained elsewhere sees exactly kdcal's training rows and inputs.
type SplitInfo struct {
	Dataset     string    `json:"dataset"`
	Official    int       `json:"official_train"` // examples in the official training set the indices point into
	ValFraction float64   `json:"val_fraction"`
	SplitSeed   int       `json:"split_seed"`
	TrainLimit  int       `json:"train_limit"` // 0: no limit
	Train       int       `json:"train"`       // rows of index_train.npy
	Val         int       `json:"val"`         // rows of index_val.npy
	Test        int       `json:"test"`        // examples in the official test set (all used, in order)
	Normalize   string    `json:"normalize"`   // data.normalize
	Mean        []float64 `json:"mean"`        // per channel, of pixels scaled to [0, 1]: x' = (x/255 − mean)/std
	Std         []float64 `json:"std"`
	Files       []string  `json:"files"` // the files written, in dir
}
