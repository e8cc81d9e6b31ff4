package runstore

import (
	"github.com/kdcal/kdcal/internal/artifact"
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
	Setting     string  `json:"setting"`        // SettingName (with the loss when the grid has several), or scratch-ep<E>
	Loss        string  `json:"loss,omitempty"` // kd.loss when not kd (the default, omitted)
	Tau         float64 `json:"tau,omitempty"`
	KDWeight    float64 `json:"kd_weight,omitempty"`
	CEWeight    float64 `json:"ce_weight"`
	Epochs      int     `json:"epochs"`
	// Calibrator is the method applied to the teacher's logits (calibrated arm).
	Calibrator string `json:"calibrator,omitempty"`
	// CalibrationTemperature is the calibrator's softening temperature
	// (calibrate.Description: T for temp; 1 for raw and for calibrators without one).
	CalibrationTemperature float64 `json:"calibration_temperature,omitempty"`
	// EffectiveTemperature is the loss's total division of the teacher's
	// logits: τ·T_cal for kd and dkd, T_cal for mse (no τ).
	EffectiveTemperature float64         `json:"effective_temperature,omitempty"`
	Params               int             `json:"params"`
	WallSeconds          float64         `json:"wall_seconds"`
	Val                  metrics.Summary `json:"val"`
	Test                 metrics.Summary `json:"test"`
}

// SplitResult and CalibrationResult are the schema of a calibration
// step's metrics.json; they live in package artifact so that calibrate,
// which makes them, does not import the store.
type (
	SplitResult       = artifact.SplitResult
	CalibrationResult = artifact.CalibrationResult
	CalibrationFit    = artifact.Fit
)
