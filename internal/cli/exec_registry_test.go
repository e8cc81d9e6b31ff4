package cli

import (
	"maps"
	"slices"
	"testing"

	"github.com/kdcal/kdcal/internal/config"
)

// TestExecutorsRegistered: the names config validation accepts for
// run.executor are exactly the executors this package can construct, so a
// new executor cannot be half-registered.
func TestExecutorsRegistered(t *testing.T) {
	got := slices.Sorted(maps.Keys(executors))
	want := slices.Sorted(slices.Values(config.Executors))
	if !slices.Equal(got, want) {
		t.Errorf("executors table %v, config.Executors %v: register a new executor in both", got, want)
	}
}
