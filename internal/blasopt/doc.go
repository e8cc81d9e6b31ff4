// Package blasopt selects gorgonia's BLAS implementation at build time.
// Without build tags, gorgonia uses gonum's pure-Go BLAS, which builds and
// works everywhere. Built with -tags openblas (the Makefile adds it when
// Debian's libopenblas-dev is installed), it links OpenBLAS through cgo and
// gonum/netlib, about 4× faster for the dense layers (../shared/docs/gorgonia-notes.md §2).
// Import it for its side effect; version.Backend says which one is active.
package blasopt
