package data

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/spec"
)

// Raw is an official split as read from disk: N examples of C×H×W inputs.
type Raw struct {
	X       []float32 // N × (C·H·W), values as stored (pixels in [0, 255] before scaling)
	Y       []int     // N labels in [0, Classes)
	N       int
	C, H, W int
	Classes int
	Images  string // the images file it was read from ("" for the synthetic set), for messages
}

// D returns the input dimension C·H·W.
func (r Raw) D() int { return r.C * r.H * r.W }

// Dataset is one split ready for training: normalised inputs, labels, and for
// each example its index in the official set it came from.
type Dataset struct {
	Name    string    // "train", "val" or "test"
	X       []float32 // N × D, normalised
	Y       []int     // N labels
	Index   []int     // N: position in the official training set (train, val) or test set (test)
	N, D    int
	C, H, W int // input shape (C·H·W = D)
	Classes int
}

// Splits is what Load returns.
type Splits struct {
	Dataset string
	Train   *Dataset // official training set minus validation (optionally limited), in official order
	Val     *Dataset // stratified validation split, in official order
	Test    *Dataset // official test set, in official order
	// Official is the size of the official training set that Train and Val
	// index into (larger than Train.N + Val.N when data.train_limit drops some).
	Official int
	// Normalize is the data.normalize the splits were prepared with.
	Normalize string
	// Mean and Std are the per-channel statistics used to normalise every
	// split, x' = (x·scale − mean_c) / std_c with scale = PixelScale (1/255
	// for images, 1 for the synthetic set): the train split's for
	// data.normalize standardize (the default), 0 and 1 for unit
	// (x' = x/255, torchvision's ToTensor).
	Mean, Std []float64
}

// Load reads the configured dataset, splits and normalises it as
// data.normalize says (empty: standardize).
func Load(cfg config.Data) (*Splits, error) {
	train, test, err := ReadOfficial(cfg)
	if err != nil {
		return nil, err
	}
	trIdx, valIdx := StratifiedSplit(train.Y, train.Classes, cfg.ValFraction, cfg.SplitSeed)
	if err := checkSplit(train, trIdx, valIdx, cfg, "data.val_fraction"); err != nil {
		return nil, err
	}
	if cfg.TrainLimit > 0 && cfg.TrainLimit < len(trIdx) {
		trIdx = StratifiedSubset(train.Y, trIdx, train.Classes, cfg.TrainLimit, cfg.SplitSeed)
		if err := checkSplit(train, trIdx, valIdx, cfg, "data.train_limit"); err != nil {
			return nil, err
		}
	}
	scale := float32(PixelScale(cfg.Dataset))
	s := &Splits{Dataset: cfg.Dataset, Official: train.N}
	s.Train = subset("train", train, trIdx, scale)
	s.Val = subset("val", train, valIdx, scale)
	all := make([]int, test.N)
	for i := range all {
		all[i] = i
	}
	s.Test = subset("test", test, all, scale)
	s.Normalize = cfg.Normalize
	switch cfg.Normalize {
	case config.NormalizeStandardize, "":
		s.Normalize = config.NormalizeStandardize
		s.Mean, s.Std = channelStats(s.Train)
		for _, d := range []*Dataset{s.Train, s.Val, s.Test} {
			normalise(d, s.Mean, s.Std)
		}
	case config.NormalizeUnit:
		s.Mean, s.Std = unitStats(s.Train.C)
	default:
		return nil, &config.Error{Key: "data.normalize", Msg: fmt.Sprintf("%q is not one of %s", cfg.Normalize,
			strings.Join(config.Normalizations, ", "))}
	}
	return s, nil
}

// unitStats returns the statistics of data.normalize unit, mean 0 and
// standard deviation 1 per channel, so that x' = (x·scale − mean_c)/std_c
// of a model file's metadata is x·scale.
func unitStats(c int) (mean, std []float64) {
	mean, std = make([]float64, c), make([]float64, c)
	for i := range std {
		std[i] = 1
	}
	return mean, std
}

// Reader reads a dataset's official train and test sets from dir
// (<data.dir>/<dataset>; unused by generated datasets).
type Reader func(dir string, cfg config.Data) (train, test Raw, err error)

var readers = map[string]Reader{}

// RegisterReader registers the reader of a dataset registered in
// internal/spec under the same name; a duplicate panics.
func RegisterReader(dataset string, r Reader) {
	if _, dup := readers[dataset]; dup {
		panic("data: reader of " + dataset + " registered twice")
	}
	readers[dataset] = r
}

