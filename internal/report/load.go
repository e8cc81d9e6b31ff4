package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/runstore"
)

// Status of an expected step, as the report sees it.
const (
	StatusDone    = "done"    // finished with the configuration's hash: used
	StatusMissing = "missing" // never started (no directory)
	StatusStale   = "stale"   // finished under another configuration (hash differs): excluded
	StatusFailed  = "failed"  // its last run failed (manifest in <dir>.partial says so)
	StatusRunning = "running" // started but not finished: running now, or interrupted
	StatusInvalid = "invalid" // finished, but its summary cannot be read: excluded
	StatusDamaged = "damaged" // finished, but an output file is missing or changed since: excluded
)

// Step is one step the configuration expects, with what the store holds for it.
type Step struct {
	Key     string // store key, e.g. students/tau4-kdw0.9-ep20/raw/large/seed-0
	Kind    string // teacher | calibration | student
	Status  string // one of the Status constants
	Reason  string // why a step is not used (empty when done)
	Hash    string // the config hash the current configuration expects
	Size    string // teacher size ("" for scratch)
	Seed    int
	Method  string // calibration method (calibration steps)
	Setting string // KD setting name, or scratch-ep<E>
	Arm     string // raw | calibrated | scratch (student steps)

	Teacher     *runstore.TeacherSummary    // done teacher steps
	Calibration *runstore.CalibrationResult // done calibration steps
	Student     *runstore.StudentSummary    // done student steps
	// Formula is the training loss a done student step recorded in its
	// manifest (params.formula), e.g. "0.1·CE(y, s) + 0.9·4²·KL(…)"; empty
	// when it recorded none.
	Formula string
}

// Used reports whether the step's results enter the report.
func (s *Step) Used() bool { return s.Status == StatusDone }

// Study is everything the report needs: the grid the configuration expects
// and, for every expected step, its status and (when done) its summary.
type Study struct {
	Cfg      *config.Config
	Root     string // experiment directory
	Sizes    []string
	Seeds    []int
	Settings []plan.Setting
	Methods  []string // calibration methods
	KDArms   []string // raw and/or calibrated, in configuration order
	Scratch  bool     // the scratch arm is part of the study
	Steps    []*Step  // every expected step, in plan order

	byKey map[string]*Step
}

// Load lists every step cfg expects in store, classifies each (see the
// Status constants) and reads the summaries of the finished, current ones.
// Partial studies are normal: missing steps are recorded, not errors. It
// returns an error only when the store cannot be read at all.
func Load(cfg *config.Config, store *runstore.Store) (*Study, error) {
	if fi, err := os.Stat(store.Root); err != nil || !fi.IsDir() {
		return nil, &runstore.MissingError{Key: store.Root, Hint: "kdcal run"}
	}
	s := &Study{
		Cfg: cfg, Root: store.Root, Sizes: cfg.Teacher.Sizes, Seeds: cfg.Seeds,
		Settings: plan.Settings(cfg), Methods: cfg.Calibration.Methods, byKey: map[string]*Step{},
	}
	for _, a := range cfg.KD.Arms {
		switch a {
		case config.ArmScratch:
			s.Scratch = true
		default:
			s.KDArms = append(s.KDArms, a)
		}
	}
	for _, ps := range plan.Build(cfg).Steps {
		st := &Step{Key: ps.Key, Hash: ps.Hash, Size: ps.Size, Seed: ps.Seed, Method: ps.Method, Arm: ps.Arm}
		switch ps.Stage {
		case plan.StageTeachers:
			st.Kind = runstore.KindTeacher
		case plan.StageCalibration:
			st.Kind = runstore.KindCalibration
		case plan.StageStudents:
			st.Kind, st.Setting = runstore.KindStudent, ps.Setting.Name()
			if ps.Arm == config.ArmScratch {
				st.Setting = scratchName(ps.Setting.Epochs)
			}
		default:
			continue // the report itself
		}
		s.add(store, st)
	}
	return s, nil
}

func scratchName(epochs int) string { return fmt.Sprintf("scratch-ep%d", epochs) }

func (s *Study) add(store *runstore.Store, st *Step) {
	classify(store, st)
	if st.Status == StatusDone {
		if err := readSummary(store, st); err != nil {
			st.Status, st.Reason = StatusInvalid, err.Error()
		}
	}
	s.Steps = append(s.Steps, st)
	s.byKey[st.Key] = st
}

// classify sets st.Status and st.Reason from the store (runstore.State).
func classify(store *runstore.Store, st *Step) {
	state, reason := store.State(st.Key, st.Hash)
	st.Status, st.Reason = string(state), reason
	if state == runstore.StatePartial {
		st.Status = StatusRunning
	}
}

