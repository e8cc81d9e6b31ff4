package train

import (
	"fmt"
	"io"
	"log/slog"
	"math"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/data"
	"github.com/kdcal/kdcal/internal/distill"
	"github.com/kdcal/kdcal/internal/metrics"
	"github.com/kdcal/kdcal/internal/model"
)

// Job is one training run: a model, its recipe, its seed and its data.
type Job struct {
	// Label names the job in progress output and errors, e.g. "teacher large seed 0".
	Label string
	// Family and Spec select the architecture; the input shape comes from Data.
	Family string
	Spec   config.ModelSpec
	// Recipe is the training recipe; RecipeKey is its config key (e.g.
	// "teacher.train"), used in hints such as "lower teacher.train.lr".
	Recipe    config.Train
	RecipeKey string
	// Seed selects the initial weights and the batch order (see the package doc).
	Seed int
	// Data holds the train, val and test splits (train is trained on).
	Data *data.Splits
	// KD, when set, adds the distillation term to the loss.
	KD *KD
	// Bins is the number of ECE bins of the per-epoch and final metrics (0: 15).
	Bins int
	// WorkDir receives the resume checkpoint (CheckpointFile) and
	// metrics.jsonl after every epoch. Empty: no checkpoints, no resume.
	WorkDir string
	// Progress receives a progress bar when it is a terminal. Otherwise
	// Log (when set) gets one line per epoch.
	Progress io.Writer
	Log      *slog.Logger
	// OnEpoch, when set, is called after each epoch's checkpoint is written.
	OnEpoch func(Record)
	// SkipTrainLogits skips the final forward pass over the train split
	// (students: only teachers' train logits are used downstream).
	SkipTrainLogits bool
	// EvalBatch is the batch size of the evaluation graphs (0: 256).
	EvalBatch int
}

// KD configures the distillation term of the loss (see the package doc).
type KD struct {
	// Loss is the KD loss (distill.New).
	Loss distill.Loss
	// Targets holds the teacher's rows of Loss.Targets (for kd, the softened
	// probabilities p_T = softmax(z_T/τ); already computed by the caller,
	// calibrated or not), N_train × C, rows in train-split position order.
	Targets []float32
	// Tau is the temperature τ applied to the student's logits.
	Tau float64
	// KDWeight and CEWeight weight the KD term and the hard-label CE term.
	KDWeight, CEWeight float64
}

// Record is one epoch's line of metrics.jsonl.
type Record struct {
	Epoch         int      `json:"epoch"`              // 1-based
	Steps         int      `json:"steps"`              // optimizer steps in the epoch
	LR            float64  `json:"lr"`                 // learning rate of the epoch's last step
	TrainLoss     float64  `json:"train_loss"`         // mean objective over the epoch (true KL for the KD term)
	TrainNLL      float64  `json:"train_nll"`          // mean NLL of the true labels over the epoch
	TrainAcc      float64  `json:"train_acc"`          // accuracy over the epoch (weights changing during it)
	TrainKD       *float64 `json:"train_kd,omitempty"` // mean KD term, unweighted (kd: τ²·KL(p_T‖p_S)), KD jobs only
	ValNLL        float64  `json:"val_nll"`            // after the epoch
	ValAcc        float64  `json:"val_acc"`            // after the epoch
	ValECE        float64  `json:"val_ece"`            // after the epoch, Bins equal-width bins
	MsPerStep     float64  `json:"ms_per_step"`        // training step time (forward, backward, update)
	SamplesPerSec float64  `json:"samples_per_s"`      // training throughput
	Seconds       float64  `json:"seconds"`            // wall time of the epoch including validation
	HeapMiB       float64  `json:"heap_mib"`           // Go heap objects after the epoch (flat across epochs: no leak)
}

// Result is what Run returns.
type Result struct {
	Arch    model.Arch
	Weights *model.Weights // final weights (Float32)
	Params  int            // trainable parameters
	Epochs  int            // epochs trained in total
	// ResumedFrom is the number of epochs loaded from a checkpoint (0: fresh start).
	ResumedFrom int
	// WallSeconds is this call's wall time (training and evaluation), not
	// counting earlier interrupted runs.
	WallSeconds float64
	Records     []Record // one per epoch, including resumed ones
	Val, Test   metrics.Summary
	// Logits of the final model, N × C float32, in each split's position
	// order (train: data index order; val, test: official order).
	// TrainLogits is nil when Job.SkipTrainLogits is set.
	TrainLogits, ValLogits, TestLogits []float32
}

// DivergedError reports a non-finite loss.
type DivergedError struct {
	Label       string
	What        string  // "the loss", "the weight norm" or "<split> logits"
	Epoch, Step int     // 1-based epoch and step within it
	Value       float64 // the offending value (NaN, ±Inf, or a norm beyond maxWeightNorm)
	LR          float64 // the configured (peak) learning rate
	RecipeKey   string  // e.g. teacher.train
}

func (e *DivergedError) Error() string {
	what := "became NaN"
	switch {
	case math.IsInf(e.Value, 0):
		what = "became Inf"
	case !math.IsNaN(e.Value):
		what = fmt.Sprintf("reached %.3g", e.Value)
	}
	key := e.RecipeKey
	if key == "" {
		key = "train"
	}
	return fmt.Sprintf("%s: %s %s at epoch %d step %d; lower %s.lr (now %g) or check the data",
		e.Label, e.What, what, e.Epoch, e.Step, key, e.LR)
}
