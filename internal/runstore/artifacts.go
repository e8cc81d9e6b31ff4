package runstore

import (
	"github.com/kdcal/kdcal/internal/metrics"
)

// File names inside step directories.
const (
	ManifestFile    = "manifest.json"
	SummaryFile     = "summary.json"
	MetricsLogFile  = "metrics.jsonl"
	ModelFile       = "model.safetensors"
	CalibParamsFile = "params.json"
	CalibResultFile = "metrics.json"
)

// Split names.
const (
	SplitTrain = "train"
	SplitVal   = "val"
	SplitTest  = "test"
)

// LogitsFile returns "logits_<split>.npy" (float32 N×C).
func LogitsFile(split string) string { return "logits_" + split + ".npy" }

// LabelsFile returns "labels_<split>.npy" (int64 N).
func LabelsFile(split string) string { return "labels_" + split + ".npy" }

// IndexFile returns "index_<split>.npy" (int64 N, position in the official training set).
func IndexFile(split string) string { return "index_" + split + ".npy" }

// ReliabilityFile returns "reliability_<split>_<when>.csv", when = before | after.
func ReliabilityFile(split, when string) string {
	return "reliability_" + split + "_" + when + ".csv"
}

// TeacherSummary is summary.json of a teacher step.
type TeacherSummary struct {
	Size        string          `json:"size"`
	Seed        int             `json:"seed"`
	Family      string          `json:"family"`
	Spec        any             `json:"spec"`   // the family's spec.HashKey: {"Conv", "Hidden"} for mlp and cnn
	Params      int             `json:"params"` // number of trainable parameters
	Epochs      int             `json:"epochs"`
	WallSeconds float64         `json:"wall_seconds"` // training + logit dumps, excluding earlier interrupted runs
	Val         metrics.Summary `json:"val"`
	Test        metrics.Summary `json:"test"`
}

// StudentSummary is summary.json of a student step.
type StudentSummary struct {
	Arm         string  `json:"arm"`                    // raw | calibrated | scratch
	TeacherSize string  `json:"teacher_size,omitempty"` // empty for scratch
	Seed        int     `json:"seed"`
	Setting     string  `json:"setting"` // SettingName, or scratch-ep<E>
	Tau         float64 `json:"tau,omitempty"`
	KDWeight    float64 `json:"kd_weight,omitempty"`
	CEWeight    float64 `json:"ce_weight"`
	Epochs      int     `json:"epochs"`
	// Calibrator is the method applied to the teacher's logits (calibrated arm).
	Calibrator string `json:"calibrator,omitempty"`
	// CalibrationTemperature is the fitted T of a temp calibrator (1 for raw).
	CalibrationTemperature float64 `json:"calibration_temperature,omitempty"`
	// EffectiveTemperature is τ·T_cal: the total softening of the teacher's logits.
	EffectiveTemperature float64         `json:"effective_temperature,omitempty"`
	Params               int             `json:"params"`
	WallSeconds          float64         `json:"wall_seconds"`
	Val                  metrics.Summary `json:"val"`
	Test                 metrics.Summary `json:"test"`
}

// SplitResult holds one split's metrics before and after calibration.
type SplitResult struct {
	Before            metrics.Summary `json:"before"`
	After             metrics.Summary `json:"after"`
	ReliabilityBefore []metrics.Bin   `json:"reliability_before"`
	ReliabilityAfter  []metrics.Bin   `json:"reliability_after"`
}

// CalibrationResult is metrics.json of a calibration step, and the object
// `kdcal calibrate --json` prints for anyone's logits.
type CalibrationResult struct {
	Method string         `json:"method"`
	Params map[string]any `json:"params"`        // e.g. {"temperature": 1.83} for temp
	Fit    map[string]any `json:"fit,omitempty"` // optimiser record: iterations, tolerance, nll before/after
	Bins   int            `json:"bins"`          // bins of ece/mce/cw_ece/reliability
	Val    SplitResult    `json:"val"`
	Test   *SplitResult   `json:"test,omitempty"`
}