// readSummary decodes the summary of a finished step and checks the numbers
// the report uses. Errors name the file relative to the store.
func readSummary(store *runstore.Store, st *Step) error {
	switch st.Kind {
	case runstore.KindTeacher:
		var t runstore.TeacherSummary
		if err := readJSON(store, st.Key, runstore.SummaryFile, &t); err != nil {
			return err
		}
		if err := checkUnit(st.Key, runstore.SummaryFile, "test.accuracy", t.Test.Accuracy); err != nil {
			return err
		}
		st.Teacher = &t
	case runstore.KindCalibration:
		var c runstore.CalibrationResult
		if err := readJSON(store, st.Key, runstore.CalibResultFile, &c); err != nil {
			return err
		}
		if c.Test == nil {
			return fmt.Errorf("%s: no test split (calibrated without test logits)", runstore.CalibResultFile)
		}
		st.Calibration = &c
	case runstore.KindStudent:
		var u runstore.StudentSummary
		if err := readJSON(store, st.Key, runstore.SummaryFile, &u); err != nil {
			return err
		}
		if err := checkUnit(st.Key, runstore.SummaryFile, "test.accuracy", u.Test.Accuracy); err != nil {
			return err
		}
		st.Student = &u
		if m, ok := store.Manifest(st.Key); ok {
			st.Formula, _ = m.Params["formula"].(string)
		}
	}
	return nil
}

// Formula returns the loss recorded by the first done student of setting
// and arm ("" if none recorded one).
func (s *Study) Formula(setting, arm string) string {
	for _, st := range s.Steps {
		if st.Kind == runstore.KindStudent && st.Setting == setting && st.Arm == arm && st.Formula != "" {
			return st.Formula
		}
	}
	return ""
}

// kdOnly reports whether every KD setting uses the default loss, kd.
func (s *Study) kdOnly() bool {
	for _, set := range s.Settings {
		if set.Loss != config.LossKD {
			return false
		}
	}
	return true
}

// readJSON decodes <store>/<key>/<name> into v; errors name the file within
// the step (the step's key goes with them).
func readJSON(store *runstore.Store, key, name string, v any) error {
	rel := name
	b, err := os.ReadFile(store.Path(key, name))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s is missing", rel)
	case err != nil:
		return fmt.Errorf("%s: %w", rel, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: not valid JSON: %v", rel, err)
	}
	return nil
}

func checkUnit(key, name, field string, v float64) error {
	if math.IsNaN(v) || v < 0 || v > 1 {
		return fmt.Errorf("%s: %s = %v is not a fraction in [0, 1]", name, field, v)
	}
	return nil
}

// step returns the expected step with key, or nil.
func (s *Study) step(key string) *Step { return s.byKey[key] }

// Teacher returns the summary of a used teacher step, or nil.
func (s *Study) Teacher(size string, seed int) *runstore.TeacherSummary {
	if st := s.step(runstore.TeacherKey(size, seed)); st != nil && st.Used() {
		return st.Teacher
	}
	return nil
}

// Calibration returns the result of a used calibration step, or nil.
func (s *Study) Calibration(method, size string, seed int) *runstore.CalibrationResult {
	if st := s.step(runstore.CalibrationKey(method, size, seed)); st != nil && st.Used() {
		return st.Calibration
	}
	return nil
}

// Student returns the summary of a used KD student step, or nil.
func (s *Study) Student(setting, arm, size string, seed int) *runstore.StudentSummary {
	if st := s.step(runstore.StudentKey(setting, arm, size, seed)); st != nil && st.Used() {
		return st.Student
	}
	return nil
}

// ScratchStudent returns the summary of a used scratch step, or nil.
func (s *Study) ScratchStudent(epochs, seed int) *runstore.StudentSummary {
	if st := s.step(runstore.ScratchKey(epochs, seed)); st != nil && st.Used() {
		return st.Student
	}
	return nil
}

// Unused returns the expected steps that do not enter the report, in plan order.
func (s *Study) Unused() []*Step {
	var out []*Step
	for _, st := range s.Steps {
		if !st.Used() {
			out = append(out, st)
		}
	}
	return out
}

// UsedCount returns how many expected steps enter the report.
func (s *Study) UsedCount() int { return len(s.Steps) - len(s.Unused()) }

// Params returns the parameter count of a teacher size, read from any of its
// used teacher steps (all seeds share the architecture), or 0 when none is done.
func (s *Study) Params(size string) int {
	for _, seed := range s.Seeds {
		if t := s.Teacher(size, seed); t != nil && t.Params > 0 {
			return t.Params
		}
	}
	return 0
}

// Hash keys the report step. A complete study (every expected step done)
// gets exactly the hash `kdcal run` plans for the report (plan.ReportHash),
// so the planner sees the report as done; a partial study gets a hash of
// the report settings and the steps actually read, so that a partial report
// is never mistaken for the complete one and is replaced once more steps
// finish.
func (s *Study) Hash() string {
	if len(s.Unused()) == 0 {
		steps := make([]plan.Step, len(s.Steps))
		for i, st := range s.Steps {
			steps[i] = plan.Step{Key: st.Key, Hash: st.Hash}
		}
		return plan.ReportHash(s.Cfg, steps)
	}
	var in []string
	for _, st := range s.Steps {
		if st.Used() {
			in = append(in, st.Key+"="+st.Hash)
		}
	}
	return runstore.Hash(struct {
		Kind    string
		Partial bool
		Steps   []string
		Report  config.Report
		Bins    int
	}{runstore.KindReport, true, in, s.Cfg.Report, s.Cfg.Calibration.Bins})
}
