package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kdcal/kdcal/internal/spec"
)

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// validator collects every problem instead of stopping at the first.
type validator struct{ errs []error }

func (v *validator) failf(key, format string, args ...any) {
	v.errs = append(v.errs, &Error{Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) oneOf(key, val string, allowed []string) {
	if !slices.Contains(allowed, val) {
		v.failf(key, "%q is not one of %s", val, strings.Join(allowed, ", "))
	}
}

func (v *validator) positive(key string, x float64, example string) {
	if !(x > 0) || math.IsInf(x, 0) {
		v.failf(key, "%v must be > 0 (e.g. %s)", x, example)
	}
}

func (v *validator) atLeast(key string, x, lo int) {
	if x < lo {
		v.failf(key, "%d must be ≥ %d", x, lo)
	}
}

// Validate reports every out-of-range or inconsistent value, each as an
// *Error naming its key and what a valid value looks like.
func (c *Config) Validate() error {
	v := &validator{}
	if !namePattern.MatchString(c.Name) {
		v.failf("name", "%q must be non-empty and use only letters, digits, '.', '_' and '-' (it names a directory)", c.Name)
	}
	if c.ExperimentsDir == "" {
		v.failf("experiments_dir", "must not be empty (e.g. experiments)")
	}
	v.seeds(c.Seeds)
	v.data(c.Data, c)
	v.teacher(c.Teacher)
	v.family("student.family", c.Student.Family)
	v.model("student.model", c.Student.Family, c.Student.Model)
	v.train("student.train", c.Student.Train)
	v.init("student.train.init", c.Student.Family, c.Student.Train.Init)
	v.calibration(c.Calibration)
	v.kd(c.KD, c.Calibration)
	v.report(c.Report)
	v.run(c.Run)
	return errors.Join(v.errs...)
}

func (v *validator) seeds(seeds []int) {
	if len(seeds) == 0 {
		v.failf("seeds", "list at least one seed (e.g. [0])")
	}
	seen := map[int]bool{}
	for _, s := range seeds {
		if s < 0 {
			v.failf("seeds", "seed %d must be ≥ 0", s)
		}
		if seen[s] {
			v.failf("seeds", "seed %d is listed twice", s)
		}
		seen[s] = true
	}
}

func (v *validator) data(d Data, c *Config) {
	if _, err := spec.LookupDataset(d.Dataset); err != nil {
		v.failf("data.dataset", "%q is not one of %s", d.Dataset, strings.Join(spec.DatasetNames(), ", "))
	}
	if d.Dir == "" {
		v.failf("data.dir", "must not be empty (e.g. data)")
	}
	if !(d.ValFraction > 0 && d.ValFraction <= 0.5) {
		v.failf("data.val_fraction", "%v must be in (0, 0.5] (e.g. 0.1): calibration needs a validation split", d.ValFraction)
	}
	v.oneOf("data.normalize", d.Normalize, Normalizations)
	v.atLeast("data.train_limit", d.TrainLimit, 0)
	if k := d.Classes(); d.TrainLimit > 0 && d.TrainLimit < k {
		v.failf("data.train_limit", "%d is fewer than the %d classes of %s: some class would have no training example; "+
			"use at least %d, or 0 to keep every example", d.TrainLimit, k, d.Dataset, k)
	}
	s := d.Synthetic
	v.atLeast("data.synthetic.train", s.Train, 10)
	v.atLeast("data.synthetic.test", s.Test, 1)
	v.atLeast("data.synthetic.classes", s.Classes, 2)
	v.atLeast("data.synthetic.features", s.Features, 1)
	if d.Dataset == "synthetic" {
		v.syntheticSplit(d)
	}
	if d.Dataset == "synthetic" && (c.Teacher.Family == FamilyCNN || c.Student.Family == FamilyCNN) {
		side := int(math.Sqrt(float64(s.Features)))
		if side*side != s.Features {
			v.failf("data.synthetic.features", "%d must be a perfect square (e.g. 16) when a CNN reads the synthetic set as an image", s.Features)
		}
	}
}

// syntheticSplit checks that the synthetic set's split leaves every class
// examples in both the training and the validation split. Its labels cycle
// through the classes, so class c has ⌊n/k⌋ or ⌈n/k⌉ examples, and the
// split (data.StratifiedSplit) puts round(val_fraction·n_c) of them in
// validation. Real datasets are checked when they are loaded.
func (v *validator) syntheticSplit(d Data) {
	s := d.Synthetic
	if s.Classes < 2 || s.Train < 10 || !(d.ValFraction > 0 && d.ValFraction <= 0.5) {
		return // reported above
	}
	if s.Train < s.Classes {
		v.failf("data.synthetic.train", "%d examples cannot cover %d classes (data.synthetic.classes); use at least %d",
			s.Train, s.Classes, s.Classes)
		return
	}
	for _, n := range []int{s.Train / s.Classes, (s.Train + s.Classes - 1) / s.Classes} {
		k := int(math.Round(d.ValFraction * float64(n)))
		switch {
		case k == 0:
			v.failf("data.val_fraction", "%g puts no example in the validation split for classes of %d examples "+
				"(round(%g × %d) = 0; data.synthetic.train = %d over %d classes); it must be at least 0.5/%d",
				d.ValFraction, n, d.ValFraction, n, s.Train, s.Classes, n)
			return
		case k == n:
			v.failf("data.val_fraction", "%g leaves no training example for classes of %d examples "+
				"(data.synthetic.train = %d over %d classes); lower it or raise data.synthetic.train", d.ValFraction, n, s.Train, s.Classes)
			return
		}
	}
}

func (v *validator) teacher(t Teacher) {
	v.family("teacher.family", t.Family)
	if len(t.Sizes) == 0 {
		v.failf("teacher.sizes", "list at least one size (e.g. [small, large])")
	}
	v.oneOf("teacher.source", t.Source, Sources)
	external := t.Source == SourceExternal
	if external && t.ExternalDir == "" {
		v.failf("teacher.external_dir", "must name the directory of the external teachers' logits when teacher.source is external "+
			"(e.g. --set teacher.external_dir=torch-teachers)")
	}
	table := t.Table()
	seen := map[string]bool{}
	for _, s := range t.Sizes {
		if seen[s] {
			v.failf("teacher.sizes", "size %q is listed twice", s)
		}
		seen[s] = true
		if external {
			// An external size names a directory of teacher.external_dir.
			if !namePattern.MatchString(s) {
				v.failf("teacher.sizes", "size %q must use only letters, digits, '.', '_' and '-' (it names a directory of teacher.external_dir)", s)
			}
			continue
		}
		if _, ok := table[s]; !ok {
			v.failf("teacher.sizes", "size %q is not defined in teacher.%s; defined sizes: %s",
				s, t.Family, strings.Join(SortedNames(table), ", "))
		}
	}
	for _, fam := range slices.Sorted(maps.Keys(t.Tables)) {
		for _, name := range SortedNames(t.Tables[fam]) {
			v.model("teacher."+fam+"."+name, fam, t.Tables[fam][name])
		}
	}
	v.train("teacher.train", t.Train)
	v.init("teacher.train.init", t.Family, t.Train.Init)
}

// init checks an initialisation scheme against the ones its family
// supports (spec.Inits); an unknown family is reported by family.
func (v *validator) init(key, family, scheme string) {
	if inits := spec.Inits(family); inits != nil && !slices.Contains(inits, scheme) {
		v.failf(key, "%q is not an initialisation of the %s family; use one of %s", scheme, family, strings.Join(inits, ", "))
	}
}

// family checks that a family name is registered (internal/spec).
func (v *validator) family(key, name string) {
	if _, err := spec.LookupFamily(name); err != nil {
		v.failf(key, "%q is not one of %s", name, strings.Join(spec.FamilyNames(), ", "))
	}
}

// model checks a spec with its family's own Check; an unknown family is
// reported by family.
func (v *validator) model(key, family string, m ModelSpec) {
	f, err := spec.LookupFamily(family)
	if err != nil {
		return
	}
	for _, p := range f.Check(m) {
		k := key
		if p.Key != "" {
			k += "." + p.Key
		}
		v.failf(k, "%s", p.Msg)
	}
}

func (v *validator) train(key string, t Train) {
	v.oneOf(key+".optimizer", t.Optimizer, Optimizers)
	v.positive(key+".lr", t.LR, "0.001")
	if t.Momentum < 0 || t.Momentum >= 1 {
		v.failf(key+".momentum", "%v must be in [0, 1) (e.g. 0.9)", t.Momentum)
	}
	if t.WeightDecay < 0 {
		v.failf(key+".weight_decay", "%v must be ≥ 0", t.WeightDecay)
	}
	v.oneOf(key+".schedule", t.Schedule, Schedules)
	v.atLeast(key+".step_every", t.StepEvery, 1)
	if !(t.StepGamma > 0 && t.StepGamma <= 1) {
		v.failf(key+".step_gamma", "%v must be in (0, 1] (e.g. 0.1)", t.StepGamma)
	}
	v.atLeast(key+".epochs", t.Epochs, 1)
	v.atLeast(key+".batch_size", t.BatchSize, 1)
	if t.LabelSmoothing < 0 || t.LabelSmoothing >= 1 {
		v.failf(key+".label_smoothing", "%v must be in [0, 1) (e.g. 0.1)", t.LabelSmoothing)
	}
}

func (v *validator) calibration(c Calibration) {
	if len(c.Methods) == 0 {
		v.failf("calibration.methods", "list at least one method (e.g. [temp])")
	}
	for _, m := range c.Methods {
		v.oneOf("calibration.methods", m, Calibrators)
	}
	noDuplicates(v, "calibration.methods", "method", c.Methods)
	v.atLeast("calibration.bins", c.Bins, 1)
	v.atLeast("calibration.hist_bins", c.HistBins, 1)
	if c.MatrixL2 < 0 {
		v.failf("calibration.matrix_l2", "%v must be ≥ 0", c.MatrixL2)
	}
}

func (v *validator) kd(k KD, c Calibration) {
	if len(k.Loss) == 0 {
		v.failf("kd.loss", "list at least one KD loss (%s)", strings.Join(KDLosses, ", "))
	}
	for _, l := range k.Loss {
		v.oneOf("kd.loss", l, KDLosses)
	}
	noDuplicates(v, "kd.loss", "loss", k.Loss)
	if !(k.DKDAlpha >= 0) {
		v.failf("kd.dkd_alpha", "%v must be ≥ 0", k.DKDAlpha)
	}
	if !(k.DKDBeta >= 0) {
		v.failf("kd.dkd_beta", "%v must be ≥ 0", k.DKDBeta)
	}
	if len(k.Temperature) == 0 {
		v.failf("kd.temperature", "list at least one KD temperature (e.g. [4])")
	}
	for _, t := range k.Temperature {
		v.positive("kd.temperature", t, "4")
	}
	noDuplicates(v, "kd.temperature", "temperature", k.Temperature)
	if len(k.KDWeight) == 0 {
		v.failf("kd.kd_weight", "list at least one weight (e.g. [0.9])")
	}
	for _, w := range k.KDWeight {
		if w < 0 {
			v.failf("kd.kd_weight", "%v must be ≥ 0", w)
		}
	}
	noDuplicates(v, "kd.kd_weight", "weight", k.KDWeight)
	if k.CEWeight < 0 {
		v.failf("kd.ce_weight", "%v must be ≥ 0", k.CEWeight)
	}
	for _, e := range k.StudentEpochs {
		v.atLeast("kd.student_epochs", e, 1)
	}
	noDuplicates(v, "kd.student_epochs", "epoch count", k.StudentEpochs)
	if len(k.Arms) == 0 {
		v.failf("kd.arms", "list at least one arm (%s)", strings.Join(Arms, ", "))
	}
	for _, a := range k.Arms {
		v.oneOf("kd.arms", a, Arms)
	}
	noDuplicates(v, "kd.arms", "arm", k.Arms)
	if slices.Contains(k.Arms, ArmCalibrated) {
		v.oneOf("kd.calibrator", k.Calibrator, Calibrators)
		if !slices.Contains(c.Methods, k.Calibrator) {
			v.failf("kd.calibrator", "%q must also be in calibration.methods (%s), so that it is fitted",
				k.Calibrator, strings.Join(c.Methods, ", "))
		}
	}
}

func (v *validator) report(r Report) {
	v.atLeast("report.bootstrap", r.Bootstrap, 0)
	v.atLeast("report.permutations", r.Permutations, 0)
	for _, f := range r.Formats {
		v.oneOf("report.formats", f, FigureKinds)
	}
}

func (v *validator) run(r Run) {
	v.oneOf("run.executor", r.Executor, Executors)
	v.atLeast("run.workers", r.Workers, 0)
	v.atLeast("run.blas_threads", r.BLASThreads, 1)
	v.atLeast("run.slurm.cpus_per_task", r.Slurm.CPUsPerTask, 1)
	if d, err := time.ParseDuration(r.Slurm.Poll); err != nil || d <= 0 {
		v.failf("run.slurm.poll", "%q must be a positive Go duration (e.g. 2s)", r.Slurm.Poll)
	}
}

// noDuplicates reports each value listed more than once in a grid list: a
// grid point would be run twice under one name.
func noDuplicates[T comparable](v *validator, key, what string, xs []T) {
	count := map[T]int{}
	for _, x := range xs {
		if count[x]++; count[x] == 2 {
			v.failf(key, "%s %v is listed more than once", what, x)
		}
	}
}

// SortedNames returns the keys of a size table in a stable order.
func SortedNames(m map[string]ModelSpec) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
