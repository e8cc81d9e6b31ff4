//go:build unix

package dgemm

import (
	"syscall"
	"time"
)

// cpuTime returns the user + system CPU time of the process so far (all
// threads). Benchmarks report it beside wall time: on a shared, loaded
// machine CPU time is the steadier measure of work.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
