// Package gemm is a pure-Go float32 matrix multiply (SGEMM) for amd64:
//
//	C = alpha·op(A)·op(B) + beta·C,  op(X) = X or Xᵀ,
//
// with an AVX2+FMA micro-kernel in Go assembly, chosen at run time with
// golang.org/x/sys/cpu (X86.HasAVX2 && X86.HasFMA). On other CPUs and
// architectures, and with -tags purego, Sgemm is gonum's. Implementation
// embeds gonum's BLAS for every other routine, so it can be passed to
// gorgonia.Use; internal/blasopt does that in the build without cgo.
//
// # Blocking
//
// The scheme is GotoBLAS/BLIS (Goto and van de Geijn, "Anatomy of
// High-Performance Matrix Multiplication", ACM TOMS 34(3), 2008; Van Zee and
// van de Geijn, "BLIS", ACM TOMS 41(3), 2015):
//
//	for jc in steps of nc (columns of C and op(B))
//	  for pc in steps of kc (depth)
//	    pack op(B)[pc:pc+kc, jc:jc+nc] into 16-column micro-panels   (L3)
//	    for ic in steps of mc (rows of C and op(A))
//	      pack op(A)[ic:ic+mc, pc:pc+kc] into 6-row micro-panels     (L2)
//	      for each 16-column panel jr, for each 6-row panel ir
//	        C[ir, jr] (6×16) = alpha·Aᵢᵣ·Bⱼᵣ + beta'·C[ir, jr]        (registers; B panel in L1)
//
// beta' is beta for the first depth block and 1 after it. The micro-kernel
// keeps the 6×16 tile in 12 YMM accumulators; each depth step loads 16
// floats of B (2 YMM), broadcasts 6 floats of A and issues 12 FMAs, which
// keeps both FMA pipes of a Zen 3 or Haswell-class core busy (12 independent
// chains against 2 pipes × 4 cycles of latency; it reaches about 92% of the
// measured FMA peak on panels in L1). Blocks for Zen 3 (32 KiB L1d, 512 KiB
// L2 per core): kc = 256 (A and B micro-panels 22 KiB, in L1), mc = 144
// (packed A 144 KiB, in L2), nc = 2048 (packed B 2 MiB); k, m and n are
// split into equal blocks of at most that size (k = 784 runs as 4 × 196).
//
// Packing handles all four transpose cases and any leading dimensions, in
// assembly: a register transpose (8×8 blocks) where op(X) runs across the
// stored rows, a row-by-row copy where it runs along them. Edges: a tile cut
// by m (m mod 6 rows) runs a 2- or 4-row variant of the kernel and stores
// only its rows; a tile cut by n (n mod 16 columns) is computed into a
// scratch tile and merged; when n < 16 < m (an output layer of 10 classes,
// the weight gradient of a 3×3 convolution), the driver computes
// Cᵀ = op(B)ᵀ·op(A)ᵀ and writes its tiles transposed, which wastes fewer
// lanes. C is never read or written outside its m×n window. Each call runs
// in the calling goroutine: kdcal runs one training per core.
//
// # Accuracy
//
// Each entry is a float32 sum of k products accumulated with FMA in depth
// blocks, scaled by alpha per block and added into beta·C, so to first order
// (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., §3.1,
// §3.5)
//
//	|Ĉ − C| ≤ (k + 2·⌈k/kc⌉ + 1)·u·(|alpha|·(|op(A)|·|op(B)|) + |beta·C|) ≤ 2·(k+2)·u·(…)
//
// elementwise, u = 2⁻²⁴; gemm_test.go checks the right-hand bound against a
// float64 reference and gonum. Results are not bit-identical to gonum's or
// OpenBLAS's (the summation order differs), except where every partial sum
// is exact (small integers).
package gemm
