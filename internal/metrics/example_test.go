package metrics_test

import (
	"fmt"

	"github.com/kdcal/kdcal/internal/metrics"
)

// Four predictions over 3 classes with top-label confidences 0.9, 0.8, 0.6
// and 0.4, binned into M = 5 equal-width bins (lo, hi]: 0.6 lies on the
// edge of (0.4, 0.6] and stays in it; 0.8 likewise in (0.6, 0.8].
//
//	(0.8, 1.0]  {0.9 correct}   acc 1   conf 0.9  gap 0.1
//	(0.6, 0.8]  {0.8 wrong}     acc 0   conf 0.8  gap 0.8
//	(0.4, 0.6]  {0.6 correct}   acc 1   conf 0.6  gap 0.4
//	(0.2, 0.4]  {0.4 correct}   acc 1   conf 0.4  gap 0.6
//
// ECE = (0.1 + 0.8 + 0.4 + 0.6)/4 = 0.475; MCE = 0.8.
func ExampleECE() {
	probs := []float64{
		0.9, 0.05, 0.05,
		0.8, 0.1, 0.1,
		0.2, 0.6, 0.2,
		0.3, 0.3, 0.4,
	}
	labels := []int{0, 2, 1, 2}
	fmt.Printf("ece %.3f\n", metrics.ECE(probs, labels, 3, 5))
	fmt.Printf("mce %.3f\n", metrics.MCE(probs, labels, 3, 5))
	// Output:
	// ece 0.475
	// mce 0.800
}

// Bootstrap gives a seeded percentile interval for any metric.
func ExampleBootstrap() {
	probs := []float64{0.9, 0.1, 0.2, 0.8, 0.7, 0.3, 0.4, 0.6, 0.55, 0.45, 0.35, 0.65}
	labels := []int{0, 1, 1, 1, 0, 0}
	iv := metrics.Bootstrap(metrics.Accuracy, probs, labels, 2, 1000, 0.9, 42)
	fmt.Printf("accuracy %.3f, 90%% CI [%.3f, %.3f]\n", iv.Estimate, iv.Lo, iv.Hi)
	// Output:
	// accuracy 0.667, 90% CI [0.333, 1.000]
}
