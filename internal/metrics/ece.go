package metrics

import (
	"math"
	"sort"
)

// Bin is one bin of a reliability diagram.
type Bin struct {
	Lo         float64 `json:"lo"`         // lower edge (exclusive, except 0 for the first bin)
	Hi         float64 `json:"hi"`         // upper edge (inclusive)
	Count      int     `json:"count"`      // examples whose confidence falls in (Lo, Hi]
	Accuracy   float64 `json:"accuracy"`   // fraction of them classified correctly (0 when empty)
	Confidence float64 `json:"confidence"` // their mean confidence (0 when empty)
}

// binEdges returns the M+1 edges k/M, k = 0..M.
func binEdges(m int) []float64 {
	e := make([]float64, m+1)
	for k := range e {
		e[k] = float64(k) / float64(m)
	}
	e[m] = 1
	return e
}

// binIndex returns the equal-width bin of confidence x in Guo et al. 2017's
// convention: bin b holds (edges[b], edges[b+1]], and bin 0 also holds 0.
// The comparison uses the float64 edges k/M exactly as gpleiss's _ECELoss
// (conf > lo && conf <= hi), so values on an edge go to the lower bin.
func binIndex(x float64, edges []float64) int {
	m := len(edges) - 1
	b := int(math.Ceil(x*float64(m))) - 1
	b = min(max(b, 0), m-1)
	for b > 0 && x <= edges[b] {
		b--
	}
	for b < m-1 && x > edges[b+1] {
		b++
	}
	return b
}

// Reliability groups top-label confidences into m equal-width bins
// (lo, hi] (the first bin also takes 0) and returns each bin's count,
// accuracy and mean confidence: the data of a reliability diagram
// (DeGroot & Fienberg 1983; Niculescu-Mizil & Caruana 2005; Guo et al. 2017).
func Reliability(conf []float64, correct []bool, m int) []Bin {
	if len(conf) != len(correct) {
		panic("metrics: slice length mismatch")
	}
	if m <= 0 {
		panic("metrics: number of bins must be positive")
	}
	edges := binEdges(m)
	bins := make([]Bin, m)
	for b := range bins {
		bins[b].Lo, bins[b].Hi = edges[b], edges[b+1]
	}
	for i, x := range conf {
		b := &bins[binIndex(x, edges)]
		b.Count++
		b.Confidence += x
		if correct[i] {
			b.Accuracy++
		}
	}
	for b := range bins {
		if n := float64(bins[b].Count); n > 0 {
			bins[b].Accuracy /= n
			bins[b].Confidence /= n
		}
	}
	return bins
}

// ECEFromBins returns the expected calibration error of reliability bins
// over n examples (Naeini et al. 2015; Guo et al. 2017, eq. 3):
//
//	ECE = Σ_b (|B_b| / n) · |acc(B_b) − conf(B_b)|
func ECEFromBins(bins []Bin, n int) float64 {
	var s float64
	for _, b := range bins {
		s += float64(b.Count) * math.Abs(b.Accuracy-b.Confidence)
	}
	return s / float64(n)
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

// ECE returns the top-label expected calibration error with m equal-width
// bins in Guo et al. 2017's convention (see Reliability).
func ECE(probs []float64, labels []int, c, m int) float64 {
	conf, correct := TopLabel(probs, labels, c)
	return ECEFromBins(Reliability(conf, correct, m), len(labels))
}

// ECEEqualMass returns the top-label ECE with m equal-mass (adaptive) bins
// (Nixon et al. 2019, "Measuring Calibration in Deep Learning"): examples are
// sorted by confidence (stable, so ties keep input order) and bin b holds
// sorted positions [⌊b·n/m⌋, ⌊(b+1)·n/m⌋). With n < m some bins are empty.
func ECEEqualMass(conf []float64, correct []bool, m int) float64 {
	n := len(conf)
	if n != len(correct) {
		panic("metrics: slice length mismatch")
	}
	if n == 0 {
		return 0
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return conf[order[a]] < conf[order[b]] })
	var s float64
	for b := 0; b < m; b++ {
		lo, hi := b*n/m, (b+1)*n/m
		if hi <= lo {
			continue
		}
		var acc, cf float64
		for _, i := range order[lo:hi] {
			cf += conf[i]
			if correct[i] {
				acc++
			}
		}
		s += math.Abs(acc - cf) // = count · |mean acc − mean conf|
	}
	return s / float64(n)
}

// ClasswiseECE returns the classwise ECE (Kull et al. 2019, "Beyond
// temperature scaling"): for each class k, the probabilities p_ik of all
// examples are binned into m equal-width bins (Guo's convention), each bin
// compares the mean p_ik with the frequency of y_i = k, and
//
//	cw_ECE = (1/C) Σ_k Σ_b (|B_kb| / N) · |freq(B_kb) − conf(B_kb)|
func ClasswiseECE(probs []float64, labels []int, c, m int) float64 {
	n := checkShape(probs, labels, c)
	edges := binEdges(m)
	count := make([]float64, m)
	sumP := make([]float64, m)
	hits := make([]float64, m)
	var total float64
	for k := 0; k < c; k++ {
		clear(count)
		clear(sumP)
		clear(hits)
		for i := 0; i < n; i++ {
			p := probs[i*c+k]
			b := binIndex(p, edges)
			count[b]++
			sumP[b] += p
			if labels[i] == k {
				hits[b]++
			}
		}
		for b := range count {
			total += math.Abs(hits[b] - sumP[b])
		}
	}
	return total / float64(n) / float64(c)
}
