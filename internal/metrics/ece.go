package metrics

import (
	"cmp"
	"math"
	"slices"

	"github.com/kdcal/kdcal/internal/metrics/kernel"
)

// Bin is one bin of a reliability diagram.
type Bin struct {
	Lo         float64 `json:"lo"`         // lower edge (exclusive, except 0 for the first bin)
	Hi         float64 `json:"hi"`         // upper edge (inclusive)
	Count      int     `json:"count"`      // examples whose confidence falls in (Lo, Hi]
	Accuracy   float64 `json:"accuracy"`   // fraction of them classified correctly (0 when empty)
	Confidence float64 `json:"confidence"` // their mean confidence (0 when empty)
}

// Binner assigns values in [0, 1] to M equal-width bins in the convention
// of BinIndex; make one with NewBinner to bin many values.
type Binner struct {
	m     int
	fm    float64
	edges []float64 // edges[k] = k/M, k = 0..M
}

// NewBinner returns a Binner of m equal-width bins. It panics if m < 1.
func NewBinner(m int) Binner {
	if m <= 0 {
		panic("metrics: number of bins must be positive")
	}
	e := make([]float64, m+1)
	for k := range e {
		e[k] = float64(k) / float64(m)
	}
	return Binner{m: m, fm: float64(m), edges: e}
}

// Index returns the bin of x; see BinIndex.
func (bn Binner) Index(x float64) int {
	b := int(math.Ceil(x*bn.fm)) - 1
	b = min(max(b, 0), bn.m-1)
	// x·M is rounded; compare with the exact edges so that values on an
	// edge always go to the lower bin.
	for b > 0 && x <= bn.edges[b] {
		b--
	}
	for b < bn.m-1 && x > bn.edges[b+1] {
		b++
	}
	return b
}

// BinIndex returns the equal-width bin, out of m, of a confidence x in Guo
// et al. 2017's convention: bin b (0-based) holds (b/m, (b+1)/m], and bin 0
// also holds 0. A value exactly on an edge goes to the lower bin (x = 1/m is
// in bin 0, x = 1 in bin m−1); values below 0 or above 1 are clamped into
// the first or last bin.
//
// The edges are the float64 quotients k/m, correctly rounded. They equal
// numpy.linspace(0, 1, m+1) for m = 15, but linspace computes k·(1/m) and can
// differ by one ulp for other m (for m = 10 its edge 3 is
// 0.30000000000000004, not 0.3), so a confidence within one ulp of an edge can
// land in a different bin there. gpleiss/temperature_scaling's _ECELoss uses
// the same (lo, hi] test on float32 torch.linspace edges and drops
// confidences of exactly 0 (which no top-label confidence can be).
func BinIndex(x float64, m int) int {
	return NewBinner(m).Index(x)
}

// relAcc accumulates reliability-diagram sums over M bins.
type relAcc struct {
	count   []int
	sumConf []float64
	hits    []int
}

func newRelAcc(m int) relAcc {
	return relAcc{count: make([]int, m), sumConf: make([]float64, m), hits: make([]int, m)}
}

func (a relAcc) add(b int, conf float64, correct bool) {
	a.count[b]++
	a.sumConf[b] += conf
	if correct {
		a.hits[b]++
	}
}

func (a relAcc) merge(o relAcc) {
	for b := range a.count {
		a.count[b] += o.count[b]
		a.sumConf[b] += o.sumConf[b]
		a.hits[b] += o.hits[b]
	}
}

func (a relAcc) bins(bn Binner) []Bin {
	bins := make([]Bin, bn.m)
	for b := range bins {
		bins[b] = Bin{Lo: bn.edges[b], Hi: bn.edges[b+1], Count: a.count[b]}
		if n := float64(a.count[b]); n > 0 {
			bins[b].Accuracy = float64(a.hits[b]) / n
			bins[b].Confidence = a.sumConf[b] / n
		}
	}
	return bins
}

