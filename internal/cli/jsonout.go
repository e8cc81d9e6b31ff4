package cli

import (
	"errors"
	"math"
	"time"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/executor"
	"github.com/kdcal/kdcal/internal/pipeline"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/runstore"
)

// The --json documents of the commands. Each command prints one document
// to stdout; human text goes to stderr. docs/json.md documents every field
// (TestJSONDocsCoverFields keeps it true).

// StageDoc is the --json document of train-teachers, calibrate (experiment
// mode) and distill: one entry per selected step.
type StageDoc struct {
	Command        string         `json:"command"`         // e.g. "distill"
	Experiment     string         `json:"experiment"`      // the store
	OK             bool           `json:"ok"`              // every step done or skipped
	Error          string         `json:"error,omitempty"` // the command's error, when not ok
	ElapsedSeconds float64        `json:"elapsed_seconds"` // wall time of the run
	Counts         map[string]int `json:"counts"`          // steps per outcome
	Steps          []StageStepDoc `json:"steps"`
}

// StageStepDoc is one step of a StageDoc.
type StageStepDoc struct {
	Key             string                      `json:"key"`
	Stage           string                      `json:"stage"`
	Hash            string                      `json:"hash"`
	Outcome         string                      `json:"outcome"` // done | skipped | failed | busy | blocked | cancelled
	DurationSeconds float64                     `json:"duration_seconds"`
	Error           string                      `json:"error,omitempty"`
	Log             string                      `json:"log,omitempty"`
	Metrics         map[string]float64          `json:"metrics,omitempty"` // key metrics of a done or skipped step
	Result          *runstore.CalibrationResult `json:"result,omitempty"`  // calibrate: the step's metrics.json
}

// printStageJSON prints the --json document of a stage command that got
// as far as selecting its steps, and returns err (the command's error).
func (g *Globals) printStageJSON(command string, env *pipeline.Env, steps []plan.Step, res executor.Result, err error) error {
	if perr := printJSON(g.Out, stageDoc(command, env, steps, res, err)); perr != nil {
		return errors.Join(err, perr)
	}
	return err
}

// stageDoc builds the document of a stage command from its outcomes.
func stageDoc(command string, env *pipeline.Env, steps []plan.Step, res executor.Result, err error) StageDoc {
	d := StageDoc{Command: command, Experiment: env.Store.Root, OK: err == nil, ElapsedSeconds: res.Elapsed.Seconds(),
		Counts: map[string]int{}, Steps: []StageStepDoc{}}
	if err != nil {
		d.Error = err.Error()
	}
	byKey := map[string]executor.Outcome{}
	for _, o := range res.Outcomes {
		byKey[o.Key] = o
	}
	for _, s := range steps {
		o, ok := byKey[s.Key]
		if !ok {
			o = executor.Outcome{Key: s.Key, Status: executor.Cancelled}
		}
		sd := StageStepDoc{Key: s.Key, Stage: s.Stage, Hash: s.Hash, Outcome: string(o.Status),
			DurationSeconds: o.Duration.Seconds(), Log: o.Log}
		if o.Err != nil {
			sd.Error = o.Err.Error()
		}
		if o.Status == executor.Done || o.Status == executor.Skipped {
			sd.Metrics, sd.Result = stepMetrics(env.Store, s)
		}
		d.Counts[sd.Outcome]++
		d.Steps = append(d.Steps, sd)
	}
	return d
}

