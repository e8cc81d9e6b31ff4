package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/stat"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/executor"
	"github.com/kdcal/kdcal/internal/pipeline"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/runstore"
	"github.com/kdcal/kdcal/internal/spec"
	"github.com/kdcal/kdcal/internal/version"
)

// The estimate of `kdcal run --dry-run`: each step's seconds on one core
// from its cost and a measured rate, summed into core-hours, and the
// wall-clock of the configured workers.
//
// A training step (teachers, students) costs work = plan cost × training
// examples: plan.Step.Cost is the multiply-adds of training one example
// for the step's epochs (forward + backward ≈ 3× forward, plan.TrainCost),
// so work is the multiply-adds of the whole step. A calibration or report
// step costs one unit (its time hardly depends on the model). A rate is
// seconds per unit of work, per rate group: the stage and model family of
// a training step ("teachers/cnn"), the method of a calibration
// ("calibration/temp"), "report". Its source, in order of preference:
//
//  1. measured: the finished steps of this store (and of --rates-from
//     stores) whose manifest's config_hash matches a step of one of the
//     configurations the store records; a step's seconds are its
//     manifest's finished − started and, for training, at least the sum of
//     metrics.jsonl's per-epoch seconds (a resumed step's manifest covers
//     only its last attempt, metrics.jsonl every epoch). rate = Σ seconds /
//     Σ work over the group's steps;
//  2. measured for another group of the same stage (training: seconds per
//     multiply-add of the other family; calibration: of the other methods);
//     for training, else the other training stage's steps, proportionally;
//  3. the default of this build (defaultRates), measured once on the
//     development machine and not on this one.
//
// Steps finished with the current hash cost nothing; a resumable step
// costs the fraction its progress.json says is left.

// externalGroup is the rate group of teachers read from teacher.external_dir:
// an import, timed per step, not training.
const externalGroup = plan.StageTeachers + "/" + config.SourceExternal

// rateGroup is the group whose rate a step's seconds are estimated with.
func rateGroup(cfg *config.Config, s plan.Step) string {
	switch s.Stage {
	case plan.StageTeachers:
		if cfg.Teacher.Source == config.SourceExternal {
			return externalGroup
		}
		return s.Stage + "/" + cfg.Teacher.Family
	case plan.StageStudents:
		return s.Stage + "/" + cfg.Student.Family
	case plan.StageCalibration:
		return s.Stage + "/" + s.Method
	default:
		return s.Stage
	}
}

// isTraining reports a stage whose work is multiply-adds.
func isTraining(stage string) bool { return stage == plan.StageTeachers || stage == plan.StageStudents }

// isTrainingGroup reports a rate group whose work is multiply-adds: a
// training stage's, except external teachers' imports.
func isTrainingGroup(group string) bool {
	stage, _, _ := cutGroup(group)
	return isTraining(stage) && group != externalGroup
}

// stepWork is a step's work: multiply-adds for training, 1 otherwise.
func stepWork(cfg *config.Config, s plan.Step) float64 {
	if isTrainingGroup(rateGroup(cfg, s)) {
		return s.Cost * float64(trainExamples(cfg))
	}
	return 1
}

// trainExamples is the size of the training split of cfg, known without
// reading the data: the official training set (the dataset's descriptor,
// spec.Dataset.Train; data.synthetic.train for a generated one) less
// data.val_fraction, capped at data.train_limit (within a few examples of
// the stratified split's own rounding).
func trainExamples(cfg *config.Config) int {
	n := cfg.Data.Synthetic.Train
	if d, err := spec.LookupDataset(cfg.Data.Dataset); err == nil && d.Train > 0 {
		n = d.Train
	}
	n = int(math.Round(float64(n) * (1 - cfg.Data.ValFraction)))
	if cfg.Data.TrainLimit > 0 && cfg.Data.TrainLimit < n {
		n = cfg.Data.TrainLimit
	}
	return n
}

// defaultRate is a build's fallback rate of each kind of step.
type defaultRate struct {
	training    float64 // seconds per multiply-add on one core (one BLAS thread)
	calibration float64 // seconds per calibration step
	report      float64 // seconds per report step
}