// Reliability groups top-label confidences into m equal-width bins
// (lo, hi] (the first bin also takes 0; see BinIndex) and returns each bin's
// count, accuracy and mean confidence: the data of a reliability diagram
// (DeGroot & Fienberg 1983; Niculescu-Mizil & Caruana 2005; Guo et al. 2017).
func Reliability(conf []float64, correct []bool, m int) []Bin {
	if len(conf) != len(correct) {
		panic("metrics: slice length mismatch")
	}
	bn := NewBinner(m)
	acc := newRelAcc(m)
	for i, x := range conf {
		acc.add(bn.Index(x), x, correct[i])
	}
	return acc.bins(bn)
}

// ECEFromBins returns the expected calibration error of reliability bins
// over n examples (Naeini et al. 2015; Guo et al. 2017, eq. 3):
//
//	ECE = Σ_b (|B_b| / n) · |acc(B_b) − conf(B_b)|
func ECEFromBins(bins []Bin, n int) float64 {
	if n <= 0 {
		panic(noRows)
	}
	var s float64
	for _, b := range bins {
		s += float64(b.Count) * math.Abs(b.Accuracy-b.Confidence)
	}
	return s / float64(n)
}

// RMSCEFromBins returns the root-mean-square calibration error of
// reliability bins over n examples (Hendrycks et al. 2019, "Deep Anomaly
// Detection with Outlier Exposure"; the plug-in ℓ2 calibration error of
// Kumar et al. 2019):
//
//	RMSCE = sqrt( Σ_b (|B_b| / n) · (acc(B_b) − conf(B_b))² )
//
// Like ECE it is biased upwards on small bins: a perfectly calibrated model
// gets RMSCE² ≈ Σ_b acc_b(1 − acc_b)/n on average; see ECEDebiasedL2FromBins.
func RMSCEFromBins(bins []Bin, n int) float64 {
	if n <= 0 {
		panic(noRows)
	}
	var s float64
	for _, b := range bins {
		d := b.Accuracy - b.Confidence
		s += float64(b.Count) * d * d
	}
	return math.Sqrt(s / float64(n))
}

// ECEDebiasedL2FromBins returns the debiased estimate of the ℓ2
// calibration error of reliability bins over n examples (Kumar, Liang & Ma
// 2019, "Verified Uncertainty Calibration", NeurIPS, §5 and their
// calibration.utils.unbiased_l2_ce):
//
//	ECE²_debiased = Σ_b (|B_b| / n) · [ (acc(B_b) − conf(B_b))² − acc(B_b)(1 − acc(B_b)) / (|B_b| − 1) ]
//	ECE_debiased_l2 = sqrt(max(ECE²_debiased, 0))
//
// The plug-in term (acc − conf)² of a bin overestimates the squared error
// (E[acc] − conf)² by the variance of the bin's accuracy, Var(y)/|B|; the
// subtracted term is its unbiased estimate, the sample variance of the 0/1
// correctness, |B|/(|B| − 1)·acc(1 − acc), divided by |B|. Bins with fewer
// than 2 examples contribute 0 (their variance cannot be estimated), as in
// Kumar et al.'s code; the sum can be negative for a well-calibrated model
// and is then clamped at 0 before the square root.
func ECEDebiasedL2FromBins(bins []Bin, n int) float64 {
	if n <= 0 {
		panic(noRows)
	}
	var s float64
	for _, b := range bins {
		if b.Count < 2 {
			continue
		}
		d := b.Accuracy - b.Confidence
		s += float64(b.Count) * (d*d - b.Accuracy*(1-b.Accuracy)/float64(b.Count-1))
	}
	return math.Sqrt(max(s/float64(n), 0))
}

// MCEFromBins returns the maximum calibration error over non-empty bins
// (Naeini et al. 2015; Guo et al. 2017, eq. 5): max_b |acc(B_b) − conf(B_b)|.
func MCEFromBins(bins []Bin) float64 {
	var m float64
	for _, b := range bins {
		if b.Count > 0 {
			m = math.Max(m, math.Abs(b.Accuracy-b.Confidence))
		}
	}
	return m
}