// stepMetrics reads a finished step's key metrics: a teacher's or
// student's summary.json, a calibration's metrics.json.
func stepMetrics(st *runstore.Store, s plan.Step) (map[string]float64, *runstore.CalibrationResult) {
	switch s.Stage {
	case plan.StageTeachers:
		var sum runstore.TeacherSummary
		if atomicfile.ReadJSON(st.Path(s.Key, runstore.SummaryFile), &sum) != nil {
			return nil, nil
		}
		return map[string]float64{"params": float64(sum.Params), "epochs": float64(sum.Epochs), "wall_seconds": sum.WallSeconds,
			"val_accuracy": sum.Val.Accuracy, "test_accuracy": sum.Test.Accuracy, "test_nll": sum.Test.NLL, "test_ece": sum.Test.ECE}, nil
	case plan.StageStudents:
		var sum runstore.StudentSummary
		if atomicfile.ReadJSON(st.Path(s.Key, runstore.SummaryFile), &sum) != nil {
			return nil, nil
		}
		m := map[string]float64{"params": float64(sum.Params), "epochs": float64(sum.Epochs), "wall_seconds": sum.WallSeconds,
			"val_accuracy": sum.Val.Accuracy, "test_accuracy": sum.Test.Accuracy, "test_nll": sum.Test.NLL, "test_ece": sum.Test.ECE}
		if sum.EffectiveTemperature != 0 {
			m["effective_temperature"] = sum.EffectiveTemperature
		}
		return m, nil
	case plan.StageCalibration:
		var res runstore.CalibrationResult
		if atomicfile.ReadJSON(st.Path(s.Key, runstore.CalibResultFile), &res) != nil {
			return nil, nil
		}
		sp := res.Val
		prefix := "val_"
		if res.Test != nil {
			sp, prefix = *res.Test, "test_"
		}
		m := map[string]float64{prefix + "ece_before": sp.Before.ECE, prefix + "ece_after": sp.After.ECE,
			prefix + "nll_before": sp.Before.NLL, prefix + "nll_after": sp.After.NLL,
			prefix + "accuracy_before": sp.Before.Accuracy, prefix + "accuracy_after": sp.After.Accuracy}
		if t := res.Temperature(); !math.IsNaN(t) {
			m["temperature"] = t // the calibrator's softening temperature (temp's T)
		}
		return m, &res
	}
	return nil, nil
}

// PlanDoc is the document of `kdcal run --dry-run --json`.
type PlanDoc struct {
	Experiment string         `json:"experiment"`
	ConfigHash string         `json:"config_hash"` // runstore.Hash of the resolved configuration
	Verified   bool           `json:"verified"`    // outputs checked by SHA-256 (--verify), else by size
	Counts     map[string]int `json:"counts"`      // steps per state
	Steps      []PlanStepDoc  `json:"steps"`
	Estimate   EstimateDoc    `json:"estimate"`
	Configs    []ConfigDoc    `json:"configs"` // the store's configuration history
}

// PlanStepDoc is one step of a PlanDoc.
type PlanStepDoc struct {
	Key              string   `json:"key"`
	Stage            string   `json:"stage"`
	Hash             string   `json:"hash"`
	State            string   `json:"state"` // done | unverified | damaged | stale | failed | resumable | invalid | pending
	Note             string   `json:"note,omitempty"`
	Deps             []string `json:"deps"`
	Cost             float64  `json:"cost"`              // plan cost: training multiply-adds per example (teachers, students); relative otherwise
	Work             float64  `json:"work"`              // what the rate is per: multiply-adds (training) or 1 (a step)
	WorkUnit         string   `json:"work_unit"`         // multiply-add | step
	Left             float64  `json:"left"`              // fraction still to do: 0 done, 1 to run, between for a resumable step
	RateGroup        string   `json:"rate_group"`        // the rate it is estimated with
	EstimatedSeconds float64  `json:"estimated_seconds"` // left × work × rate, on one core; 0 when done or blocked
	Blocked          bool     `json:"blocked,omitempty"` // a dependency is neither done nor in the run (--stage)
}

// EstimateDoc is the time estimate of a PlanDoc.
type EstimateDoc struct {
	StepsToRun  int     `json:"steps_to_run"`
	Blocked     int     `json:"steps_blocked"`
	CoreSeconds float64 `json:"core_seconds"` // Σ estimated seconds of the steps to run, one core each
	CoreHours   float64 `json:"core_hours"`
	Workers     int     `json:"workers"`      // run.workers resolved (0 → cores)
	Executor    string  `json:"executor"`     // run.executor
	WallSeconds float64 `json:"wall_seconds"` // the schedule of the steps on `workers` workers
	WallHours   float64 `json:"wall_hours"`
	Rates       []Rate  `json:"rates"`
}