func init() {
	idx := func(dir string, cfg config.Data) (train, test Raw, err error) {
		train, err = readIDXSet(dir, cfg.Dataset, "train")
		if err == nil {
			test, err = readIDXSet(dir, cfg.Dataset, "t10k")
		}
		return train, test, err
	}
	RegisterReader("mnist", idx)
	RegisterReader("fashion-mnist", idx)
	RegisterReader("cifar10", func(dir string, _ config.Data) (train, test Raw, err error) {
		var tr []string
		for i := 1; i <= 5; i++ {
			tr = append(tr, filepath.Join(dir, fmt.Sprintf("data_batch_%d.bin", i)))
		}
		train, err = readCIFARSet(tr, 1, 10)
		if err == nil {
			test, err = readCIFARSet([]string{filepath.Join(dir, "test_batch.bin")}, 1, 10)
		}
		return train, test, err
	})
	RegisterReader("cifar100", func(dir string, _ config.Data) (train, test Raw, err error) {
		train, err = readCIFARSet([]string{filepath.Join(dir, "train.bin")}, 2, 100)
		if err == nil {
			test, err = readCIFARSet([]string{filepath.Join(dir, "test.bin")}, 2, 100)
		}
		return train, test, err
	})
	RegisterReader("synthetic", func(_ string, cfg config.Data) (train, test Raw, err error) {
		train, test = Synthetic(cfg.Synthetic)
		return train, test, nil
	})
}

// ReadOfficial reads the official train and test sets of the configured
// dataset with its registered reader and checks that their inputs have the
// same shape. A generated dataset (spec.FetchNone) reads no directory.
func ReadOfficial(cfg config.Data) (train, test Raw, err error) {
	ds, err := spec.LookupDataset(cfg.Dataset)
	read, ok := readers[cfg.Dataset]
	if err != nil || !ok {
		return Raw{}, Raw{}, &Error{Path: cfg.Dataset, Msg: "unknown dataset (data.dataset)", Hint: "choose one of " + strings.Join(spec.DatasetNames(), ", ")}
	}
	if ds.Source == spec.FetchNone {
		return read("", cfg)
	}
	if err := checkDataDir(cfg.Dir, cfg.Dataset); err != nil {
		return Raw{}, Raw{}, err
	}
	train, test, err = read(filepath.Join(cfg.Dir, cfg.Dataset), cfg)
	if err == nil && (train.C != test.C || train.H != test.H || train.W != test.W) {
		err = &Error{Path: test.Images, Msg: fmt.Sprintf("test images are %d×%d×%d, but the training images in %s are %d×%d×%d",
			test.C, test.H, test.W, train.Images, train.C, train.H, train.W),
			Hint: "the two files come from different datasets; fetch them again (kdcal data fetch)"}
	}
	return train, test, err
}

// checkDataDir reports a data.dir, or its dataset folder, that exists but
// is not a directory. A missing one is left to the callers, which say how
// to fetch the data.
func checkDataDir(dir, dataset string) error {
	for _, p := range []string{dir, filepath.Join(dir, dataset)} {
		st, err := os.Stat(p)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil
		case err != nil:
			return &Error{Path: p, Msg: "cannot read data.dir: " + err.Error()}
		case !st.IsDir():
			what := "data.dir"
			if p != dir {
				what = "data.dir/" + dataset
			}
			return &Error{Path: p, Msg: what + " is a file, not a directory",
				Hint: "set data.dir to a directory (--set data.dir=DIR or KDCAL_DATA_DIR=DIR), or move the file away; " +
					"`kdcal data fetch` then creates it and copies the dataset in"}
		}
	}
	return nil
}

func readIDXSet(dir, dataset, prefix string) (Raw, error) {
	img, err := findFile(dir, dataset, prefix+"-images-idx3-ubyte")
	if err != nil {
		return Raw{}, err
	}
	lab, err := findFile(dir, dataset, prefix+"-labels-idx1-ubyte")
	if err != nil {
		return Raw{}, err
	}
	p, err := readIDXPair(img, lab, 10)
	if err != nil {
		return Raw{}, err
	}
	return Raw{X: bytesToFloat(p.images), Y: p.labels, N: len(p.labels), C: 1, H: p.h, W: p.w, Classes: 10, Images: img}, nil
}

func readCIFARSet(paths []string, labelBytes, classes int) (Raw, error) {
	px, y, err := readCIFAR(paths, labelBytes, classes)
	if err != nil {
		return Raw{}, err
	}
	return Raw{X: bytesToFloat(px), Y: y, N: len(y), C: 3, H: 32, W: 32, Classes: classes, Images: paths[0]}, nil
}