// reliabilityProbs returns the top-label reliability bins of probabilities.
func reliabilityProbs(probs []float64, labels []int, c, m int) []Bin {
	n := checkShape(probs, labels, c)
	bn := NewBinner(m)
	parts := kernel.Map(n, c, func(lo, hi int) relAcc {
		acc := newRelAcc(m)
		for i := lo; i < hi; i++ {
			row := probs[i*c : (i+1)*c]
			k := Argmax(row)
			acc.add(bn.Index(row[k]), row[k], k == labels[i])
		}
		return acc
	})
	total := newRelAcc(m)
	for _, p := range parts {
		total.merge(p)
	}
	return total.bins(bn)
}

// ECE returns the top-label expected calibration error of probabilities
// (N×C) with m equal-width bins in Guo et al. 2017's convention (see
// BinIndex and ECEFromBins): the confidence of a row is max_k p_ik, it is
// correct when its argmax (first on ties) is the label.
func ECE(probs []float64, labels []int, c, m int) float64 {
	return ECEFromBins(reliabilityProbs(probs, labels, c, m), len(labels))
}

// RMSCE returns the top-label root-mean-square calibration error of
// probabilities (N×C) over the same m equal-width bins as ECE (see
// RMSCEFromBins).
func RMSCE(probs []float64, labels []int, c, m int) float64 {
	return RMSCEFromBins(reliabilityProbs(probs, labels, c, m), len(labels))
}

// ECEDebiasedL2 returns Kumar et al. 2019's debiased top-label ℓ2
// calibration error of probabilities (N×C) over the same m equal-width bins
// as ECE (see ECEDebiasedL2FromBins).
func ECEDebiasedL2(probs []float64, labels []int, c, m int) float64 {
	return ECEDebiasedL2FromBins(reliabilityProbs(probs, labels, c, m), len(labels))
}

// MCE returns the top-label maximum calibration error of probabilities
// (N×C) over the non-empty bins of the same m equal-width bins as ECE.
func MCE(probs []float64, labels []int, c, m int) float64 {
	return MCEFromBins(reliabilityProbs(probs, labels, c, m))
}

// ECEEqualMass returns the top-label ECE with m equal-mass (adaptive) bins
// (Nixon et al. 2019, "Measuring Calibration in Deep Learning"): examples are
// sorted by confidence (ties keep input order) and bin b holds sorted
// positions [⌊b·n/m⌋, ⌊(b+1)·n/m⌋), so bin sizes differ by at most one. With
// n < m some bins are empty.
//
//	ECE_em = Σ_b (|B_b| / n) · |acc(B_b) − conf(B_b)|
//
// (Implementations that place adaptive edges at confidence quantiles and
// then bin by value, e.g. with numpy.interp, agree except when equal
// confidences straddle a bin boundary.)
func ECEEqualMass(conf []float64, correct []bool, m int) float64 {
	n := len(conf)
	if n != len(correct) {
		panic("metrics: slice length mismatch")
	}
	if m <= 0 {
		panic("metrics: number of bins must be positive")
	}
	if n == 0 {
		panic(noRows)
	}
	order := sortedByConf(conf)
	var s float64
	for b := 0; b < m; b++ {
		lo, hi := b*n/m, (b+1)*n/m
		var acc, cf float64
		for _, i := range order[lo:hi] {
			cf += conf[i]
			if correct[i] {
				acc++
			}
		}
		s += math.Abs(acc - cf) // = |B_b| · |acc(B_b) − conf(B_b)|
	}
	return s / float64(n)
}

// sortedByConf returns the indices of conf in ascending order of
// confidence, ties in index order (−0 counts as 0). Large inputs use a
// stable LSD radix sort on the order-preserving bit pattern of the float64
// (4 passes of 16 bits, skipping passes whose digit is constant), which is
// several times faster than a comparison sort at 10⁶ values; small ones
// use slices.SortFunc on (confidence, index). Both give the same order.
func sortedByConf(conf []float64) []int32 {
	if len(conf) < radixMin {
		return compareOrder(conf)
	}
	return radixOrder(conf)
}