// ConfigDoc is one configuration of the store's history.
type ConfigDoc struct {
	Hash      string    `json:"hash"`
	FirstUsed time.Time `json:"first_used"`
	Current   bool      `json:"current"` // the configuration of this command
	Path      string    `json:"path"`
}

// ReportDoc is the document of `kdcal report --json`.
type ReportDoc struct {
	Dir           string             `json:"dir"`    // the published report directory
	Readme        string             `json:"readme"` // its README.md
	Hash          string             `json:"report_hash"`
	StepsUsed     int                `json:"steps_used"`
	StepsExpected int                `json:"steps_expected"`
	Unused        []UnusedStepDoc    `json:"unused"`
	Files         []string           `json:"files"` // every file written, relative to dir
	Headline      string             `json:"headline"`
	Settings      []ReportSettingDoc `json:"settings"`
	StatsFile     string             `json:"stats_file"` // stats.json: every statistic (this is a digest)
}

// UnusedStepDoc is a step the report could not use.
type UnusedStepDoc struct {
	Key    string `json:"key"`
	Status string `json:"status"`
	Reason string `json:"reason"`
}

// ReportSettingDoc is one KD setting's conclusion numbers.
type ReportSettingDoc struct {
	Setting   string                `json:"setting"`
	SizeClaim map[string]string     `json:"size_claim"`                         // per arm: supported | trend without significance | inconclusive | unavailable
	SizeVsAcc map[string]CorrDigest `json:"teacher_params_vs_student_accuracy"` // per arm
	RhoDiff   *CorrDigest           `json:"rho_calibrated_minus_raw,omitempty"`
}

// CorrDigest is a statistic with its interval and p-value.
type CorrDigest struct {
	Value *float64    `json:"value"` // Spearman ρ (or the difference of two); null when not estimable
	CI95  [2]*float64 `json:"ci95"`  // percentile bootstrap interval; nulls when not estimable
	P     *float64    `json:"p_value"`
	N     int         `json:"n"` // units (sizes) or seeds it rests on
	Note  string      `json:"note,omitempty"`
}

// planDoc is the --json document of a dry run.
func planDoc(env *pipeline.Env, steps []plan.Step, est planEstimate) PlanDoc {
	d := PlanDoc{Experiment: env.Store.Root, ConfigHash: runstore.Hash(env.Cfg), Verified: env.Store.Verify,
		Counts: map[string]int{}, Steps: []PlanStepDoc{}, Configs: []ConfigDoc{},
		Estimate: EstimateDoc{StepsToRun: est.ToRun, Blocked: est.Blocked, CoreSeconds: est.CoreSeconds,
			CoreHours: est.CoreSeconds / 3600, Workers: est.Workers, Executor: env.Cfg.Run.Executor,
			WallSeconds: est.WallSeconds, WallHours: est.WallSeconds / 3600, Rates: est.Rates}}
	for _, s := range steps {
		st, se := est.states[s.Key], est.Steps[s.Key]
		unit := "step"
		if isTrainingGroup(rateGroup(env.Cfg, s)) {
			unit = "multiply-add"
		}
		deps := s.Deps
		if deps == nil {
			deps = []string{}
		}
		d.Counts[st.status]++
		d.Steps = append(d.Steps, PlanStepDoc{Key: s.Key, Stage: s.Stage, Hash: s.Hash, State: st.status, Note: st.note,
			Deps: deps, Cost: s.Cost, Work: se.Work, WorkUnit: unit, Left: se.Left, RateGroup: se.Group,
			EstimatedSeconds: se.Seconds, Blocked: se.Blocked})
	}
	if entries, err := env.Store.Configs(); err == nil {
		cur := runstore.Hash(env.Cfg)
		for _, c := range entries {
			d.Configs = append(d.Configs, ConfigDoc{Hash: c.Hash, FirstUsed: c.FirstUsed, Current: c.Hash == cur, Path: c.Path})
		}
	}
	return d
}