// defaultRates, per GEMM kernel of the build (version.GEMM), come from
// `make bench`'s end-to-end quick study on the development machine (2-core
// AMD EPYC Zen 3, README "Speed"): 596 CPU-seconds with OpenBLAS and 526
// with the pure-Go AVX2 kernel for the study's 76 steps, less about 1 s
// per calibration step and 10 s for the report, spread over its 63
// training steps' 7.29e12 multiply-adds (12.7 and 14.5 GMAC per CPU-second;
// docs/json.md, "Estimates"). The
// gonum fallback trains 2.1–5.2× slower than PyTorch where the AVX2 kernel
// is 0.6×: 5× the AVX2 rate.
var defaultRates = map[string]defaultRate{
	"openblas":      {training: 574.0 / 7.29e12, calibration: 1, report: 10},
	"avx2-fma-6x16": {training: 504.0 / 7.29e12, calibration: 1, report: 10},
	"gonum":         {training: 5 * 504.0 / 7.29e12, calibration: 1, report: 10},
}

// defaultRateKey is the key of this build in defaultRates.
func defaultRateKey() string {
	if _, ok := defaultRates[version.GEMM]; ok {
		return version.GEMM
	}
	return "gonum"
}

// Rate is the seconds per unit of work of one rate group.
type Rate struct {
	Group          string  `json:"group"`            // e.g. teachers/cnn, calibration/temp, report
	Unit           string  `json:"unit"`             // multiply-add (training) or step
	SecondsPerStep float64 `json:"seconds_per_step"` // fixed seconds of each step (0 unless fitted, see measurement.fit)
	SecondsPerUnit float64 `json:"seconds_per_unit"` // seconds per unit of work
	Source         string  `json:"source"`           // measured | measured-other-group | default
	Steps          int     `json:"measured_steps"`   // finished steps it was measured on (0 for default)
	From           string  `json:"from"`             // where: the stores, the other group, or the build's default
}

// measurement is the finished steps of one rate group.
type measurement struct {
	seconds, work []float64 // per step
	stores        map[string]bool
}

// fit returns the rate of the group's steps: seconds = per step + per
// unit × work, the least-squares line (gonum's stat.LinearRegression)
// when the steps' work differs by at least 10% and the line's intercept
// and slope are both ≥ 0 (a fixed cost per step: data loading,
// evaluation, writing outputs), otherwise the proportional rate Σ seconds
// / Σ work.
func (m *measurement) fit() (perStep, perUnit float64) {
	if lo, hi := slices.Min(m.work), slices.Max(m.work); len(m.work) >= 2 && hi > 1.1*lo {
		a, b := stat.LinearRegression(m.work, m.seconds, nil, false)
		if a >= 0 && b > 0 {
			return a, b
		}
	}
	return 0, floats.Sum(m.seconds) / floats.Sum(m.work)
}

// Rates holds the measured groups and picks a rate for any group.
type Rates struct {
	groups  map[string]*measurement
	backend string // the defaultRates key of this build
}

// MeasureRates reads the finished steps of each store (the current one
// first): every configuration each records (configs/), and cfg, is built
// into its plan, and a step whose manifest is done with that plan's hash
// for its key is measured. It only reads.
func MeasureRates(cfg *config.Config, stores []string) *Rates {
	r := &Rates{groups: map[string]*measurement{}, backend: defaultRateKey()}
	for _, root := range stores {
		st := &runstore.Store{Root: root}
		seen := map[string]bool{}
		for _, c := range storeConfigs(st, cfg) {
			for _, s := range plan.Build(c).Steps {
				if seen[s.Key] {
					continue
				}
				secs, ok := stepSeconds(st, s)
				if !ok {
					continue
				}
				seen[s.Key] = true
				g := rateGroup(c, s)
				m := r.groups[g]
				if m == nil {
					m = &measurement{stores: map[string]bool{}}
					r.groups[g] = m
				}
				m.seconds = append(m.seconds, secs)
				m.work = append(m.work, stepWork(c, s))
				m.stores[root] = true
			}
		}
	}
	return r
}

