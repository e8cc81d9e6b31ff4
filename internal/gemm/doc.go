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
// chains against 2 pipes × 4 cycles of latency). Blocks for Zen 3 (32 KiB
// L1d, 512 KiB L2 per core): kc = 256 (A and B micro-panels 22 KiB, in L1),
// mc = 144 (packed A 144 KiB, in L2), nc = 2048 (packed B 2 MiB); k, m and
// n are split into equal blocks of at most that size. Packing handles all
// four transpose cases and any leading dimensions, and pads the edges of
// op(A) and op(B) with zeros; tiles cut by m or n (m mod 6, n mod 16) are
// computed into a scratch tile and merged into C, so C is never written
// outside its m×n window. Each call runs in the calling goroutine: kdcal
// runs one training per core.
//
// # Accuracy
//
// Each entry is a float32 sum of k products in a blocked order with FMA, so
// |Ĉ − C| ≤ (k+2)·u·(|alpha|·(|op(A)|·|op(B)|) + |beta·C|) elementwise,
// u = 2⁻²⁴ (Higham, Accuracy and Stability of Numerical Algorithms,
// 2nd ed., §3.5), the same bound as gonum's and OpenBLAS's Sgemm; results
// are not bit-identical to theirs (different summation order).
package gemm