// findFile returns dir/name.gz or dir/name, whichever exists.
func findFile(dir, dataset, name string) (string, error) {
	for _, cand := range []string{name + ".gz", name} {
		p := filepath.Join(dir, cand)
		if fileExists(p) {
			return p, nil
		}
	}
	return "", &Error{Path: filepath.Join(dir, name+".gz"), Msg: "file not found",
		Hint: fmt.Sprintf("run `kdcal data fetch --dataset %s` (or `make data`)", dataset)}
}

func bytesToFloat(b []byte) []float32 {
	out := make([]float32, len(b))
	for i, v := range b {
		out[i] = float32(v)
	}
	return out
}

func subset(name string, r Raw, idx []int, scale float32) *Dataset {
	d := r.D()
	ds := &Dataset{Name: name, X: make([]float32, len(idx)*d), Y: make([]int, len(idx)), Index: slices.Clone(idx),
		N: len(idx), D: d, C: r.C, H: r.H, W: r.W, Classes: r.Classes}
	for i, j := range idx {
		src := r.X[j*d : (j+1)*d]
		dst := ds.X[i*d : (i+1)*d]
		for k, v := range src {
			dst[k] = v * scale
		}
		ds.Y[i] = r.Y[j]
	}
	return ds
}

// channelStats returns the per-channel mean and (population) standard
// deviation of a split's inputs.
func channelStats(d *Dataset) (mean, std []float64) {
	mean, std = make([]float64, d.C), make([]float64, d.C)
	hw := d.H * d.W
	for c := 0; c < d.C; c++ {
		var s, ss float64
		for i := 0; i < d.N; i++ {
			for _, v := range d.X[i*d.D+c*hw : i*d.D+(c+1)*hw] {
				s += float64(v)
				ss += float64(v) * float64(v)
			}
		}
		n := float64(d.N * hw)
		mean[c] = s / n
		std[c] = math.Sqrt(math.Max(ss/n-mean[c]*mean[c], 0))
		if std[c] < 1e-8 {
			std[c] = 1
		}
	}
	return mean, std
}

func normalise(d *Dataset, mean, std []float64) {
	hw := d.H * d.W
	for i := 0; i < d.N; i++ {
		for c := 0; c < d.C; c++ {
			m, s := float32(mean[c]), float32(std[c])
			row := d.X[i*d.D+c*hw : i*d.D+(c+1)*hw]
			for k := range row {
				row[k] = (row[k] - m) / s
			}
		}
	}
}

// checkSplit reports a class of the official training set that the split
// (or the training limit) leaves without a validation or a training example,
// as a configuration error naming key, the setting responsible: calibration
// and per-class statistics need every class in both splits.
func checkSplit(train Raw, trIdx, valIdx []int, cfg config.Data, key string) error {
	total := classCounts(train.Y, nil, train.Classes)
	inTrain, inVal := classCounts(train.Y, trIdx, train.Classes), classCounts(train.Y, valIdx, train.Classes)
	for c, n := range total {
		switch {
		case n == 0:
			continue // absent from the dataset itself: not the split's doing
		case inVal[c] == 0:
			return &config.Error{Key: "data.val_fraction", Msg: fmt.Sprintf("%g puts no example of class %d (%d examples) in the validation split "+
				"(round(%g × %d) = 0); it must be at least 0.5/%d for every class to have one", cfg.ValFraction, c, n, cfg.ValFraction, n, n)}
		case inTrain[c] == 0 && key == "data.train_limit":
			return &config.Error{Key: key, Msg: fmt.Sprintf("%d leaves class %d without a training example (%d classes); "+
				"raise it, or set 0 to keep every training example", cfg.TrainLimit, c, train.Classes)}
		case inTrain[c] == 0:
			return &config.Error{Key: key, Msg: fmt.Sprintf("%g leaves class %d (%d examples) without a training example: "+
				"all of them go to the validation split; lower it", cfg.ValFraction, c, n)}
		}
	}
	return nil
}

// classCounts counts the labels at positions idx (all when idx is nil) per class.
func classCounts(labels, idx []int, classes int) []int {
	counts := make([]int, classes)
	for c, g := range byClass(labels, idx, classes) {
		counts[c] = len(g)
	}
	return counts
}

