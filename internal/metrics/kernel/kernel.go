// Package kernel holds the row-parallel loop shared by metrics and
// calibrate. Work on an N×C row-major array is split into chunks whose size
// depends only on C (never on the number of CPUs), each chunk's result is
// kept in its own slot, and callers reduce the slots in chunk order — so
// every result is bit-for-bit the same whatever GOMAXPROCS is.
package kernel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// chunkElems is the target number of array elements per chunk (256 KiB of
// float64): large enough to amortise scheduling, small enough that 2–64
// cores share the work evenly on 10⁴×100 arrays.
const chunkElems = 1 << 15

// ChunkRows returns the number of rows per chunk for c columns.
func ChunkRows(c int) int {
	if c <= 0 {
		panic("kernel: number of columns must be positive")
	}
	return max(1, chunkElems/c)
}

// Map splits rows [0, n) into consecutive chunks of ChunkRows(c) rows,
// calls fn(lo, hi) on each — concurrently on up to GOMAXPROCS goroutines
// when there is more than one chunk — and returns the results in chunk
// order. fn must only write to rows [lo, hi) of shared outputs.
func Map[T any](n, c int, fn func(lo, hi int) T) []T {
	if n < 0 {
		panic("kernel: negative number of rows")
	}
	size := ChunkRows(c)
	chunks := (n + size - 1) / size
	out := make([]T, chunks)
	span := func(k int) (int, int) { return k * size, min(n, (k+1)*size) }
	workers := min(runtime.GOMAXPROCS(0), chunks)
	if workers <= 1 {
		for k := range out {
			out[k] = fn(span(k))
		}
		return out
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= chunks {
					return
				}
				out[k] = fn(span(k))
			}
		})
	}
	wg.Wait()
	return out
}

// Sum returns the sum of xs in order.
func Sum(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}
