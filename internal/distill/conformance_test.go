package distill_test

import (
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/distill"
	"github.com/kdcal/kdcal/internal/distill/distilltest"
)

// TestConformance runs the suite for every registered loss.
func TestConformance(t *testing.T) {
	for _, name := range distill.Names() {
		t.Run(name, func(t *testing.T) {
			distilltest.Suite{New: func() distill.Loss {
				l, err := distill.New(name, distill.Params{DKDAlpha: 1, DKDBeta: 8})
				if err != nil {
					t.Fatal(err)
				}
				return l
			}, ZeroAtTeacher: true}.Run(t)
		})
	}
}

// TestRegistryMatchesConfig: config validates kd.loss against
// config.KDLosses, which must name exactly the registry's losses.
func TestRegistryMatchesConfig(t *testing.T) {
	if !slices.Equal(distill.Names()[:len(config.KDLosses)], config.KDLosses) {
		t.Errorf("registry %v, config.KDLosses %v", distill.Names(), config.KDLosses)
	}
	if _, err := distill.New("kl", distill.Params{}); err == nil || err.Error() != `unknown KD loss "kl": use one of `+joined() {
		t.Errorf("New(kl): %v", err)
	}
}

func joined() string {
	s := ""
	for i, n := range distill.Names() {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s
}

// zeroLoss is a toy loss, registered only here: the constant 0. It shows
// that a new loss is one file plus one registration line, and runs the
// same suite (its "zero at teacher" holds trivially).
type zeroLoss struct{ distill.MSE }

func (zeroLoss) Name() string { return "zero" }

func (zeroLoss) Reference(s []float64, _ []float32, _ []int, _ int, _ float64) (float64, []float64) {
	return 0, make([]float64, len(s))
}

func (zeroLoss) Build(g *G.ExprGraph, s *G.Node, in distill.Inputs) (distill.Term, error) {
	zero, err := G.Sub(s, s)
	if err != nil {
		return nil, err
	}
	sum, err := G.Sum(zero)
	if err != nil {
		return nil, err
	}
	return zeroTerm{sum}, nil
}

type zeroTerm struct{ n *G.Node }

func (z zeroTerm) Node() *G.Node          { return z.n }
func (zeroTerm) Fill(_, _ []int)          {}
func (zeroTerm) Constant(_ []int) float64 { return 0 }

func init() { distill.Register("zero", func(distill.Params) distill.Loss { return zeroLoss{} }) }

func TestToyLossConformance(t *testing.T) {
	distilltest.Suite{New: func() distill.Loss {
		l, err := distill.New("zero", distill.Params{})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}, ZeroAtTeacher: true}.Run(t)
}