const radixMin = 1 << 12

func compareOrder(conf []float64) []int32 {
	type item struct {
		conf float64
		idx  int32
	}
	items := make([]item, len(conf))
	for i, x := range conf {
		items[i] = item{x + 0, int32(i)} // x + 0 turns −0 into +0
	}
	slices.SortFunc(items, func(a, b item) int {
		if c := cmp.Compare(a.conf, b.conf); c != 0 {
			return c
		}
		return cmp.Compare(a.idx, b.idx)
	})
	order := make([]int32, len(conf))
	for i, it := range items {
		order[i] = it.idx
	}
	return order
}

// sortKey maps a float64 to a uint64 with the same order (NaN aside).
func sortKey(x float64) uint64 {
	b := math.Float64bits(x + 0)
	if b>>63 == 1 {
		return ^b
	}
	return b | 1<<63
}

func radixOrder(conf []float64) []int32 {
	n := len(conf)
	keys, idx := make([]uint64, n), make([]int32, n)
	for i, x := range conf {
		keys[i], idx[i] = sortKey(x), int32(i)
	}
	tk, ti := make([]uint64, n), make([]int32, n)
	count := make([]int, 1<<16)
	for shift := 0; shift < 64; shift += 16 {
		clear(count)
		for _, k := range keys {
			count[k>>shift&0xffff]++
		}
		if count[keys[0]>>shift&0xffff] == n {
			continue // every key has this digit: the pass would not move anything
		}
		sum := 0
		for d, c := range count {
			count[d] = sum
			sum += c
		}
		for i, k := range keys {
			d := k >> shift & 0xffff
			tk[count[d]], ti[count[d]] = k, idx[i]
			count[d]++
		}
		keys, tk, idx, ti = tk, keys, ti, idx
	}
	return idx
}

// cwAcc accumulates classwise-ECE sums: per class k and bin b, the count,
// the sum of p_ik and the number of examples with y_i = k.
type cwAcc struct {
	count, sumP, hits []float64 // index k·M + b
}

func newCWAcc(c, m int) cwAcc {
	return cwAcc{count: make([]float64, c*m), sumP: make([]float64, c*m), hits: make([]float64, c*m)}
}

func (a cwAcc) addRow(row []float64, y int, bn Binner) {
	for k, p := range row {
		j := k*bn.m + bn.Index(p)
		a.count[j]++
		a.sumP[j] += p
		if k == y {
			a.hits[j]++
		}
	}
}

func (a cwAcc) merge(o cwAcc) {
	for j := range a.count {
		a.count[j] += o.count[j]
		a.sumP[j] += o.sumP[j]
		a.hits[j] += o.hits[j]
	}
}

// value returns (1/C) Σ_k Σ_b |hits_kb − sumP_kb| / n.
func (a cwAcc) value(n, c int) float64 {
	var total float64
	for j := range a.count {
		total += math.Abs(a.hits[j] - a.sumP[j])
	}
	return total / float64(n) / float64(c)
}

// ClasswiseECE returns the classwise ECE (Kull et al. 2019, "Beyond
// temperature scaling", eq. for classwise-ECE): for each class k, the
// probabilities p_ik of all examples are binned into m equal-width bins
// (Guo's convention, see BinIndex), each bin compares the mean p_ik with
// the frequency of y_i = k, and
//
//	cw_ECE = (1/C) Σ_k Σ_b (|B_kb| / N) · |freq(B_kb) − conf(B_kb)|
func ClasswiseECE(probs []float64, labels []int, c, m int) float64 {
	n := checkShape(probs, labels, c)
	bn := NewBinner(m)
	parts := kernel.Map(n, c, func(lo, hi int) cwAcc {
		acc := newCWAcc(c, m)
		for i := lo; i < hi; i++ {
			acc.addRow(probs[i*c:(i+1)*c], labels[i], bn)
		}
		return acc
	})
	total := newCWAcc(c, m)
	for _, p := range parts {
		total.merge(p)
	}
	return total.value(n, c)
}
