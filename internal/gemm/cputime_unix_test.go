//go:build unix

package gemm

import "syscall"

// ProcessCPU (exported to the external benchmarks) returns the CPU time (user + system) of the process so far in
// seconds. Benchmarks run with -cpu 1 report GFLOP/s per CPU second next to
// wall-clock GFLOP/s: on a machine shared with other jobs, the time the
// process waits for a core counts in the wall clock only.
func ProcessCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
