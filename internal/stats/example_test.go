package stats_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/kdcal/kdcal/internal/stats"
)

// Three teacher sizes × three seeds of student accuracy: is accuracy
// monotone in size? With 3 units the smallest attainable permutation p is
// 2/3! = 1/3, whatever the data.
func ExampleJointSpearman() {
	params := stats.Grid{{1e4, 1e4, 1e4}, {1e5, 1e5, 1e5}, {1e6, 1e6, 1e6}}
	acc := stats.Grid{{0.80, 0.81, 0.79}, {0.82, 0.82, 0.80}, {0.83, 0.84, 0.82}}
	c := stats.JointSpearman(rand.New(rand.NewPCG(0, 1)), params, acc,
		stats.Resampling{Resamples: 1000, Permutations: 1000, Level: 0.95})
	fmt.Printf("ρ = %.2f, 95%% CI [%.2f, %.2f], exact p = %.3f (min %.3f)\n", c.Rho, c.Lo, c.Hi, c.Test.P, c.Test.PMin)
	// Output:
	// ρ = 1.00, 95% CI [1.00, 1.00], exact p = 0.333 (min 0.333)
}
