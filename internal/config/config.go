// Package config holds kdcal's typed configuration tree, its defaults, and
// the only use of viper in the project.
//
// Configuration is resolved in this order, later wins:
//
//	built-in defaults (Default) < config file (--config) < environment
//	(KDCAL_ prefix, "." → "_", e.g. KDCAL_DATA_DIR for data.dir) < flags
//
// and then decoded strictly into Config: a key that is not part of the tree
// is an error naming the file (or variable) and the nearest valid key.
// Every other package receives the typed section it needs, never viper.
package config

import (
	"slices"

	"github.com/kdcal/kdcal/internal/spec"
)

// Config is the whole, resolved configuration of one study.
type Config struct {
	// Name names the study; its outputs go to <experiments_dir>/<name>.
	Name string `mapstructure:"name" yaml:"name"`
	// ExperimentsDir is the root of all experiment stores.
	ExperimentsDir string `mapstructure:"experiments_dir" yaml:"experiments_dir"`
	// Seeds lists the training seeds; every (teacher size, seed) and every
	// student arm is trained once per seed.
	Seeds []int `mapstructure:"seeds" yaml:"seeds"`

	Data        Data        `mapstructure:"data" yaml:"data"`
	Teacher     Teacher     `mapstructure:"teacher" yaml:"teacher"`
	Student     Student     `mapstructure:"student" yaml:"student"`
	Calibration Calibration `mapstructure:"calibration" yaml:"calibration"`
	KD          KD          `mapstructure:"kd" yaml:"kd"`
	Report      Report      `mapstructure:"report" yaml:"report"`
	Run         Run         `mapstructure:"run" yaml:"run"`
}

// Data selects the dataset and how the official training set is split.
type Data struct {
	// Dataset is one of Datasets.
	Dataset string `mapstructure:"dataset" yaml:"dataset"`
	// Dir is where `kdcal data fetch` puts the files and loaders read them.
	Dir string `mapstructure:"dir" yaml:"dir"`
	// ValFraction of the official training set is held out, stratified by
	// class, as the validation split that calibrators are fitted on.
	ValFraction float64 `mapstructure:"val_fraction" yaml:"val_fraction"`
	// SplitSeed seeds the train/validation split (independent of training seeds).
	SplitSeed int `mapstructure:"split_seed" yaml:"split_seed"`
	// TrainLimit, when > 0, keeps a stratified subset of this many training
	// examples (after the validation split) for quick studies. 0 keeps all.
	TrainLimit int `mapstructure:"train_limit" yaml:"train_limit"`
	// Normalize is how inputs are scaled for training and evaluation:
	// NormalizeStandardize, (x·scale − mean_c)/std_c with the train split's
	// per-channel statistics, or NormalizeUnit, x·scale alone (x/255 for
	// images: torchvision's ToTensor). See Normalizations.
	Normalize string `mapstructure:"normalize" yaml:"normalize"`
	// Synthetic configures the generated dataset used when Dataset is "synthetic".
	Synthetic Synthetic `mapstructure:"synthetic" yaml:"synthetic"`
}

// Classes returns the number of classes of the configured dataset (0 for an
// unknown one, which Validate reports).
func (d Data) Classes() int {
	sh, err := d.Shape()
	if err != nil {
		return 0
	}
	return sh.Classes
}

// Shape returns the input shape and number of classes of the configured
// dataset, known without reading it, from the dataset registry
// (internal/spec). An unknown name is an error naming data.dataset and the
// registered datasets.
func (d Data) Shape() (spec.Shape, error) {
	ds, err := spec.LookupDataset(d.Dataset)
	if err != nil {
		return spec.Shape{}, &Error{Key: "data.dataset", Msg: err.Error()}
	}
	return ds.Shape(spec.Generated{Features: d.Synthetic.Features, Classes: d.Synthetic.Classes}), nil
}

// Synthetic configures the seeded synthetic dataset (for tests and smoke runs).
type Synthetic struct {
	Train    int `mapstructure:"train" yaml:"train"`       // official-train-set size
	Test     int `mapstructure:"test" yaml:"test"`         // test-set size
	Classes  int `mapstructure:"classes" yaml:"classes"`   // number of classes
	Features int `mapstructure:"features" yaml:"features"` // input dimension (image side² when used by a CNN)
	Seed     int `mapstructure:"seed" yaml:"seed"`         // generator seed
}

// ModelSpec is one architecture as the configuration holds it: its
// family's keys (e.g. conv and hidden for mlp and cnn) with whole numbers
// or lists of whole numbers, read and checked by the family registered
// under teacher.family / student.family (internal/spec).
type ModelSpec = spec.Spec

