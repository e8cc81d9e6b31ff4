package fused

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
)

// This file holds what the dense and the conv-stage tests share: a stack
// of layers whose loss is Σ r⊙y, built once with the fused op and once
// with gorgonia's own ops, and compared value by value.

// layer32 is one layer's parameters.
type layer32 struct{ w, b []float32 }

// randn32 returns n normal draws times scale.
func randn32(rng *rand.Rand, n int, scale float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = scale * float32(rng.NormFloat64())
	}
	return s
}

// netResult holds the output and the gradients of one run.
type netResult struct {
	y, dx  []float32
	dw, db [][]float32
}

// netGraph is a built graph with its nodes.
type netGraph struct {
	g      *G.ExprGraph
	x, y   *G.Node
	loss   *G.Node
	params G.Nodes // w0, b0, w1, b1, ...
	wrt    G.Nodes
}

// finish makes h the output, Σ r⊙h the loss, and adds the gradients of
// the parameters (and of x when xIsParam).
func (ng *netGraph) finish(t testing.TB, h, r *G.Node, xIsParam bool) {
	t.Helper()
	ng.y = h
	ng.loss = G.Must(G.Sum(G.Must(G.HadamardProd(h, r))))
	ng.wrt = slices.Clone(ng.params)
	if xIsParam {
		ng.wrt = append(ng.wrt, ng.x)
	}
	if _, err := G.Grad(ng.loss, ng.wrt...); err != nil {
		t.Fatalf("Grad: %v", err)
	}
}

// runTape runs one forward+backward pass with a TapeMachine.
func (ng *netGraph) runTape(t testing.TB, withDX bool) netResult {
	t.Helper()
	vm := G.NewTapeMachine(ng.g, G.BindDualValues(ng.wrt...))
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatalf("RunAll: %v", err)
	}
	return ng.result(t, withDX)
}

func dataOf32(t testing.TB, v G.Value) []float32 {
	t.Helper()
	return slices.Clone(v.Data().([]float32))
}

func gradOf32(t testing.TB, n *G.Node) []float32 {
	t.Helper()
	v, err := n.Grad()
	if err != nil {
		t.Fatalf("grad of %v: %v", n.Name(), err)
	}
	return dataOf32(t, v)
}

func (ng *netGraph) result(t testing.TB, withDX bool) netResult {
	t.Helper()
	res := netResult{y: dataOf32(t, ng.y.Value())}
	for i := 0; i < len(ng.params); i += 2 {
		res.dw = append(res.dw, gradOf32(t, ng.params[i]))
		res.db = append(res.db, gradOf32(t, ng.params[i+1]))
	}
	if withDX {
		res.dx = gradOf32(t, ng.x)
	}
	return res
}

// relErr32 returns max|got-want| / max|want| (∞-norm relative error); NaNs
// must sit at the same positions.
func relErr32(got, want []float32) float64 {
	var num, den float64
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) || math.IsNaN(w) {
			if math.IsNaN(g) != math.IsNaN(w) {
				return math.Inf(1)
			}
			continue
		}
		num = max(num, math.Abs(g-w))
		den = max(den, math.Abs(w))
	}
	if den == 0 {
		return num
	}
	return num / den
}

func checkClose32(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return
	}
	e := relErr32(got, want)
	if e > tol || math.IsNaN(e) {
		t.Errorf("%s: relative error %.3g > %.0g", what, e, tol)
	} else if testing.Verbose() {
		t.Logf("%s: relative error %.3g", what, e)
	}
}

func compareNets(t *testing.T, got, want netResult, tol float64) {
	t.Helper()
	checkClose32(t, "y", got.y, want.y, tol)
	if want.dx != nil {
		checkClose32(t, "dx", got.dx, want.dx, tol)
	}
	for i := range want.dw {
		checkClose32(t, fmt.Sprintf("dw%d", i), got.dw[i], want.dw[i], tol)
		checkClose32(t, fmt.Sprintf("db%d", i), got.db[i], want.db[i], tol)
	}
}

// benchTape times forward+backward passes of the graph, one per b.Loop
// iteration, reporting allocations.
func (ng *netGraph) benchTape(b *testing.B) {
	vm := G.NewTapeMachine(ng.g, G.BindDualValues(ng.wrt...))
	defer vm.Close()
	b.ReportAllocs()
	for b.Loop() {
		if err := vm.RunAll(); err != nil {
			b.Fatal(err)
		}
		vm.Reset()
	}
}
