package pipeline

import (
	"context"
	"io"

	"github.com/kdcal/kdcal/internal/config"
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
	InspectDataset(dir, dataset string) DatasetInfo
	// IsDataError reports an error of bad or missing input data from the
	// packages behind the catalog and the stages (a dataset file, a model
	// file): exit status 4.
	IsDataError(err error) bool
}

// DatasetFile describes one dataset file for `kdcal data info`.
type DatasetFile struct {
	Path     string `json:"path"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
	Known    bool   `json:"known"` // the checksum is the packaged file's
	Problems string `json:"problem,omitempty"`
}

// DatasetInfo describes one dataset for `kdcal data info`.
type DatasetInfo struct {
	Dataset string        `json:"dataset"`
	Present bool          `json:"present"`
	Train   int           `json:"train"`   // examples in the official training set
	Test    int           `json:"test"`    // examples in the test set
	Shape   [3]int        `json:"shape"`   // C, H, W
	Classes int           `json:"classes"` // number of classes
	Files   []DatasetFile `json:"files"`
	Error   string        `json:"error,omitempty"` // why it does not load
}
