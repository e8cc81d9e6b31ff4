package train

import (
	"math"
	"testing"

	"github.com/kdcal/kdcal/internal/config"
)

// TestOptimizersMatchTorch runs three steps of each optimizer on a 3-vector
// with fixed gradients. Expected weights come from torch 1.13 (float64):
//
//	torch.optim.AdamW([p], lr=0.1, weight_decay=0.01)
//	torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
//
// with p = [1, -2, 0.5] and gradients [0.5,-0.1,0], [0.2,0.3,-1], [-0.4,0.05,2].
// Tolerance 1e-6: kdcal updates in float32.
func TestOptimizersMatchTorch(t *testing.T) {
	grads := [][]float32{{0.5, -0.1, 0}, {0.2, 0.3, -1}, {-0.4, 0.05, 2}}
	tests := []struct {
		optimizer string
		want      [][]float64
	}{
		{"adam", [][]float64{
			{0.8990000020, -1.8980000100, 0.4995000000},
			{0.8082434839, -1.9455209911, 0.5734141813},
			{0.7898073547, -1.9912891857, 0.5414121504}}},
		{"sgd", [][]float64{
			{0.9490000000, -1.9880000000, 0.4995000000},
			{0.8821510000, -2.0052120000, 0.5985505000},
			{0.8611047490, -2.0236975880, 0.4870973995}}},
	}
	for _, tt := range tests {
		r := config.Train{Optimizer: tt.optimizer, LR: 0.1, Momentum: 0.9, WeightDecay: 0.01}
		o, err := newOptimizer(r, []int{3})
		if err != nil {
			t.Fatal(err)
		}
		w := []float32{1, -2, 0.5}
		for s, g := range grads {
			gc := append([]float32(nil), g...)
			o.step([][]float32{w}, [][]float32{gc}, r.LR)
			for j := range w {
				if math.Abs(float64(w[j])-tt.want[s][j]) > 1e-6 {
					t.Errorf("%s step %d: w[%d] = %.8f, torch %.8f", tt.optimizer, s+1, j, w[j], tt.want[s][j])
				}
				if gc[j] != 0 {
					t.Errorf("%s step %d: gradient %d not zeroed", tt.optimizer, s+1, j)
				}
			}
		}
	}
}

func TestNewOptimizerUnknown(t *testing.T) {
	if _, err := newOptimizer(config.Train{Optimizer: "rmsprop"}, []int{1}); err == nil {
		t.Error("no error for an unknown optimizer")
	}
}

// TestLearningRate checks the schedules against hand-computed values.
func TestLearningRate(t *testing.T) {
	r := config.Train{LR: 0.1, StepEvery: 2, StepGamma: 0.5}
	const total = 100
	tests := []struct {
		schedule    string
		step, epoch int
		want        float64
	}{
		{"constant", 0, 0, 0.1},
		{"constant", 99, 9, 0.1},
		{"step", 0, 0, 0.1},
		{"step", 10, 1, 0.1},
		{"step", 20, 2, 0.05},
		{"step", 50, 5, 0.025},
		{"cosine", 0, 0, 0.1},
		{"cosine", 50, 5, 0.05},                         // cos(π/2) = 0
		{"cosine", 25, 2, 0.1 * (1 + math.Sqrt2/2) / 2}, // cos(π/4)
		{"cosine", 99, 9, 0.1 * (1 + math.Cos(math.Pi*99/100)) / 2}, // last step, ≈ 2.5e-5
	}
	for _, tt := range tests {
		r.Schedule = tt.schedule
		if got := learningRate(r, tt.step, tt.epoch, total); math.Abs(got-tt.want) > 1e-15 {
			t.Errorf("%s step %d epoch %d: lr %v, want %v", tt.schedule, tt.step, tt.epoch, got, tt.want)
		}
	}
}
