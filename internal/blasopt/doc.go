// Package blasopt selects gorgonia's BLAS implementation at build time.
// Without build tags (plain `go build`, no cgo), gorgonia uses
// internal/gemm: gonum's pure-Go BLAS with Sgemm replaced by an AVX2+FMA
// assembly kernel where the CPU has it (gonum's Sgemm elsewhere), about as
// fast as OpenBLAS for kdcal's training shapes. Built with -tags openblas
// (the Makefile adds it when Debian's libopenblas-dev is installed), it
// links OpenBLAS through cgo and gonum/netlib. Import it for its side
// effect; version.Backend and version.GEMM say which one is active.
package blasopt
