package stage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/data"
	"github.com/kdcal/kdcal/internal/metrics"
	"github.com/kdcal/kdcal/internal/npyfile"
	"github.com/kdcal/kdcal/internal/pipeline"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/runstore"
)

// Teachers from elsewhere (teacher.source external): a teacher step reads
// the logits a teacher trained outside kdcal gave on the whole official
// training set and on the test set (plan.ExternalFiles), slices the
// training rows into this study's train and validation splits (the split
// indices data.Load makes for kdcal's own teachers, data.train_limit
// included), and writes the outputs of a trained teacher — logits, labels
// and indices per split, summary.json with accuracy, NLL and ECE computed
// from the logits — without a model file. Calibration, students and the
// report then read them as they read a trained teacher's.

// FamilyExternal is the family an external teacher's summary.json records.
const FamilyExternal = "external"

// externalTeacher is one external teacher's logits, checked against the
// splits: official-order rows of the training and the test set.
type externalTeacher struct {
	size        string
	seed        int
	train, test string // the files read
	params      int    // from <size>/params.json, 0 without one
	trainLogits []float64
	testLogits  []float64
	classes     int
}

// Check implements pipeline.Checker: before anything of a run starts, every
// external teacher step still to do has its files read and checked, so
// that a missing size or seed or a bad file stops the run before any
// training (a trained teacher has nothing to check).
func (t *Teachers) Check(_ context.Context, env *pipeline.Env, steps []plan.Step) error {
	if env.Cfg.Teacher.Source != config.SourceExternal || len(steps) == 0 {
		return nil
	}
	sp, err := splits(env)
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range steps {
		if _, err := readExternal(env.Cfg, sp, s.Size, s.Seed); err != nil {
			var ce *config.Error
			if errors.As(err, &ce) {
				return err // external_dir itself: once, not once per step
			}
			if !slices.ContainsFunc(errs, func(e error) bool { return e.Error() == err.Error() }) {
				errs = append(errs, err) // a missing size once, not once per seed
			}
		}
	}
	return errors.Join(errs...)
}

// prepareExternal reads and checks the external teacher of step s.
func (t *Teachers) prepareExternal(env *pipeline.Env, s plan.Step) (pipeline.Job, error) {
	sp, err := splits(env)
	if err != nil {
		return nil, err
	}
	et, err := readExternal(env.Cfg, sp, s.Size, s.Seed)
	if err != nil {
		return nil, err
	}
	return &externalJob{env: env, s: s, splits: sp, et: et}, nil
}

// readExternal reads the external teacher (size, seed) of cfg and checks
// it against the splits: its directory, files, shapes (the official
// training and test set sizes, the dataset's classes), finite values, and
// params.json when there is one.
func readExternal(cfg *config.Config, sp *data.Splits, size string, seed int) (*externalTeacher, error) {
	dir := cfg.Teacher.ExternalDir
	if err := checkExternalDir(dir); err != nil {
		return nil, err
	}
	train, test, paramsFile := plan.ExternalFiles(dir, size, seed)
	if err := checkExternalSize(dir, size); err != nil {
		return nil, err
	}
	et := &externalTeacher{size: size, seed: seed, train: train, test: test, classes: sp.Train.Classes}
	var err error
	if et.params, err = readExternalParams(paramsFile); err != nil {
		return nil, err
	}
	want := []struct {
		path   string
		rows   int
		what   string
		logits *[]float64
	}{
		{train, sp.Official, "official training set (validation rows included)", &et.trainLogits},
		{test, sp.Test.N, "official test set", &et.testLogits},
	}
	for _, w := range want {
		if err := checkExternalSeed(w.path, size, seed, dir); err != nil {
			return nil, err
		}
		logits, n, c, err := npyfile.ReadMatrix(w.path)
		if err != nil {
			return nil, fmt.Errorf("%w; save the teacher's logits as a float32 N×C array of finite values (numpy.save)", err)
		}
		if n != w.rows {
			return nil, &data.Error{Path: w.path, Msg: fmt.Sprintf("%d rows, but the %s of %s has %d examples", n, w.what, sp.Dataset, w.rows),
				Hint: "save one row per example of the " + w.what + ", in its official order: kdcal slices its own train and validation rows"}
		}
		if c != et.classes {
			return nil, &data.Error{Path: w.path, Msg: fmt.Sprintf("%d columns, but %s has %d classes", c, sp.Dataset, et.classes),
				Hint: "save the logits of the dataset's classes (N×C, one column per class in label order); check data.dataset"}
		}
		if i := slices.IndexFunc(logits, func(x float64) bool { return math.Abs(x) > math.MaxFloat32 }); i >= 0 {
			return nil, &data.Error{Path: w.path, Msg: fmt.Sprintf("value %g at row %d, column %d is beyond float32's range", logits[i], i/c, i%c),
				Hint: "kdcal stores logits as float32; check the export (logits of this size are a sign of a diverged teacher)"}
		}
		*w.logits = logits
	}
	return et, nil
}

