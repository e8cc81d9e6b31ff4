package train

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/nlpodyssey/safetensors"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/model"
)

// CheckpointFile is the resume checkpoint Run keeps in Job.WorkDir.
// MetricsFile is the per-epoch log Run rewrites next to it.
const (
	CheckpointFile = "checkpoint.safetensors"
	MetricsFile    = "metrics.jsonl"
)

// checkpointKey is the safetensors metadata key holding the JSON state.
const checkpointKey = "kdcal_checkpoint"

// engineVersion changes whenever a change to this package changes results,
// so that a checkpoint written by another version is not resumed.
const engineVersion = 1

// state is everything besides tensors that a resumed run needs.
type state struct {
	Fingerprint string   `json:"fingerprint"` // the job it belongs to
	Epoch       int      `json:"epoch"`       // completed epochs
	Step        int      `json:"step"`        // optimizer steps taken (schedule position, Adam's t)
	Optimizer   string   `json:"optimizer"`
	ShuffleRNG  []byte   `json:"shuffle_rng"` // PCG state (MarshalBinary) of the batch-order stream
	Records     []Record `json:"records"`
}

// fingerprint identifies a job's training problem: everything that must be
// equal for a checkpoint to be resumed (not WorkDir, logging or eval batch).
func fingerprint(j Job, a model.Arch) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	_ = enc.Encode(struct {
		Engine int
		Arch   model.Arch
		Recipe any
		Seed   int
		N      int
	}{engineVersion, a, j.Recipe, j.Seed, j.Data.Train.N})
	for _, y := range j.Data.Train.Y {
		_ = binary.Write(h, binary.LittleEndian, int32(y))
	}
	if j.KD != nil {
		_ = enc.Encode([]float64{j.KD.Tau, j.KD.KDWeight, j.KD.CEWeight})
		_ = binary.Write(h, binary.LittleEndian, j.KD.Targets)
		_ = enc.Encode(j.KD.Loss) // the loss's parameters (dkd: α, β); its name goes with the targets' meaning
		_, _ = io.WriteString(h, j.KD.Loss.Name())
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// saveCheckpoint writes weights (PyTorch layout, so the file also loads as
// a model), optimizer buffers and st atomically to path.
func saveCheckpoint(path string, w *model.Weights, o *optimizer, st state) error {
	views := w.TorchViews("")
	for i, p := range w.Params {
		views["optim.m."+p.Name] = model.Float32View([]int{p.Size()}, o.m[i])
		if o.v != nil {
			views["optim.v."+p.Name] = model.Float32View([]int{p.Size()}, o.v[i])
		}
	}
	sj, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("train: encode checkpoint state: %w", err)
	}
	var buf bytes.Buffer
	if err := safetensors.SerializeToWriter(views, map[string]string{"format": "pt", checkpointKey: string(sj)}, &buf); err != nil {
		return fmt.Errorf("train: serialize checkpoint: %w", err)
	}
	return atomicfile.Write(path, buf.Bytes())
}

// errNoCheckpoint says there is nothing to resume.
var errNoCheckpoint = errors.New("no checkpoint")

// loadCheckpoint reads a checkpoint into w and o (in place) and returns its
// state. It returns errNoCheckpoint when path does not exist, and an error
// when the checkpoint belongs to another job.
func loadCheckpoint(path, fp string, w *model.Weights, o *optimizer) (state, error) {
	stt, md, err := model.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return state{}, errNoCheckpoint
	}
	if err != nil {
		return state{}, fmt.Errorf("resume checkpoint %w; delete it to start over", err)
	}
	var st state
	if err := json.Unmarshal([]byte(md[checkpointKey]), &st); err != nil {
		return state{}, fmt.Errorf("resume checkpoint %s: bad state: %v; delete it to start over", path, err)
	}
	if st.Fingerprint != fp || st.Optimizer != o.kind {
		return state{}, fmt.Errorf("resume checkpoint %s belongs to another training job (other model, recipe, seed or data); delete it to start over", path)
	}
	if err := w.SetFromTorch(stt, ""); err != nil {
		return state{}, fmt.Errorf("resume checkpoint %s: %w", path, err)
	}
	for i, p := range w.Params {
		m, err := model.ReadFloat32(stt, "optim.m."+p.Name, []int{p.Size()})
		if err != nil {
			return state{}, fmt.Errorf("resume checkpoint %s: %w", path, err)
		}
		copy(o.m[i], m)
		if o.v != nil {
			v, err := model.ReadFloat32(stt, "optim.v."+p.Name, []int{p.Size()})
			if err != nil {
				return state{}, fmt.Errorf("resume checkpoint %s: %w", path, err)
			}
			copy(o.v[i], v)
		}
	}
	o.t = st.Step
	return st, nil
}

// restoreRNG sets a PCG to a state saved with MarshalBinary.
func restoreRNG(pcg *rand.PCG, b []byte) error {
	return pcg.UnmarshalBinary(b)
}

// writeMetrics rewrites dir/metrics.jsonl with one JSON line per record.
func writeMetrics(dir string, recs []Record) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return atomicfile.Write(filepath.Join(dir, MetricsFile), buf.Bytes())
}

// removeIfExists deletes path, ignoring its absence.
func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// finite reports whether x is neither NaN nor ±Inf.
func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
