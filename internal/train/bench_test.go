package train

import (
	"context"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/data"
	"github.com/kdcal/kdcal/internal/plan"
	kspec "github.com/kdcal/kdcal/internal/spec"
	"github.com/kdcal/kdcal/internal/testutil"
)

// randomSplits returns n random 1×28×28 "images" with random labels of 10
// classes as the train split (val and test hold one example each).
func randomSplits(n int) *data.Splits {
	rng := rand.New(rand.NewPCG(7, 7))
	mk := func(name string, n int) *data.Dataset {
		d := &data.Dataset{Name: name, N: n, D: 784, C: 1, H: 28, W: 28, Classes: 10,
			X: make([]float32, n*784), Y: make([]int, n), Index: make([]int, n)}
		for i := range d.X {
			d.X[i] = float32(rng.NormFloat64())
		}
		for i := range d.Y {
			d.Y[i], d.Index[i] = rng.IntN(10), i
		}
		return d
	}
	return &data.Splits{Dataset: "random", Train: mk("train", n), Val: mk("val", 1), Test: mk("test", 1)}
}

// BenchmarkTrainStep times one training step (forward, backward, Adam
// update) at batch 128 on 28×28×1 inputs, cycling through 16 pre-generated
// random batches with random labels (so the loss stays near log 10 and no
// denormals appear). It reports ms/step and samples/s, and the process CPU
// time per step (cpu-ms/step), which other jobs on a shared machine do not
// inflate; run with -cpu 1.
func BenchmarkTrainStep(b *testing.B) {
	cnn, resnet := config.Default().Teacher.Tables["cnn"], config.Default().Teacher.Tables["resnet"]
	cases := []struct {
		name   string
		family string
		spec   config.ModelSpec
	}{
		{"mlp-784-512-512-10", config.FamilyMLP, config.ModelSpec{"hidden": []int{512, 512}}},
		{"cnn-medium", config.FamilyCNN, cnn["medium"]},
		// BatchNorm ResNets (teacher.resnet), the fused ops of internal/fused.
		{"resnet8-w8", "resnet", resnet["resnet8-w8"]},
		{"resnet20-w16", "resnet", resnet["resnet20-w16"]},
	}
	for _, c := range cases {
		// Flops per step: forward + backward = 3 × forward multiply-adds
		// (plan.TrainCost), minus the first layer's input gradient, which is
		// never computed (the input is data) — by kdcal or by PyTorch.
		flops := 2 * (plan.TrainCost(c.family, c.spec, kspec.Shape{C: 1, H: 28, W: 28, Classes: 10}) - firstLayerMACs(c.family, c.spec)) * 128
		b.Run(c.name, func(b *testing.B) { benchStep(b, c.family, c.spec, 128, flops) })
	}
}

// firstLayerMACs is the multiply-adds of the first layer's forward pass per
// example on 1×28×28 inputs: a 3×3 conv to Conv[0] channels (a resnet's
// stem: to width channels), or a dense layer.
func firstLayerMACs(family string, spec config.ModelSpec) float64 {
	switch family {
	case config.FamilyCNN:
		return 9 * float64(spec["conv"].([]int)[0]) * 28 * 28
	case "resnet":
		return 9 * float64(spec["width"].(int)) * 28 * 28
	}
	return 784 * float64(spec["hidden"].([]int)[0])
}

func benchStep(b *testing.B, family string, spec config.ModelSpec, bs int, flops float64) {
	const batches = 16
	s := randomSplits(batches * bs)
	t, err := newTrainer(Job{Label: "bench", Family: family, Spec: spec, Recipe: recipe(1, bs), Data: s})
	if err != nil {
		b.Fatal(err)
	}
	defer t.close()
	d := s.Train.D
	var bt [batches]batch
	for i := range bt {
		pos := make([]int, bs)
		for k := range pos {
			pos[k] = i*bs + k
		}
		bt[i] = batch{x: s.Train.X[i*bs*d : (i+1)*bs*d], y: s.Train.Y[i*bs : (i+1)*bs], pos: pos}
	}
	for i := range 3 { // warm up the allocator and BLAS
		if _, err := t.step(bt[i], 1e-3, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	cpu0 := testutil.CPUTime().Seconds()
	for i := 0; i < b.N; i++ {
		if _, err := t.step(bt[i%batches], 1e-3, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if cpu := testutil.CPUTime().Seconds() - cpu0; cpu > 0 {
		b.ReportMetric(cpu*1000/float64(b.N), "cpu-ms/step")
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(sec*1000, "ms/step")
	b.ReportMetric(float64(bs)/sec, "samples/s")
	b.ReportMetric(flops/sec/1e9, "GFLOP/s")
	b.ReportMetric(flops/1e6, "MFLOP/step")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkEpochMemory trains the medium CNN for 6 short epochs on random
// data and reports the Go heap after epoch 1 and after the last epoch, read
// from the per-epoch records (metrics.jsonl's heap_mib), after a GC: the
// target is no growth after epoch 1.
func BenchmarkEpochMemory(b *testing.B) {
	s := randomSplits(20 * 128)
	cnn := config.Default().Teacher.Tables["cnn"]
	for i := 0; i < b.N; i++ {
		var heaps []float64
		j := Job{Label: "memory", Family: config.FamilyCNN, Spec: cnn["medium"], Recipe: recipe(6, 128), Data: s,
			OnEpoch: func(Record) { runtime.GC(); heaps = append(heaps, heapMiB()) }}
		if _, err := Run(context.Background(), j); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(heaps[0], "heap-epoch1-MiB")
		b.ReportMetric(heaps[len(heaps)-1], "heap-last-MiB")
		b.ReportMetric(heaps[len(heaps)-1]-heaps[0], "growth-MiB")
	}
	b.ReportMetric(0, "ns/op")
}