// StratifiedSplit splits positions 0..len(labels)-1 into train and validation
// so that each class contributes round(frac·n_c) examples to validation: the
// class proportions of both parts match the whole within one example. Which
// examples go where is drawn with a PCG generator seeded by seed; both
// returned slices are sorted (official order).
func StratifiedSplit(labels []int, classes int, frac float64, seed int) (train, val []int) {
	rng := rand.New(rand.NewPCG(uint64(seed), 0xda7a))
	for _, members := range byClass(labels, nil, classes) {
		rng.Shuffle(len(members), func(i, j int) { members[i], members[j] = members[j], members[i] })
		k := int(math.Round(frac * float64(len(members))))
		val = append(val, members[:k]...)
		train = append(train, members[k:]...)
	}
	slices.Sort(train)
	slices.Sort(val)
	return train, val
}

// StratifiedSubset keeps limit of the positions idx, with per-class quotas
// proportional to the class counts (largest remainder), drawn with a seeded
// PCG generator. The result is sorted.
func StratifiedSubset(labels, idx []int, classes, limit, seed int) []int {
	groups := byClass(labels, idx, classes)
	quota := make([]int, classes)
	rem := make([]float64, classes)
	left := limit
	for c, g := range groups {
		exact := float64(limit) * float64(len(g)) / float64(len(idx))
		quota[c] = int(exact)
		rem[c] = exact - float64(quota[c])
		left -= quota[c]
	}
	order := make([]int, classes)
	for c := range order {
		order[c] = c
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case rem[a] > rem[b]:
			return -1
		case rem[a] < rem[b]:
			return 1
		}
		return 0
	})
	for i := 0; i < left; i++ {
		quota[order[i%classes]]++
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x1317))
	var out []int
	for c, g := range groups {
		rng.Shuffle(len(g), func(i, j int) { g[i], g[j] = g[j], g[i] })
		out = append(out, g[:min(quota[c], len(g))]...)
	}
	slices.Sort(out)
	return out
}

// byClass groups positions (idx, or all positions when idx is nil) by label.
func byClass(labels, idx []int, classes int) [][]int {
	groups := make([][]int, classes)
	if idx == nil {
		for i, y := range labels {
			groups[y] = append(groups[y], i)
		}
		return groups
	}
	for _, i := range idx {
		groups[labels[i]] = append(groups[labels[i]], i)
	}
	return groups
}

// Iterator yields the batches of one epoch in a seeded random order. Its
// buffers are reused between calls to Next.
type Iterator struct {
	d    *Dataset
	perm []int
	bs   int
	off  int
	// Pos holds the current batch's positions in the dataset (rows of X),
	// which distillation uses to look up the teacher's logits.
	Pos []int
	// X holds the current batch's inputs, len(Pos) × D.
	X []float32
	// Y holds the current batch's labels.
	Y []int
}

// Epoch returns an iterator over a permutation of the dataset drawn from rng,
// in batches of bs (the last one may be shorter).
func (d *Dataset) Epoch(rng *rand.Rand, bs int) *Iterator {
	return &Iterator{d: d, perm: rng.Perm(d.N), bs: bs, X: make([]float32, 0, bs*d.D), Y: make([]int, 0, bs)}
}

// Next advances to the next batch and reports whether there is one.
func (it *Iterator) Next() bool {
	if it.off >= len(it.perm) {
		return false
	}
	end := min(it.off+it.bs, len(it.perm))
	it.Pos = it.perm[it.off:end]
	it.off = end
	it.X = it.X[:len(it.Pos)*it.d.D]
	it.Y = it.Y[:len(it.Pos)]
	for i, p := range it.Pos {
		copy(it.X[i*it.d.D:(i+1)*it.d.D], it.d.X[p*it.d.D:(p+1)*it.d.D])
		it.Y[i] = it.d.Y[p]
	}
	return true
}

// Batches returns the number of batches per epoch.
func (d *Dataset) Batches(bs int) int { return (d.N + bs - 1) / bs }

// Shape returns the input shape and number of classes of the configured
// dataset without reading it, from the dataset registry (config.Data.Shape);
// an unknown name is an error naming data.dataset and the valid names.
func Shape(cfg config.Data) (spec.Shape, error) { return cfg.Shape() }

// PixelScale is the factor Load multiplies stored inputs by before
// normalising, as the dataset declares it (spec.Dataset.PixelScale): 1/255
// for the image datasets (pixels in [0, 255] become [0, 1]), 1 for the
// synthetic set, used as generated; 0 for an unknown dataset. A model file
// records it, so that its inputs can be prepared as in training.
func PixelScale(dataset string) float64 {
	d, err := spec.LookupDataset(dataset)
	if err != nil {
		return 0
	}
	return d.PixelScale
}