// Teacher selects the teacher family, the sizes to train, and their recipe,
// or (Source external) the directory of teachers trained elsewhere.
type Teacher struct {
	// Source is "trained" (kdcal trains the teachers) or "external" (their
	// logits are read from ExternalDir; family, size tables and recipe are
	// then unused).
	Source string `mapstructure:"source" yaml:"source"`
	// ExternalDir holds, for Source external, <size>/seed-<n>/train_logits.npy
	// (the whole official training set, official order), test_logits.npy
	// (official test order) and optionally <size>/params.json {"params": N}.
	ExternalDir string `mapstructure:"external_dir" yaml:"external_dir"`
	// Family is a registered model family: which size table below is used.
	Family string `mapstructure:"family" yaml:"family"`
	// Sizes lists the size names to train, smallest first.
	Sizes []string `mapstructure:"sizes" yaml:"sizes"`
	// Train is the teachers' training recipe.
	Train Train `mapstructure:"train" yaml:"train"`
	// Tables maps a family name to its size table (size name → spec): the
	// keys teacher.<family>.<size> of every registered family, e.g.
	// teacher.cnn.tiny. A family registered later brings its own key; no
	// field per family.
	Tables map[string]map[string]ModelSpec `mapstructure:",remain" yaml:",inline"`
}

// Spec returns the architecture of a named teacher size in the configured family.
func (t Teacher) Spec(size string) (ModelSpec, bool) {
	s, ok := t.Table()[size]
	return s, ok
}

// Table returns the size table of the configured family.
func (t Teacher) Table() map[string]ModelSpec { return t.Tables[t.Family] }

// Student is the one fixed student architecture and its recipe.
type Student struct {
	Family string    `mapstructure:"family" yaml:"family"`
	Model  ModelSpec `mapstructure:"model" yaml:"model"`
	Train  Train     `mapstructure:"train" yaml:"train"`
}

// Train is a training recipe.
type Train struct {
	Optimizer      string  `mapstructure:"optimizer" yaml:"optimizer"`             // adam | sgd
	LR             float64 `mapstructure:"lr" yaml:"lr"`                           // peak learning rate
	Momentum       float64 `mapstructure:"momentum" yaml:"momentum"`               // SGD momentum
	WeightDecay    float64 `mapstructure:"weight_decay" yaml:"weight_decay"`       // decoupled for adam (AdamW), coupled L2 for sgd
	Schedule       string  `mapstructure:"schedule" yaml:"schedule"`               // constant | step | cosine
	StepEvery      int     `mapstructure:"step_every" yaml:"step_every"`           // step schedule: epochs between decays
	StepGamma      float64 `mapstructure:"step_gamma" yaml:"step_gamma"`           // step schedule: decay factor
	Epochs         int     `mapstructure:"epochs" yaml:"epochs"`                   // passes over the training split
	BatchSize      int     `mapstructure:"batch_size" yaml:"batch_size"`           // examples per step
	LabelSmoothing float64 `mapstructure:"label_smoothing" yaml:"label_smoothing"` // ε in (1-ε)·onehot + ε/C
	// Init is the initialisation scheme of the weights: InitHe or InitTorch,
	// as the model family supports them (spec.Inits).
	Init string `mapstructure:"init" yaml:"init"`
}

// Calibration lists the post-hoc calibrators to fit on validation logits.
type Calibration struct {
	Methods  []string `mapstructure:"methods" yaml:"methods"`     // see Calibrators
	Bins     int      `mapstructure:"bins" yaml:"bins"`           // bins of ECE/MCE/reliability diagrams
	MatrixL2 float64  `mapstructure:"matrix_l2" yaml:"matrix_l2"` // L2 strength of the matrix calibrator
	HistBins int      `mapstructure:"hist_bins" yaml:"hist_bins"` // bins of the histogram-binning calibrator
}

// KD configures the distillation arms. List-valued keys form a grid; each
// combination is its own set of student steps.
type KD struct {
	Loss          []string  `mapstructure:"loss" yaml:"loss"`                     // KD loss grid: see KDLosses
	DKDAlpha      float64   `mapstructure:"dkd_alpha" yaml:"dkd_alpha"`           // dkd: weight α of TCKD
	DKDBeta       float64   `mapstructure:"dkd_beta" yaml:"dkd_beta"`             // dkd: weight β of NCKD
	Temperature   []float64 `mapstructure:"temperature" yaml:"temperature"`       // τ grid
	KDWeight      []float64 `mapstructure:"kd_weight" yaml:"kd_weight"`           // weight of τ²·KL grid
	CEWeight      float64   `mapstructure:"ce_weight" yaml:"ce_weight"`           // weight of CE(y, s)
	StudentEpochs []int     `mapstructure:"student_epochs" yaml:"student_epochs"` // epochs grid; empty = student.train.epochs
	Arms          []string  `mapstructure:"arms" yaml:"arms"`                     // raw | calibrated | scratch
	Calibrator    string    `mapstructure:"calibrator" yaml:"calibrator"`         // calibrator used by the calibrated arm
}