// storeConfigs are cfg and the configurations a store records that this
// kdcal can load.
func storeConfigs(st *runstore.Store, cfg *config.Config) []*config.Config {
	out := []*config.Config{cfg}
	entries, _ := st.Configs()
	for _, e := range entries {
		if e.Hash == "" || e.Hash == runstore.Hash(cfg) {
			continue
		}
		if c, err := config.Load(config.Source{File: e.Path}); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// stepSeconds is how long a finished step took, when it finished with the
// step's hash: the manifest's finished − started and, for training, at
// least the sum of metrics.jsonl's epoch seconds.
func stepSeconds(st *runstore.Store, s plan.Step) (float64, bool) {
	m, ok := st.Manifest(s.Key)
	if !ok || m.ConfigHash != s.Hash || m.Finished == nil || m.Started.IsZero() {
		return 0, false
	}
	secs := m.Finished.Sub(m.Started).Seconds()
	if isTraining(s.Stage) {
		secs = max(secs, epochSeconds(st.Path(s.Key, runstore.MetricsLogFile)))
	}
	return secs, secs > 0
}

// epochSeconds sums the "seconds" of every record of a metrics.jsonl (0
// when it cannot be read).
func epochSeconds(path string) float64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var sum float64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec struct {
			Seconds float64 `json:"seconds"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) == nil {
			sum += rec.Seconds
		}
	}
	return sum
}

// Rate returns the rate of a group (see the comment at the top).
func (r *Rates) Rate(group string) Rate {
	stage, _, _ := cutGroup(group)
	training := isTrainingGroup(group)
	unit := "step"
	if training {
		unit = "multiply-add"
	}
	if m := r.groups[group]; m != nil {
		a, b := m.fit()
		return Rate{Group: group, Unit: unit, SecondsPerStep: a, SecondsPerUnit: b, Source: "measured", Steps: len(m.work),
			From: storesText(m.stores)}
	}
	pooled := &measurement{stores: map[string]bool{}}
	var others []string
	for _, g := range sortedKeys(r.groups) {
		if s, _, _ := cutGroup(g); s == stage && isTrainingGroup(g) == training {
			pooled.seconds = append(pooled.seconds, r.groups[g].seconds...)
			pooled.work = append(pooled.work, r.groups[g].work...)
			others = append(others, g)
		}
	}
	if len(others) > 0 {
		a, b := pooled.fit()
		return Rate{Group: group, Unit: unit, SecondsPerStep: a, SecondsPerUnit: b, Source: "measured-other-group",
			Steps: len(pooled.work), From: strings.Join(others, ", ") + " (nothing of " + group + " has finished)"}
	}
	if training {
		// The other training stage's multiply-adds, proportionally: its
		// fixed cost per step (e.g. a teacher's logit dumps) does not carry over.
		for _, g := range sortedKeys(r.groups) {
			if isTrainingGroup(g) {
				pooled.seconds = append(pooled.seconds, r.groups[g].seconds...)
				pooled.work = append(pooled.work, r.groups[g].work...)
				others = append(others, g)
			}
		}
		if len(others) > 0 {
			return Rate{Group: group, Unit: unit, SecondsPerUnit: floats.Sum(pooled.seconds) / floats.Sum(pooled.work),
				Source: "measured-other-stage", Steps: len(pooled.work),
				From: strings.Join(others, ", ") + " (proportionally; nothing of " + stage + " has finished)"}
		}
	}
	d := defaultRates[r.backend]
	v := d.report
	switch {
	case training:
		v = d.training
	case stage == plan.StageCalibration, group == externalGroup:
		v = d.calibration
	}
	return Rate{Group: group, Unit: unit, SecondsPerUnit: v, Source: "default",
		From: "default rate of the " + r.backend + " GEMM build (measured on the development machine), not measured on this machine"}
}

// Seconds is the time of a step of the given work at this rate.
func (r Rate) Seconds(work float64) float64 { return r.SecondsPerStep + r.SecondsPerUnit*work }

func cutGroup(g string) (stage, rest string, ok bool) {
	for i := range len(g) {
		if g[i] == '/' {
			return g[:i], g[i+1:], true
		}
	}
	return g, "", false
}

func storesText(stores map[string]bool) string {
	var s []string
	for k := range stores {
		s = append(s, k)
	}
	sort.Strings(s)
	if len(s) == 1 {
		return s[0]
	}
	return fmt.Sprint(s)
}

// StepEstimate is one step's share of the estimate.
type StepEstimate struct {
	Group   string
	Work    float64 // the step's work (multiply-adds, or 1)
	Left    float64 // fraction of it still to do: 0 done, 1 pending, in between resumable
	Seconds float64 // Left × Work × rate, on one core
	Blocked bool    // a dependency is neither done nor among the steps
}

// Estimate is the time a run of steps takes.
type Estimate struct {
	Steps       map[string]StepEstimate
	CoreSeconds float64 // Σ seconds of the steps to run
	WallSeconds float64 // the schedule of Workers workers (simulate)
	Workers     int
	Rates       []Rate // the rates used, by group
	ToRun       int
	Blocked     int
}

// EstimateRun estimates steps (of env.Plan) with the rates r; left gives
// the fraction of a step still to do (0 when done).
func EstimateRun(env *pipeline.Env, steps []plan.Step, r *Rates, left func(plan.Step) float64, workers int) Estimate {
	e := Estimate{Steps: map[string]StepEstimate{}, Workers: workers}
	rates := map[string]Rate{}
	done := func(key string) bool { st, ok := e.Steps[key]; return ok && st.Left == 0 }
	for _, s := range steps {
		g := rateGroup(env.Cfg, s)
		if _, ok := rates[g]; !ok {
			rates[g] = r.Rate(g)
		}
		se := StepEstimate{Group: g, Work: stepWork(env.Cfg, s), Left: left(s)}
		se.Seconds = se.Left * rates[g].Seconds(se.Work)
		e.Steps[s.Key] = se
	}
	outside := func(key string) bool {
		if _, ok := e.Steps[key]; ok {
			return done(key)
		}
		s, ok := env.Plan.Get(key)
		return ok && left(s) == 0
	}
	blocked := executor.Unrunnable(steps, func(key string) bool { return outside(key) })
	for _, s := range steps {
		se := e.Steps[s.Key]
		if se.Left == 0 {
			continue
		}
		if _, b := blocked[s.Key]; b {
			se.Blocked, se.Seconds = true, 0
			e.Steps[s.Key] = se
			e.Blocked++
			continue
		}
		e.ToRun++
		e.CoreSeconds += se.Seconds
	}
	for _, g := range sortedKeys(rates) {
		e.Rates = append(e.Rates, rates[g])
	}
	e.WallSeconds = simulate(steps, e.Steps, workers)
	return e
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// simulate returns the makespan of running the steps that are neither done
// nor blocked on workers workers as executor.Pool schedules them: a step
// starts once its dependencies have finished, and of the ready steps the
// one of the earliest stage, then the costliest, starts first.
func simulate(steps []plan.Step, est map[string]StepEstimate, workers int) float64 {
	workers = max(workers, 1)
	finish := map[string]float64{} // finish time of each scheduled step
	var todo []plan.Step
	for _, s := range steps {
		switch se := est[s.Key]; {
		case se.Left == 0:
			finish[s.Key] = 0
		case !se.Blocked:
			todo = append(todo, s)
		}
	}
	free := make([]float64, workers) // when each worker is next free
	now := 0.0
	for len(todo) > 0 {
		ready := -1
		for i, s := range todo {
			if !depsFinished(s, finish, now, est) {
				continue
			}
			if ready < 0 || better(s, todo[ready]) {
				ready = i
			}
		}
		w := slices.Index(free, slices.Min(free))
		if ready < 0 || free[w] > now {
			// Advance to the next event: a worker freeing or a step finishing.
			next := nextEvent(now, free, finish)
			if next == now {
				break // nothing runs and nothing is ready: cannot happen for a plan's steps
			}
			now = next
			continue
		}
		s := todo[ready]
		finish[s.Key] = now + est[s.Key].Seconds
		free[w] = finish[s.Key]
		todo = slices.Delete(todo, ready, ready+1)
	}
	return slices.Max(append(free, 0))
}

// depsFinished reports whether every dependency of s that is among the
// steps has finished by now (others are done, or s would be blocked).
func depsFinished(s plan.Step, finish map[string]float64, now float64, est map[string]StepEstimate) bool {
	for _, d := range s.Deps {
		if _, inRun := est[d]; !inRun {
			continue
		}
		f, ok := finish[d]
		if !ok || f > now {
			return false
		}
	}
	return true
}

// better is Pool's order: earlier stage first, then the costlier.
func better(a, b plan.Step) bool {
	ra, rb := slices.Index(plan.Stages, a.Stage), slices.Index(plan.Stages, b.Stage)
	if ra != rb {
		return ra < rb
	}
	return a.Cost > b.Cost
}

// nextEvent is the earliest time after now at which a worker frees or a
// step finishes.
func nextEvent(now float64, free []float64, finish map[string]float64) float64 {
	next := math.Inf(1)
	for _, f := range free {
		if f > now && f < next {
			next = f
		}
	}
	for _, f := range finish {
		if f > now && f < next {
			next = f
		}
	}
	if math.IsInf(next, 1) {
		return now
	}
	return next
}

// hours formats seconds as hours with a sensible precision.
func hours(secs float64) string {
	h := secs / 3600
	switch {
	case h >= 10:
		return fmt.Sprintf("%.0f", h)
	case h >= 1:
		return fmt.Sprintf("%.1f", h)
	default:
		return fmt.Sprintf("%.2f", h)
	}
}

// durationText is a rounded duration, e.g. "2h10m" or "45s".
func durationText(secs float64) string {
	d := time.Duration(secs * float64(time.Second))
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	case d >= time.Minute:
		return d.Round(time.Second).String()
	default:
		return d.Round(100 * time.Millisecond).String()
	}
}

// stepsRoot is the store's absolute path, for naming it in rate sources.
func stepsRoot(root string) string {
	if abs, err := filepath.Abs(root); err == nil {
		return abs
	}
	return root
}

// stepState is a step's state in the store (stepStatus) and why.
type stepState struct{ status, note string }

// planEstimate is the estimate of a dry run with the states it was made from.
type planEstimate struct {
	Estimate
	states map[string]stepState
}

// estimatePlan inspects each step once (stepStatus) and estimates the run:
// done and unverified steps are left 0, a resumable one the fraction its
// progress.json has not done, every other 1.
func estimatePlan(env *pipeline.Env, steps []plan.Step, r *Rates) planEstimate {
	states := map[string]stepState{}
	left := func(s plan.Step) float64 {
		st, ok := states[s.Key]
		if !ok {
			status, note := stepStatus(env, s)
			st = stepState{status, note}
			states[s.Key] = st
		}
		switch st.status {
		case "done", "unverified":
			return 0
		case "resumable":
			if frac, _, ok := pipeline.ReadProgress(env.Store, s); ok && frac < 1 {
				return 1 - frac
			}
		}
		return 1
	}
	return planEstimate{EstimateRun(env, steps, r, left, workers(env.Cfg)), states}
}

// printEstimate prints the totals and the rates of an estimate.
func printEstimate(w io.Writer, env *pipeline.Env, est planEstimate) {
	where := fmt.Sprintf("%d workers", est.Workers)
	if env.Cfg.Run.Executor == "slurm" {
		where += " (run.executor is slurm: the cluster's wall-clock depends on its queue; this is the local schedule)"
	}
	fmt.Fprintf(w, "estimate: %s core-hours for the %d steps to run; about %s wall-clock with %s",
		hours(est.CoreSeconds), est.ToRun, durationText(est.WallSeconds), where)
	if est.Blocked > 0 {
		fmt.Fprintf(w, "; %d blocked steps (a dependency outside --stage is not done) not counted", est.Blocked)
	}
	fmt.Fprintln(w)
	for _, r := range est.Rates {
		fmt.Fprintf(w, "  %-22s %s  %s\n", r.Group, rateText(r), rateSource(r))
	}
}

// rateText is a rate in readable units: effective multiply-adds per second
// on one core for training, seconds per step otherwise.
func rateText(r Rate) string {
	if r.Unit == "multiply-add" {
		return fmt.Sprintf("%5.1f s + work / (%.2f GMAC/s)", r.SecondsPerStep, 1/r.SecondsPerUnit/1e9)
	}
	return fmt.Sprintf("%5.1f s per step              ", r.SecondsPerUnit)
}

// rateSource says where a rate came from.
func rateSource(r Rate) string {
	switch r.Source {
	case "measured":
		return fmt.Sprintf("from %s finished in %s", stepCount(r.Steps), r.From)
	case "measured-other-group", "measured-other-stage":
		return fmt.Sprintf("from %s finished of %s", stepCount(r.Steps), r.From)
	default:
		return r.From
	}
}