// checkExternalDir reports a teacher.external_dir that does not exist or is
// not a directory: a configuration error.
func checkExternalDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &config.Error{Key: "teacher.external_dir", Msg: fmt.Sprintf("%s does not exist; set it to the directory holding "+
			"<size>/seed-<n>/train_logits.npy and test_logits.npy (see the README, \"Bring PyTorch-trained teachers\")", dir)}
	case err != nil:
		return &config.Error{Key: "teacher.external_dir", Msg: err.Error()}
	case !fi.IsDir():
		return &config.Error{Key: "teacher.external_dir", Msg: fmt.Sprintf("%s is a file, not a directory", dir)}
	}
	return nil
}

// checkExternalSize reports a size of teacher.sizes without a directory,
// listing the sizes that are there.
func checkExternalSize(dir, size string) error {
	sd := filepath.Join(dir, size)
	if fi, err := os.Stat(sd); err == nil && fi.IsDir() {
		return nil
	}
	found := listDirs(dir, func(string) bool { return true })
	return &data.Error{Path: sd, Msg: fmt.Sprintf("teacher size %q (teacher.sizes) has no directory in teacher.external_dir", size),
		Hint: fmt.Sprintf("export its logits to %s/seed-<n>/, or list only the sizes there in teacher.sizes (found: %s)", sd, orNone(found))}
}

// checkExternalSeed reports a missing logits file of (size, seed), listing
// the seeds of that size that are there.
func checkExternalSeed(path, size string, seed int, dir string) error {
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		return nil
	} else if err == nil {
		return &data.Error{Path: path, Msg: "is not a regular file", Hint: "save the logits there with numpy.save"}
	}
	found := listDirs(filepath.Join(dir, size), func(n string) bool {
		_, err := strconv.Atoi(strings.TrimPrefix(n, "seed-"))
		return strings.HasPrefix(n, "seed-") && err == nil
	})
	return &data.Error{Path: path, Msg: fmt.Sprintf("missing: teacher %s has no logits for seed %d (listed in seeds)", size, seed),
		Hint: fmt.Sprintf("export seed %d's %s there, or set seeds to the seeds exported (found: %s)", seed, filepath.Base(path), orNone(found))}
}

