package pipeline

import (
	"fmt"
	"path/filepath"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/runstore"
)

// Progress is written by training steps into their work directory after
// every epoch, so that the executor's view (of this process or another)
// can show progress and estimate the time left.
type Progress struct {
	Epoch  int `json:"epoch"`
	Epochs int `json:"epochs"`
}

// ProgressFile is the name of the progress file in a step's work directory.
const ProgressFile = "progress.json"

// WriteProgress records epoch/epochs in the running step's work dir (best effort).
func WriteProgress(st *runstore.Step, epoch, epochs int) {
	_ = atomicfile.WriteJSON(st.Path(ProgressFile), Progress{Epoch: epoch, Epochs: epochs})
}

// ReadProgress returns a running step's fraction done from its progress
// file and a detail ("epoch 2/4"); ok is false when there is none.
func ReadProgress(store *runstore.Store, s plan.Step) (frac float64, detail string, ok bool) {
	var p Progress
	if err := atomicfile.ReadJSON(filepath.Join(store.Dir(s.Key)+".partial", ProgressFile), &p); err != nil || p.Epochs == 0 {
		return 0, "", false
	}
	return float64(p.Epoch) / float64(p.Epochs), fmt.Sprintf("epoch %d/%d", p.Epoch, p.Epochs), true
}
