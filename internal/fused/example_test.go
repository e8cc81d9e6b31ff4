package fused_test

import (
	"fmt"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/kdcal/kdcal/internal/fused"
)

// A training graph and an evaluation graph of one ResNet share its
// tensors: the optimizer updates r.Params in place, the training graph
// updates the running statistics, and the evaluation graph reads both.
func ExampleResNet_Build() {
	r, err := fused.NewResNet(fused.ResNetSpec{Depth: 20, Width: 16, C: 3, H: 32, W: 32, Classes: 10}, tensor.Float32)
	if err != nil {
		panic(err)
	}
	r.Init(rand.New(rand.NewPCG(1, 2)), fused.InitHe)
	fmt.Println(r)
	fmt.Println(len(r.State), "state entries,", len(r.Params), "learnable:", r.State[0].Name, "…", r.State[len(r.State)-1].Name)

	train, err := r.Build(G.NewGraph(), 128, fused.Train)
	if err != nil {
		panic(err)
	}
	eval, err := r.Build(G.NewGraph(), 500, fused.Eval)
	if err != nil {
		panic(err)
	}
	fmt.Println("train:", train.X.Shape(), "→", train.Logits.Shape())
	fmt.Println("eval: ", eval.X.Shape(), "→", eval.Logits.Shape())
	// Output:
	// resnet20-w16 3×32×32 → 10 (269722 params)
	// 116 state entries, 59 learnable: conv1.weight … fc.bias
	// train: (128, 3, 32, 32) → (128, 10)
	// eval:  (500, 3, 32, 32) → (500, 10)
}