// readExternalParams reads the optional <size>/params.json {"params": N}.
func readExternalParams(path string) (int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, &data.Error{Path: path, Msg: err.Error()}
	}
	var p struct {
		Params *int64 `json:"params"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || p.Params == nil || *p.Params <= 0 {
		msg := "must be {\"params\": N} with N > 0, the teacher's number of trainable parameters"
		if err != nil {
			msg += ": " + err.Error()
		}
		return 0, &data.Error{Path: path, Msg: msg,
			Hint: "write it with json.dump({\"params\": sum(p.numel() for p in model.parameters())}, f), or remove it (the report then has no parameter axis)"}
	}
	return int(*p.Params), nil
}

// listDirs lists the subdirectories of dir whose names keep accepts.
func listDirs(dir string, keep func(string) bool) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		if e.IsDir() && keep(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

// externalJob writes an external teacher's outputs.
type externalJob struct {
	env    *pipeline.Env
	s      plan.Step
	splits *data.Splits
	et     *externalTeacher
	sum    runstore.TeacherSummary
}

func (j *externalJob) Manifest() runstore.Manifest {
	seed := j.s.Seed
	return runstore.Manifest{Key: j.s.Key, Kind: runstore.KindTeacher, ConfigHash: j.s.Hash, Seed: &seed}
}

// Write slices the official-order logits into the train and validation
// rows (by their official indices) and writes the teacher's outputs.
func (j *externalJob) Write(_ context.Context, st *runstore.Step) error {
	t0 := time.Now()
	sp, et, c := j.splits, j.et, j.et.classes
	bins := j.env.Cfg.Calibration.Bins
	outs := []struct {
		name   string
		d      *data.Dataset
		logits []float32
	}{
		{runstore.SplitTrain, sp.Train, rows32(et.trainLogits, sp.Train.Index, c)},
		{runstore.SplitVal, sp.Val, rows32(et.trainLogits, sp.Val.Index, c)},
		{runstore.SplitTest, sp.Test, rows32(et.testLogits, sp.Test.Index, c)},
	}
	sum := runstore.TeacherSummary{Size: j.s.Size, Seed: j.s.Seed, Family: FamilyExternal, Params: et.params}
	for _, o := range outs {
		if err := npyfile.WriteFloat32(st.Path(runstore.LogitsFile(o.name)), o.logits, o.d.N, c); err != nil {
			return err
		}
		if err := npyfile.WriteInt64(st.Path(runstore.LabelsFile(o.name)), o.d.Y); err != nil {
			return err
		}
		if o.name != runstore.SplitTest {
			if err := npyfile.WriteInt64(st.Path(runstore.IndexFile(o.name)), o.d.Index); err != nil {
				return err
			}
		}
		// As the trainer evaluates: the stored float32 logits, widened.
		m := metrics.Evaluate(widen(o.logits), o.d.Y, c, bins)
		switch o.name {
		case runstore.SplitVal:
			sum.Val = m
		case runstore.SplitTest:
			sum.Test = m
		}
	}
	sum.WallSeconds = time.Since(t0).Seconds()
	if err := atomicfile.WriteJSON(st.Path(runstore.SummaryFile), sum); err != nil {
		return err
	}
	st.SetParam("source", config.SourceExternal)
	st.SetParam("external_train", et.train)
	st.SetParam("external_test", et.test)
	st.SetParam("family", FamilyExternal)
	st.SetParam("params", et.params)
	j.sum = sum
	return nil
}

func (j *externalJob) Committed(env *pipeline.Env) {
	env.Log.Info("external teacher imported", "step", j.s.Key, "from", filepath.Dir(j.et.train), "params", j.sum.Params,
		"test_acc", fmt.Sprintf("%.4f", j.sum.Test.Accuracy), "test_ece", fmt.Sprintf("%.4f", j.sum.Test.ECE))
}

// rows32 returns the rows idx of an n×c row-major matrix as float32.
func rows32(m []float64, idx []int, c int) []float32 {
	out := make([]float32, 0, len(idx)*c)
	for _, i := range idx {
		for _, x := range m[i*c : (i+1)*c] {
			out = append(out, float32(x))
		}
	}
	return out
}

func widen(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// listExternalSizes prints the external teacher sizes of teacher.sizes with
// their parameter counts (params.json) and the seeds found, for
// `kdcal train-teachers --list-sizes`.
func listExternalSizes(w io.Writer, cfg *config.Config) error {
	dir := cfg.Teacher.ExternalDir
	if err := checkExternalDir(dir); err != nil {
		return err
	}
	fmt.Fprintf(w, "External teachers in %s (teacher.source external), %s\n", dir, cfg.Data.Dataset)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SIZE\tPARAMS\tSEEDS FOUND")
	for _, size := range cfg.Teacher.Sizes {
		_, _, pf := plan.ExternalFiles(dir, size, 0)
		n, err := readExternalParams(pf)
		if err != nil {
			return err
		}
		params := "-"
		if n > 0 {
			params = thousands(n)
		}
		seeds := listDirs(filepath.Join(dir, size), func(n string) bool { return strings.HasPrefix(n, "seed-") })
		fmt.Fprintf(tw, "%s\t%s\t%s\n", size, params, orNone(seeds))
	}
	return tw.Flush()
}
