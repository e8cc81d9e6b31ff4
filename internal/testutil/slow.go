package testutil

import "testing"

// Slow skips a test under -short (make test), saying what it is and that
// the slow tests run without -short (make test-full, .ci/run). Call it
// first in a test that takes more than a few seconds.
func Slow(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("slow (%s): skipped under -short; `make test-full` and CI run it", what)
	}
}
