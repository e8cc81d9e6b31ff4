package train

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/kdcal/kdcal/internal/config"
)

// TestProgressBarWaitsForARate: on a terminal the bar is not drawn until
// training has run rateWindow, so its first frame has a measured
// throughput (drawn at the first batch it showed 18,870,706 img/s: one
// batch over the microseconds since the bar's clock started).
func TestProgressBarWaitsForARate(t *testing.T) {
	defer func(f func(io.Writer) bool) { isTerminal = f }(isTerminal)
	isTerminal = func(io.Writer) bool { return true }
	var out bytes.Buffer
	r := newReporter(Job{Label: "teacher tiny seed 0", Recipe: config.Train{Epochs: 2}, Progress: &out}, 0, 1000)
	if r.bar == nil {
		t.Fatal("no bar on a terminal")
	}
	for range 10 {
		r.add(64)
	}
	if out.Len() != 0 {
		t.Fatalf("the bar was drawn before a rate was measured: %q", out.String())
	}
	r.start = r.start.Add(-2 * rateWindow) // as if the batches had taken 2 s
	r.add(64)
	if !strings.Contains(out.String(), "teacher tiny seed 0 epoch 1/2") || !strings.Contains(out.String(), "img/") {
		t.Fatalf("no frame once the window has passed: %q", out.String())
	}
	if r.pending != 0 {
		t.Errorf("%d samples still held back", r.pending)
	}
}
