package spec

// DatasetFile describes one dataset file for `kdcal data info`.
type DatasetFile struct {
	Path     string `json:"path"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
	Known    bool   `json:"known"` // the checksum is the packaged file's
	Problems string `json:"problem,omitempty"`
}

// DatasetInfo describes one dataset on disk for `kdcal data info`: what
// internal/data's Inspect finds, as the commands print it.
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
