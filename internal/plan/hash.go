// Package plan turns a configuration into the study's steps and keys each
// step by a hash of exactly the configuration it depends on, so that
// changing a KD setting re-runs only the students and the report, and
// changing nothing re-runs nothing.
package plan

import (
	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/runstore"
	"github.com/kdcal/kdcal/internal/spec"
)

// EngineVersion is part of every training step's hash. Bump it when a change
// to the training code changes results for the same configuration, so that
// old results are not silently reused.
const EngineVersion = 1

// dataKey is what every trained model depends on in data: which examples
// and how they are split — not where the files live (data.dir).
type dataKey struct {
	Dataset     string
	ValFraction float64
	SplitSeed   int
	TrainLimit  int
	Synthetic   *config.Synthetic `json:",omitempty"`
	// Normalize is data.normalize when it is not the default
	// (standardize), so that the hashes of studies that do not set it stay.
	Normalize string `json:",omitempty"`
}

func dataOf(d config.Data) dataKey {
	k := dataKey{Dataset: d.Dataset, ValFraction: d.ValFraction, SplitSeed: d.SplitSeed, TrainLimit: d.TrainLimit}
	if d.Normalize != config.NormalizeStandardize {
		k.Normalize = d.Normalize
	}
	if d.Dataset == "synthetic" {
		s := d.Synthetic
		k.Synthetic = &s
	}
	return k
}

// TeacherHash keys the teacher step (size, seed): data, family, the size's
// architecture, the teachers' recipe and the seed; for an external teacher
// (teacher.source external), its files' SHA-256, data and the seed.
// (data.normalize and teacher.train.init enter only when not at their
// defaults: see dataKey and config.Train.MarshalJSON.)
func TeacherHash(c *config.Config, size string, seed int) string {
	if c.Teacher.Source == config.SourceExternal {
		return externalTeacherHash(c, size, seed)
	}
	m, _ := c.Teacher.Spec(size)
	return runstore.Hash(struct {
		Engine int
		Kind   string
		Data   dataKey
		Family string
		Spec   any
		Train  config.Train
		Seed   int
	}{EngineVersion, runstore.KindTeacher, dataOf(c.Data), c.Teacher.Family, hashSpec(c.Teacher.Family, m), c.Teacher.Train, seed})
}

// CalibrationHash keys the calibration step (method, size, seed): the
// teacher's hash, the method and the calibration settings.
func CalibrationHash(c *config.Config, method, size string, seed int) string {
	cal := c.Calibration
	cal.Methods = nil // which other methods are fitted does not matter
	return runstore.Hash(struct {
		Kind    string
		Teacher string
		Method  string
		Cal     config.Calibration
	}{runstore.KindCalibration, TeacherHash(c, size, seed), method, cal})
}

// Setting is one KD combination of the kd.* grid.
type Setting struct {
	Loss     string  // kd.loss entry; "" for scratch
	Tau      float64 // KD temperature; 0 for a loss without one
	KDWeight float64
	Epochs   int
	// Tagged: the grid has more than one loss, so the name carries it.
	Tagged bool
}

// Name returns the directory name of the setting, e.g. "tau4-kdw0.9-ep20",
// or "dkd-tau4-kdw0.9-ep20" when the grid has more than one loss
// ("mse-kdw0.9-ep20" for a loss without a temperature).
func (s Setting) Name() string {
	n := runstore.SettingName(s.Tau, s.KDWeight, s.Epochs)
	if s.Tagged {
		n = s.Loss + "-" + n
	}
	return n
}

// Settings expands the kd grid (loss × temperature × kd_weight ×
// student_epochs) in configuration order. A loss without a temperature
// (config.Tempered) gets one setting per kd_weight × epochs, with Tau 0.
func Settings(c *config.Config) []Setting {
	epochs := c.KD.StudentEpochs
	if len(epochs) == 0 {
		epochs = []int{c.Student.Train.Epochs}
	}
	losses := c.KD.Loss
	if len(losses) == 0 {
		losses = []string{config.LossKD}
	}
	var out []Setting
	for _, l := range losses {
		taus := c.KD.Temperature
		if !config.Tempered(l) {
			taus = []float64{0} // one student, not one per τ
		}
		for _, t := range taus {
			for _, w := range c.KD.KDWeight {
				for _, e := range epochs {
					out = append(out, Setting{Loss: l, Tau: t, KDWeight: w, Epochs: e, Tagged: len(losses) > 1})
				}
			}
		}
	}
	return out
}

// ScratchEpochs lists the distinct student epoch counts of the grid: one
// scratch baseline per count.
func ScratchEpochs(c *config.Config) []int {
	if len(c.KD.StudentEpochs) == 0 {
		return []int{c.Student.Train.Epochs}
	}
	seen := map[int]bool{}
	var out []int
	for _, e := range c.KD.StudentEpochs {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out
}

func studentRecipe(c *config.Config, epochs int) config.Train {
	t := c.Student.Train
	t.Epochs = epochs
	return t
}

// StudentHash keys a distilled student (setting, arm raw|calibrated, size, seed):
// data, the student's architecture and recipe, the KD loss, the teacher's
// hash and, for the calibrated arm, the calibration's hash.
func StudentHash(c *config.Config, s Setting, arm, size string, seed int) string {
	var cal string
	if arm == config.ArmCalibrated {
		cal = CalibrationHash(c, c.KD.Calibrator, size, seed)
	}
	type key struct {
		Engine      int
		Kind        string
		Arm         string
		Data        dataKey
		Family      string
		Spec        any
		Train       config.Train
		Tau         float64
		KDWeight    float64
		CEWeight    float64
		Teacher     string
		Calibration string
		Seed        int
	}
	k := key{EngineVersion, runstore.KindStudent, arm, dataOf(c.Data), c.Student.Family, hashSpec(c.Student.Family, c.Student.Model),
		studentRecipe(c, s.Epochs), s.Tau, s.KDWeight, c.KD.CEWeight, TeacherHash(c, size, seed), cal, seed}
	if s.Loss == "" || s.Loss == config.LossKD {
		// The default loss stays out of the hash: students of configs
		// written before kd.loss existed keep their hashes.
		return runstore.Hash(k)
	}
	return runstore.Hash(struct {
		key
		Loss string
		Args *lossArgs `json:",omitempty"`
	}{k, s.Loss, lossArgsOf(c, s.Loss)})
}

// lossArgs are the settings of a loss that has some.
type lossArgs struct {
	Alpha, Beta float64
}

// lossArgsOf returns the kd.* settings the loss depends on (nil: none).
func lossArgsOf(c *config.Config, loss string) *lossArgs {
	if loss == "dkd" {
		return &lossArgs{c.KD.DKDAlpha, c.KD.DKDBeta}
	}
	return nil
}

// ScratchHash keys the scratch student (epochs, seed): data, the student's
// architecture and recipe. It depends on no teacher.
func ScratchHash(c *config.Config, epochs, seed int) string {
	return runstore.Hash(struct {
		Engine int
		Kind   string
		Arm    string
		Data   dataKey
		Family string
		Spec   any
		Train  config.Train
		Seed   int
	}{EngineVersion, runstore.KindStudent, config.ArmScratch, dataOf(c.Data), c.Student.Family, hashSpec(c.Student.Family, c.Student.Model),
		studentRecipe(c, epochs), seed})
}

// hashSpec is what a step hash records of an architecture: its family's
// HashKey (for mlp and cnn, {Conv, Hidden} as before the registry).
func hashSpec(family string, m config.ModelSpec) any { return spec.HashKey(family, m) }
