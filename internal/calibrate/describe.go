package calibrate

import (
	"fmt"
	"strconv"

	"github.com/kdcal/kdcal/internal/artifact"
)

// Description is what a fitted calibrator says about itself, so that no
// caller has to know a method: a few words on its parameters for log
// lines and tables, and its effective softening.
type Description struct {
	// Summary describes the parameters, e.g. "T=1.1342" or "15 bins".
	Summary string
	// Temperature is the one temperature T by which the calibrator divides
	// every logit (temp), so that softmax(z/τ) after it is softmax(z/(τ·T))
	// and a distiller's effective temperature is τ·T. 0: the calibrator is
	// no single division of the logits (none, vector, matrix, hist, isotonic).
	Temperature float64
}

// Softening returns the temperature of d, 1 when it has none: the factor a
// distiller multiplies its τ by to get the effective temperature.
func (d Description) Softening() float64 {
	if d.Temperature > 0 {
		return d.Temperature
	}
	return 1
}

// Describe implements Calibrator.
func (*None) Describe() Description { return Description{Summary: "-"} }

// Describe implements Calibrator.
func (t *Temp) Describe() Description {
	return Description{Summary: fmt.Sprintf("T=%.4f", t.T), Temperature: t.T}
}

// Describe implements Calibrator.
func (v *Vector) Describe() Description {
	return Description{Summary: "scale " + rangeOf(v.Scale) + ", bias " + rangeOf(v.Bias)}
}

// Describe implements Calibrator.
func (m *Matrix) Describe() Description {
	c := strconv.Itoa(m.C)
	return Description{Summary: c + "×" + c + " weights, bias " + rangeOf(m.Bias) + ", l2 " + strconv.FormatFloat(m.L2, 'g', -1, 64)}
}

// Describe implements Calibrator.
func (h *Hist) Describe() Description { return Description{Summary: fmt.Sprintf("%d bins", h.Bins)} }

// Describe implements Calibrator.
func (s *Isotonic) Describe() Description {
	return Description{Summary: fmt.Sprintf("%d breakpoints", len(s.X))}
}

// rangeOf formats the range of xs as "[lo, hi]".
func rangeOf(xs []float64) string {
	var lo, hi float64
	for i, x := range xs {
		if i == 0 || x < lo {
			lo = x
		}
		if i == 0 || x > hi {
			hi = x
		}
	}
	return fmt.Sprintf("[%.3g, %.3g]", lo, hi)
}

// DescribeResult decodes the calibrator of a stored result and describes it.
func DescribeResult(r *artifact.CalibrationResult) (Description, error) {
	cal, err := decode(r.Method, r.Params)
	if err != nil {
		return Description{}, fmt.Errorf("%s params: %w", r.Method, err)
	}
	return cal.Describe(), nil
}
