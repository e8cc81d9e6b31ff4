package stage

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"strconv"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/calibrate"
	"github.com/kdcal/kdcal/internal/metrics"
	"github.com/kdcal/kdcal/internal/pipeline"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/runstore"
)

// Calibration fits one calibrator per (method, size, seed) on the
// teacher's validation logits into calibration/<method>/<size>/seed-<n>/:
// params.json (the fitted calibrator), metrics.json (every metric before
// and after, on val and test, with the reliability bins) and
// reliability_{val,test}_{before,after}.csv.
type Calibration struct{}

// Name implements pipeline.Stage.
func (Calibration) Name() string { return plan.StageCalibration }

// Command implements pipeline.Stage.
func (Calibration) Command(s plan.Step) string {
	return fmt.Sprintf("kdcal calibrate --method %s --teacher %s --seeds %d", s.Method, s.Size, s.Seed)
}

// Prepare reads the teacher's validation and test logits.
func (Calibration) Prepare(_ context.Context, env *pipeline.Env, s plan.Step) (pipeline.Job, error) {
	tkey := runstore.TeacherKey(s.Size, s.Seed)
	path := func(f func(string) string, split string) string { return env.Store.Path(tkey, f(split)) }
	val, test, err := calibrate.ReadSplits(
		path(runstore.LogitsFile, runstore.SplitVal), path(runstore.LabelsFile, runstore.SplitVal),
		path(runstore.LogitsFile, runstore.SplitTest), path(runstore.LabelsFile, runstore.SplitTest))
	if err != nil {
		return nil, err
	}
	return &calibrationJob{env: env, s: s, teacher: tkey, val: val, test: test}, nil
}

type calibrationJob struct {
	env     *pipeline.Env
	s       plan.Step
	teacher string
	val     calibrate.Split
	test    *calibrate.Split
}

func (j *calibrationJob) Manifest() runstore.Manifest {
	seed := j.s.Seed
	return runstore.Manifest{Key: j.s.Key, Kind: runstore.KindCalibration, ConfigHash: j.s.Hash, Inputs: []string{j.teacher}, Seed: &seed}
}

// Write fits the method and writes params.json, metrics.json and the
// reliability CSVs.
func (j *calibrationJob) Write(ctx context.Context, st *runstore.Step) error {
	env, s := j.env, j.s
	cal, res, err := pipeline.Fit(ctx, env.Log, env.Cfg, s.Method, j.val, j.test, s.Key)
	if err != nil {
		return err
	}
	rep := res.Fit
	if err := calibrate.Save(st.Path(runstore.CalibParamsFile), cal, &rep); err != nil {
		return err
	}
	b, err := pipeline.IndentJSON(res)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(st.Path(runstore.CalibResultFile), b); err != nil {
		return err
	}
	csvs := map[string][]metrics.Bin{
		runstore.ReliabilityFile(runstore.SplitVal, "before"): res.Val.ReliabilityBefore,
		runstore.ReliabilityFile(runstore.SplitVal, "after"):  res.Val.ReliabilityAfter,
	}
	if res.Test != nil {
		csvs[runstore.ReliabilityFile(runstore.SplitTest, "before")] = res.Test.ReliabilityBefore
		csvs[runstore.ReliabilityFile(runstore.SplitTest, "after")] = res.Test.ReliabilityAfter
	}
	for name, bins := range csvs {
		if err := atomicfile.Write(st.Path(name), reliabilityCSV(bins)); err != nil {
			return err
		}
	}
	st.SetParam("method", s.Method)
	st.SetParam("teacher_size", s.Size)
	st.SetParam("bins", res.Bins)
	if t := cal.Describe().Temperature; t > 0 {
		st.SetParam("temperature", t)
	}
	env.Log.Info("calibrated", "step", s.Key, "params", pipeline.ParamSummary(res),
		"val_nll", fmt.Sprintf("%.4f→%.4f", res.Val.Before.NLL, res.Val.After.NLL),
		"val_ece", fmt.Sprintf("%.4f→%.4f", res.Val.Before.ECE, res.Val.After.ECE))
	return nil
}

// reliabilityCSV renders reliability bins as CSV: lo,hi,count,accuracy,confidence.
func reliabilityCSV(bins []metrics.Bin) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"lo", "hi", "count", "accuracy", "confidence"})
	g := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	for _, bin := range bins {
		w.Write([]string{g(bin.Lo), g(bin.Hi), strconv.Itoa(bin.Count), g(bin.Accuracy), g(bin.Confidence)})
	}
	w.Flush()
	return b.Bytes()
}