// Report configures `kdcal report`.
type Report struct {
	Bootstrap    int      `mapstructure:"bootstrap" yaml:"bootstrap"`       // bootstrap resamples for CIs
	Permutations int      `mapstructure:"permutations" yaml:"permutations"` // permutations for p-values
	Seed         int      `mapstructure:"seed" yaml:"seed"`                 // RNG seed of bootstrap/permutation
	Formats      []string `mapstructure:"formats" yaml:"formats"`           // figure formats: png, svg
}

// Run configures how `kdcal run` executes the plan.
type Run struct {
	Executor    string `mapstructure:"executor" yaml:"executor"`         // local | slurm
	Workers     int    `mapstructure:"workers" yaml:"workers"`           // parallel steps; 0 = number of cores
	BLASThreads int    `mapstructure:"blas_threads" yaml:"blas_threads"` // OpenBLAS threads per step
	Slurm       Slurm  `mapstructure:"slurm" yaml:"slurm"`
}

// Slurm configures the Slurm executor.
type Slurm struct {
	Partition   string   `mapstructure:"partition" yaml:"partition"`         // empty = cluster default
	Time        string   `mapstructure:"time" yaml:"time"`                   // --time per task
	Mem         string   `mapstructure:"mem" yaml:"mem"`                     // --mem per task
	CPUsPerTask int      `mapstructure:"cpus_per_task" yaml:"cpus_per_task"` // --cpus-per-task
	Extra       []string `mapstructure:"extra" yaml:"extra"`                 // extra sbatch arguments
	Poll        string   `mapstructure:"poll" yaml:"poll"`                   // squeue polling interval (Go duration)
}

// Enumerations accepted by Validate.
const (
	FamilyMLP = "mlp"
	FamilyCNN = "cnn"

	// NormalizeStandardize is the default data.normalize: per-channel
	// standardisation with the train split's mean and standard deviation.
	NormalizeStandardize = "standardize"
	// NormalizeUnit scales inputs by the dataset's pixel scale only (x/255).
	NormalizeUnit = "unit"

	// InitHe is the default *.train.init (see spec.InitHe).
	InitHe = spec.InitHe
	// InitTorch is PyTorch's default initialisation (see spec.InitTorch).
	InitTorch = spec.InitTorch

	SourceTrained  = "trained"
	SourceExternal = "external"

	ArmRaw        = "raw"
	ArmCalibrated = "calibrated"
	ArmScratch    = "scratch"

	// LossKD is the default KD loss (Hinton et al. 2015).
	LossKD = "kd"
)

var (
	Datasets       = []string{"mnist", "fashion-mnist", "cifar10", "cifar100", "synthetic"} // the built-in datasets, in this order for listings
	Families       = []string{FamilyMLP, FamilyCNN}                                         // the built-in families
	Sources        = []string{SourceTrained, SourceExternal}
	Normalizations = []string{NormalizeStandardize, NormalizeUnit}
	Optimizers     = []string{"adam", "sgd"}
	Schedules      = []string{"constant", "step", "cosine"}
	Arms           = []string{ArmRaw, ArmCalibrated, ArmScratch}
	Executors      = []string{"local", "slurm"}
	Calibrators    = []string{"none", "temp", "vector", "matrix", "hist", "isotonic"}
	// KDLosses are the names of distill's loss registry (a test keeps them
	// equal): config, a leaf package, cannot import the trainer to ask it.
	KDLosses = []string{LossKD, "dkd", "mse"}
	// UntemperedLosses are the KD losses that have no temperature (τ does
	// not change their term; distill's conformance test checks it on every
	// registered loss): the plan trains them once per kd_weight × epochs
	// instead of once per τ of the grid.
	UntemperedLosses = []string{"mse"}
	FigureKinds      = []string{"png", "svg", "pdf"}
)

// Tempered reports whether the KD loss named has a temperature τ.
func Tempered(loss string) bool { return !slices.Contains(UntemperedLosses, loss) }
