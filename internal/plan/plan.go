package plan

import (
	"fmt"
	"slices"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/runstore"
	"github.com/kdcal/kdcal/internal/spec"
)

// Stages, in execution order.
const (
	StageTeachers    = "teachers"
	StageCalibration = "calibration"
	StageStudents    = "students"
	StageReport      = "report"
)

// Stages lists the stages in order.
var Stages = []string{StageTeachers, StageCalibration, StageStudents, StageReport}

// Step is one unit of work of a study: it reads only the outputs of Deps and
// writes only its own directory in the store.
type Step struct {
	Key   string   // store key, e.g. teachers/large/seed-0; also what `kdcal step` takes
	Stage string   // teachers | calibration | students | report
	Hash  string   // hash of exactly the configuration the step depends on
	Deps  []string // keys of the steps whose outputs it reads

	Size    string  // teacher size (teacher, calibration, raw/calibrated student)
	Seed    int     // training seed (all but report)
	Method  string  // calibration method (calibration)
	Arm     string  // raw | calibrated | scratch (student)
	Setting Setting // KD setting (student; scratch uses only Epochs)

	// Cost is a rough relative cost (multiply-adds of training), used to
	// order work and estimate the time left.
	Cost float64
}

// Plan is the ordered list of a study's steps.
type Plan struct {
	Steps []Step
	index map[string]int
}

// Build turns a configuration into its plan: teacher(size, seed) →
// calibration(method, size, seed) → student(setting, arm, size, seed) and
// scratch(epochs, seed) → report. Steps are in stage order, and within a
// stage in configuration order. This is the one enumeration of a study's
// steps: the executors, the stage commands and the report all read it.
func Build(c *config.Config) *Plan {
	p := &Plan{index: map[string]int{}}
	for _, size := range c.Teacher.Sizes {
		for _, seed := range c.Seeds {
			p.add(Step{Key: runstore.TeacherKey(size, seed), Stage: StageTeachers, Hash: TeacherHash(c, size, seed),
				Size: size, Seed: seed, Cost: teacherCost(c, size)})
		}
	}
	for _, method := range c.Calibration.Methods {
		for _, size := range c.Teacher.Sizes {
			for _, seed := range c.Seeds {
				p.add(CalibrationStep(c, method, size, seed))
			}
		}
	}
	studentStep := TrainCost(c.Student.Family, c.Student.Model, shapeOf(c))
	for _, s := range Settings(c) {
		for _, arm := range c.KD.Arms {
			if arm == config.ArmScratch {
				continue
			}
			for _, size := range c.Teacher.Sizes {
				for _, seed := range c.Seeds {
					deps := []string{runstore.TeacherKey(size, seed)}
					if arm == config.ArmCalibrated {
						deps = append(deps, runstore.CalibrationKey(c.KD.Calibrator, size, seed))
					}
					p.add(Step{Key: runstore.StudentKey(s.Name(), arm, size, seed), Stage: StageStudents,
						Hash: StudentHash(c, s, arm, size, seed), Deps: deps,
						Size: size, Seed: seed, Arm: arm, Setting: s, Cost: studentStep * float64(s.Epochs)})
				}
			}
		}
	}
	if slices.Contains(c.KD.Arms, config.ArmScratch) {
		for _, e := range ScratchEpochs(c) {
			for _, seed := range c.Seeds {
				p.add(Step{Key: runstore.ScratchKey(e, seed), Stage: StageStudents, Hash: ScratchHash(c, e, seed),
					Seed: seed, Arm: config.ArmScratch, Setting: Setting{Epochs: e}, Cost: studentStep * float64(e)})
			}
		}
	}
	var all []string
	for _, s := range p.Steps {
		all = append(all, s.Key)
	}
	p.add(Step{Key: runstore.ReportKey, Stage: StageReport, Hash: ReportHash(c, p.Steps), Deps: all, Cost: 0})
	return p
}

// CalibrationStep is the step that fits method on the teacher (size, seed);
// `kdcal calibrate --method` also makes it for methods outside
// calibration.methods.
func CalibrationStep(c *config.Config, method, size string, seed int) Step {
	return Step{Key: runstore.CalibrationKey(method, size, seed), Stage: StageCalibration,
		Hash: CalibrationHash(c, method, size, seed), Deps: []string{runstore.TeacherKey(size, seed)},
		Size: size, Seed: seed, Method: method, Cost: teacherCost(c, size) * 1e-3}
}

// shapeOf returns the configured dataset's input shape and class count
// (zero for an unknown dataset, which config.Validate rejects first).
func shapeOf(c *config.Config) spec.Shape {
	sh, _ := c.Data.Shape()
	return sh
}

// teacherCost is the training cost of one teacher of the given size.
func teacherCost(c *config.Config, size string) float64 {
	if c.Teacher.Source == config.SourceExternal {
		return externalCost(c)
	}
	m, _ := c.Teacher.Spec(size)
	return TrainCost(c.Teacher.Family, m, shapeOf(c)) * float64(c.Teacher.Train.Epochs)
}

func (p *Plan) add(s Step) {
	p.index[s.Key] = len(p.Steps)
	p.Steps = append(p.Steps, s)
}

// Get returns the step with the given key.
func (p *Plan) Get(key string) (Step, bool) {
	i, ok := p.index[key]
	if !ok {
		return Step{}, false
	}
	return p.Steps[i], true
}

// Filter returns the steps for which keep is true, in plan order.
func (p *Plan) Filter(keep func(Step) bool) []Step {
	var out []Step
	for _, s := range p.Steps {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

// ReportHash keys the report: the hashes of every step it summarises and the
// report settings.
func ReportHash(c *config.Config, steps []Step) string {
	hashes := make([]string, len(steps))
	for i, s := range steps {
		hashes[i] = s.Key + "=" + s.Hash
	}
	return runstore.Hash(struct {
		Kind   string
		Steps  []string
		Report config.Report
		Bins   int
	}{runstore.KindReport, hashes, c.Report, c.Calibration.Bins})
}

// TrainCost is the multiply-adds of one epoch-example of training of a
// model (its family's spec.Arch.Cost); 0 when the architecture is invalid
// for the shape, which training reports.
func TrainCost(family string, m config.ModelSpec, in spec.Shape) float64 {
	a, err := spec.NewArch(family, m, in)
	if err != nil {
		return 0
	}
	return a.Cost()
}

// String describes a step in a few words, for progress lines.
func (s Step) String() string {
	switch s.Stage {
	case StageTeachers:
		return fmt.Sprintf("teacher %s seed %d", s.Size, s.Seed)
	case StageCalibration:
		return fmt.Sprintf("calibrate %s %s seed %d", s.Method, s.Size, s.Seed)
	case StageStudents:
		if s.Arm == config.ArmScratch {
			return fmt.Sprintf("student scratch %d epochs seed %d", s.Setting.Epochs, s.Seed)
		}
		return fmt.Sprintf("student %s ← %s seed %d (%s)", s.Arm, s.Size, s.Seed, s.Setting.Name())
	default:
		return "report"
	}
}
